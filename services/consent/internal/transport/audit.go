package transport

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/policy"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// auditTimeout bounds one append of the consent service's own audit.
const auditTimeout = 2 * time.Second

// Auditor records each call to the consent service's public API (its links,
// its access log) in the user's access log. It is the consent service's
// policy.Auditor: it appends to the store directly, where other services go
// through RecordAccess.
type Auditor struct {
	app *app.Service
	log *slog.Logger
}

var _ policy.Auditor = (*Auditor)(nil)

// NewAuditor returns the auditor of a's own calls.
func NewAuditor(a *app.Service, log *slog.Logger) *Auditor { return &Auditor{app: a, log: log} }

// Audit appends the call, allowed (err nil) or refused, to the log of the
// user it named. A call whose token did not verify is not recorded: it has
// no caller to name, and anyone could fill a user's log with such calls.
// A failed append cannot undo the call; it is logged under an incident id.
func (a *Auditor) Audit(ctx context.Context, acc *policy.Access, err error) {
	if acc.User == "" || acc.Principal.User == "" {
		return
	}
	e := app.AccessEntry{
		User:     acc.User,
		ClientID: acc.Principal.Client,
		Method:   acc.Method,
		Resource: acc.Resource,
		Purpose:  acc.Purpose,
		Scope:    acc.Scope,
		Outcome:  app.OutcomeAllowed,
	}
	if err != nil {
		e.Outcome = app.OutcomeDenied
		reason := apierr.Reason(err)
		if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			reason = commonv1.ErrorReason_ERROR_REASON_INTERNAL
		}
		e.Reason = apierr.ReasonString(reason)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	// The call is over; its cancellation must not lose the record.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if _, rerr := a.app.RecordAccess(actx, e); rerr != nil {
		a.log.ErrorContext(ctx, "access not recorded in the audit log",
			slog.String(telemetry.AttrIncidentID, apierr.IncidentID()),
			slog.String("rpc.method", acc.Method), slog.String("error", rerr.Error()))
	}
}
