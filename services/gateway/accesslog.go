package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bankbridge/bankbridge/services/platform/server"
)

// accessEntry is what the access log learns of a request from the layers
// under it: the route that matched. The access log makes it; the router
// that matches a route fills it in, once.
type accessEntry struct {
	route string
}

type accessEntryKey struct{}

// matchedRoute tells the request's access log which route template
// matched it.
func matchedRoute(ctx context.Context, template string) {
	if e, ok := ctx.Value(accessEntryKey{}).(*accessEntry); ok {
		e.route = template
	}
}

// errorBodyLimit is how much of an error answer the access log keeps to
// read its ErrorInfo reason: a google.rpc.Status is far shorter.
const errorBodyLimit = 8 << 10

// accessLog writes one JSON line per request, the first hop of every
// trace: route template (never the path: it names users and accounts),
// method, status, the ErrorInfo reason of an error, and the duration; the
// trace id comes from the log handler. Never a header, a query or a body.
func (g *Gateway) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		entry := &accessEntry{}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), accessEntryKey{}, entry)))
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		route := entry.route
		if route == "" {
			route = "unmatched"
		}
		attrs := []slog.Attr{
			slog.String("route", route),
			slog.String("method", methodName(r.Method)),
			slog.Int("status", status),
		}
		if reason := errorReason(rec.errBody.Bytes()); reason != "" {
			attrs = append(attrs, slog.String("reason", reason))
		}
		attrs = append(attrs, slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		level := slog.LevelInfo
		if status >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		g.log.LogAttrs(r.Context(), level, "access", attrs...)
	})
}

// methodName keeps the standard methods and names any other _OTHER, as
// OpenTelemetry does: a method is the caller's free text.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// errorReason reads the ErrorInfo reason of a JSON google.rpc.Status.
func errorReason(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var st struct {
		Details []struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
		} `json:"details"`
	}
	if json.Unmarshal(body, &st) != nil {
		return ""
	}
	for _, d := range st.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" {
			return d.Reason
		}
	}
	return ""
}

// recorder keeps the status and the start of an error's body; it unwraps
// for http.ResponseController, so streams still flush.
type recorder struct {
	http.ResponseWriter
	status  int
	errBody bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.status >= http.StatusBadRequest && r.errBody.Len() < errorBodyLimit {
		r.errBody.Write(b[:min(len(b), errorBodyLimit-r.errBody.Len())])
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeTemplate turns grpc-gateway's pattern, /v1/{name=users/*/accounts/*}/balance,
// into the template on-call reads, /v1/users/{user}/accounts/{account}/balance:
// each collection's id named after it, singular.
func routeTemplate(pattern string) string {
	var b strings.Builder
	for len(pattern) > 0 {
		open := strings.IndexByte(pattern, '{')
		if open < 0 {
			b.WriteString(pattern)
			break
		}
		b.WriteString(pattern[:open])
		end := strings.IndexByte(pattern[open:], '}')
		if end < 0 {
			b.WriteString(pattern[open:])
			break
		}
		field, segs, bound := strings.Cut(pattern[open+1:open+end], "=")
		pattern = pattern[open+end+1:]
		if !bound || segs == "*" {
			b.WriteString("{" + field + "}")
			continue
		}
		parts := strings.Split(segs, "/")
		for i, p := range parts {
			if i > 0 {
				b.WriteByte('/')
			}
			switch {
			case p == "*" && i > 0:
				b.WriteString("{" + singular(parts[i-1]) + "}")
			case p == "*" || p == "**":
				b.WriteString("{" + field + "}")
			default:
				b.WriteString(p)
			}
		}
	}
	return b.String()
}

// singular names a collection's member: users → user, fraudReports →
// fraudReport, deliveries → delivery.
func singular(collection string) string {
	switch {
	case strings.HasSuffix(collection, "ies"):
		return strings.TrimSuffix(collection, "ies") + "y"
	case strings.HasSuffix(collection, "s"):
		return strings.TrimSuffix(collection, "s")
	}
	return collection
}

// Probes are what the gateway's admin /readyz checks: that every routed
// backend answers its gRPC health check with SERVING.
func (g *Gateway) Probes() []server.Probe {
	probes := make([]server.Probe, 0, len(g.backends))
	for _, b := range g.backends {
		client := healthpb.NewHealthClient(b.conn)
		probes = append(probes, server.Probe{Name: b.name, Check: func(ctx context.Context) error {
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return &notServing{status: resp.GetStatus().String()}
			}
			return nil
		}})
	}
	return probes
}

type notServing struct{ status string }

func (e *notServing) Error() string { return "health check: " + e.status }
