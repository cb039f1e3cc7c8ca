// Package main is the bankbridge REST gateway: grpc-gateway handlers over
// real gRPC client connections to each service, so every call made over
// REST passes the same interceptor chain (auth, validation, purpose,
// consent, audit) as a gRPC call. It adds the HTTP edges: body limit,
// timeouts, JSON google.rpc.Status errors with the right HTTP status, the
// x-trace-id header on every response, Bankbridge-Purpose and
// Idempotency-Key headers passed on as gRPC metadata, the OpenAPI document,
// a /healthz that reflects the backends, and — in dev mode only — a token
// issuer for trying the API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/gen/openapi"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/policy"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Config is the gateway's configuration (flags or BANKBRIDGE_* env).
type Config struct {
	Addr string
	// Backend gRPC addresses; a backend left empty is not routed.
	ConsentAddr, BalanceAddr, ReceiptsAddr, ShippingAddr, SupportAddr string

	MaxBodyBytes   int64
	RequestTimeout time.Duration

	DevMode bool
	// Dev issuer (dev mode only): the gateway mints user tokens at
	// POST /v1/dev/tokens and service tokens at /oauth/token, and publishes
	// the keys at /.well-known/jwks.json, for the services to verify.
	DevIssuer         string
	DevAudience       string
	DevClient         string
	DevServiceClients string
	DevServiceSecret  string
}

// backend is one service the gateway routes to.
type backend struct {
	name     string
	addr     string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
	conn     *grpc.ClientConn
}

// Gateway is the HTTP handler and the connections behind it.
type Gateway struct {
	cfg      Config
	tel      *telemetry.Telemetry
	log      *slog.Logger
	backends []*backend
	issuer   *auth.DevIssuer
	handler  http.Handler
}

// headers the gateway passes to gRPC as metadata, beyond Authorization.
var forwardedHeaders = map[string]string{
	"bankbridge-purpose": policy.PurposeHeader,
	"idempotency-key":    "idempotency-key",
	"authorization":      "authorization",
}

// New dials every configured backend and builds the handler.
func New(ctx context.Context, cfg Config, tel *telemetry.Telemetry, issuer *auth.DevIssuer) (*Gateway, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	g := &Gateway{cfg: cfg, tel: tel, log: tel.Logger, issuer: issuer}
	all := []*backend{
		{name: "consent", addr: cfg.ConsentAddr, register: consentv1.RegisterConsentServiceHandler},
		{name: "balance", addr: cfg.BalanceAddr, register: balancev1.RegisterBalanceServiceHandler},
		{name: "receipts", addr: cfg.ReceiptsAddr, register: receiptsv1.RegisterReceiptsServiceHandler},
		{name: "shipping", addr: cfg.ShippingAddr, register: shippingv1.RegisterShippingServiceHandler},
		{name: "support", addr: cfg.SupportAddr, register: supportv1.RegisterSupportServiceHandler},
	}
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(func(h string) (string, bool) {
			md, ok := forwardedHeaders[strings.ToLower(h)]
			return md, ok
		}),
		// Only the trace id goes back out; other response metadata stays inside.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	for _, b := range all {
		if b.addr == "" {
			continue
		}
		conn, err := client.Dial(b.addr, tel, client.Options{DefaultTimeout: cfg.RequestTimeout})
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("backend %s: %w", b.name, err)
		}
		b.conn = conn
		if err := b.register(ctx, mux, conn); err != nil {
			g.Close()
			return nil, fmt.Errorf("register %s handlers: %w", b.name, err)
		}
		g.backends = append(g.backends, b)
	}

	root := http.NewServeMux()
	root.Handle("/v1/", g.limits(mux))
	root.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON())
	})
	root.HandleFunc("GET /healthz", g.healthz)
	root.HandleFunc("POST /v1/dev/tokens", g.devToken)
	if issuer != nil {
		root.Handle("GET /.well-known/jwks.json", issuer.JWKSHandler())
		clients := map[string]string{}
		for c := range strings.SplitSeq(cfg.DevServiceClients, ",") {
			if c = strings.TrimSpace(c); c != "" {
				clients[c] = cfg.DevServiceSecret
			}
		}
		root.Handle("POST /oauth/token", issuer.TokenHandler(clients, time.Hour))
	}
	g.handler = otelhttp.NewHandler(traceIDHeader(root), "gateway",
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method + " " + routeOf(r) }),
	)
	return g, nil
}

// routeOf names a request by its path shape, without user or resource ids,
// so span names carry no personal data.
func routeOf(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 2 && parts[0] == "v1" && parts[1] == "users" {
		// /v1/users/{user}/accounts/{account}/...: every second segment is an id.
		for i := 2; i < len(parts); i += 2 {
			_, verb, hasVerb := strings.Cut(parts[i], ":")
			parts[i] = "*"
			if hasVerb {
				parts[i] += ":" + verb
			}
		}
	}
	return "/" + strings.Join(parts, "/")
}

// Handler is the gateway's root HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close closes the backend connections.
func (g *Gateway) Close() {
	for _, b := range g.backends {
		_ = b.conn.Close()
	}
}

// traceIDHeader puts the request's trace id on every response, errors and
// 404s included, before the body is written.
func traceIDHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			w.Header().Set(server.TraceIDHeader, sc.TraceID().String())
		}
		next.ServeHTTP(w, r)
	})
}

// limits bounds request bodies, and the time of every call that is not a
// stream (streams end on their own or when the client leaves).
func (g *Gateway) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		if !strings.HasSuffix(r.URL.Path, ":watch") && !strings.HasSuffix(r.URL.Path, ":stream") {
			ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 when every backend's gRPC health check says SERVING,
// 503 with the failing backends otherwise.
func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	healthy := true
	for _, b := range g.backends {
		resp, err := healthpb.NewHealthClient(b.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		switch {
		case err != nil:
			status[b.name], healthy = "UNREACHABLE", false
		case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
			status[b.name], healthy = resp.GetStatus().String(), false
		default:
			status[b.name] = "SERVING"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"healthy": healthy, "backends": status})
}

// devToken mints a user token for the default dev client. It exists only in
// dev mode; otherwise the route answers 404 like any unknown path.
func (g *Gateway) devToken(w http.ResponseWriter, r *http.Request) {
	if g.issuer == nil {
		http.NotFound(w, r)
		return
	}
	var body struct {
		User string `json:"user"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || !validUser(body.User) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": `send {"user": "<id>"} with an id of 1-64 letters, digits, _ or -`})
		return
	}
	tok, err := g.issuer.Mint(body.User, g.cfg.DevClient, time.Hour)
	if err != nil {
		http.Error(w, "cannot mint a token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "client_id": g.cfg.DevClient})
}

func validUser(u string) bool {
	if len(u) < 1 || len(u) > 64 {
		return false
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Serve serves on lis until ctx ends, then shuts down gracefully.
func (g *Gateway) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: :watch and :stream responses are long-lived; every
		// other call is bounded by RequestTimeout in limits.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway HTTP: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return nil
}
