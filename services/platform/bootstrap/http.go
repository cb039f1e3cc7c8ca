package bootstrap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// listenPublicHTTP binds a service's public HTTP listener (Needs.HTTP), or
// returns nil without one, after checking that Start returned a handler
// exactly when the spec declared the listener.
func (b *builder) listenPublicHTTP(svc Service) (net.Listener, error) {
	switch {
	case b.spec.Needs.HTTP && svc.HTTP == nil:
		return nil, errors.New("bootstrap: a service that needs HTTP returned no HTTP handler from Start")
	case !b.spec.Needs.HTTP && svc.HTTP != nil:
		return nil, errors.New("bootstrap: a service's Start returned an HTTP handler, but its Spec does not declare Needs.HTTP")
	case !b.spec.Needs.HTTP:
		return nil, nil
	}
	lis, err := net.Listen("tcp", b.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen public HTTP on %s: %w", b.cfg.HTTPAddr, err)
	}
	// Carriers push without a client certificate; the gateway presents its own.
	return b.tlsListener(lis, tls.VerifyClientCertIfGiven), nil
}

// serveWithPublicHTTP serves srv and the public HTTP handler on lis until
// ctx ends, then stops both with the one sequence: the HTTP listener keeps
// serving through the drain delay, as gRPC does, then stops gracefully,
// hard once the grace has passed. Either listener failing stops the other.
func (b *builder) serveWithPublicHTTP(ctx context.Context, srv *server.Server, h http.Handler, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{
		Handler:           b.publicHandler(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(b.deps.Logger.Handler(), slog.LevelWarn),
	}
	log := b.deps.Logger.With(slog.String("component", "http"))
	log.Info("serving", slog.String("addr", lis.Addr().String()))
	httpDone := make(chan error, 1)
	go func() {
		sd := b.shutdown(nil)
		sd.Logger = log
		err := sd.Serve(ctx, []server.Endpoint{server.HTTPEndpoint("public HTTP", hs, lis)}, nil)
		cancel()
		httpDone <- err
	}()
	err := srv.Serve(ctx)
	cancel()
	return errors.Join(err, <-httpDone)
}

// publicHandler is what the public listener serves around a service's
// handler: OpenTelemetry (spans named by route, never by path, which may
// hold ids), the X-Trace-Id response header, and panics answered with a
// masked INTERNAL.
func (b *builder) publicHandler(h http.Handler) http.Handler {
	tel := b.deps.Telemetry
	return otelhttp.NewHandler(traceIDHeader(recoverHTTP(b.deps.Logger, h)), b.cfg.Server.Name,
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.EdgePropagator), // callers' trace context, never their baggage
		otelhttp.WithSpanNameFormatter(spanName),
	)
}

// spanName names a request by the handler's route pattern once the
// handler's ServeMux has matched it, and by its method until then.
func spanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return "HTTP " + r.Method
	case strings.HasPrefix(r.Pattern, "/"):
		return "HTTP " + r.Method + " " + r.Pattern
	default: // the pattern names its method
		return "HTTP " + r.Pattern
	}
}

// traceIDHeader puts the request's trace id on the response, as the gRPC
// listener and the gateway do, before the handler writes.
func traceIDHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			w.Header().Set(server.TraceIDHeader, sc.TraceID().String())
		}
		next.ServeHTTP(w, r)
	})
}

// recoverHTTP answers a panic with INTERNAL and an incident id, in the
// JSON google.rpc.Status the gateway writes; the panic and its stack are
// logged under that id, never answered.
func recoverHTTP(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			id, err := apierr.Internal()
			log.ErrorContext(r.Context(), "panic in HTTP handler",
				slog.String(telemetry.AttrIncidentID, id),
				slog.String("panic", describePanic(p)),
				slog.String("stack", string(debug.Stack())))
			st, _ := status.FromError(err)
			body, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(st.Proto())
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(body)
		}()
		next.ServeHTTP(w, r)
	})
}

// describePanic keeps the text of runtime errors (written by the runtime,
// free of user data) and only the type of any other panic value, which
// code may have built from a request; as the gRPC recovery does.
func describePanic(p any) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("panic value of type %T (value not logged: it may hold personal data)", p)
}
