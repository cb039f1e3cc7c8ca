package telemetry

import (
	"context"
	"log/slog"
)

// Log keys of the pseudonymous references (platform/pseudonym) the log
// handler adds from the context. They are allowed in logs only: never a
// span attribute or a metric label (one series per user).
const (
	LogKeyUserRef = "user_ref"
	LogKeyLinkRef = "link_ref"
)

// logOnlyKeys leave a process in log lines only.
var logOnlyKeys = map[string]bool{LogKeyUserRef: true, LogKeyLinkRef: true}

type logRefsKey struct{}

type logRefs struct{ user, link string }

// WithLogRefs returns ctx whose log lines carry user_ref and link_ref: the
// server kit sets them once per call, from the call's grant, so that a
// failed bank call logged deep down names whom it affected, pseudonymously.
// Empty references are left out.
func WithLogRefs(ctx context.Context, userRef, linkRef string) context.Context {
	if userRef == "" && linkRef == "" {
		return ctx
	}
	return context.WithValue(ctx, logRefsKey{}, logRefs{user: userRef, link: linkRef})
}

// addLogRefs adds ctx's references to a record.
func addLogRefs(ctx context.Context, r *slog.Record) {
	refs, ok := ctx.Value(logRefsKey{}).(logRefs)
	if !ok {
		return
	}
	if refs.user != "" {
		r.AddAttrs(slog.String(LogKeyUserRef, refs.user))
	}
	if refs.link != "" {
		r.AddAttrs(slog.String(LogKeyLinkRef, refs.link))
	}
}
