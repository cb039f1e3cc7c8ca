// Package server is the one way a bankbridge service runs: typed config, a
// gRPC server with the interceptor chain written once, health, reflection
// when asked for (--reflection), bounded metadata and concurrent streams
// per connection, an admin HTTP listener (/healthz, /readyz, /metrics), and
// a graceful stop on SIGTERM that falls back to a hard stop after a grace
// period.
//
// The chain, outermost first — each concern in its own file:
//
//	(tap)      admission of unary calls, in the transport       admission.go
//	           before the stream exists: in flight over the
//	           adaptive limit (--max-inflight its ceiling) →
//	           UNAVAILABLE, OVERLOADED + RetryInfo, at once;
//	           health never. Under overload a refusal must cost
//	           next to nothing: no span, no log line, no token
//	           verified (a refused call reads nothing), only
//	           the counter bankbridge.server.overload_refusals
//	recovery   panic → INTERNAL with an incident id          recover.go
//	drain      streams end when the server stops (streams)     drain.go
//	(stats)    OpenTelemetry, as a stats handler; a caller's    server.go
//	           trace context, never its baggage
//	trace id   x-trace-id response header (a stream refused    traceid.go
//	           before its header: in the trailer)
//	admission  gives a unary call's slot back and feeds its     admission.go
//	           outcome to the adaptive limit (streams: last in
//	           the chain, below)
//	logging    one JSON line per call with trace ids           logging.go
//	mask       unexpected errors → INTERNAL + incident id;     mask.go
//	           a lost database connection → UNAVAILABLE,
//	           STORAGE_UNAVAILABLE + RetryInfo
//	authn      JWT bearer, user binding (skips health);        authn.go
//	           the internal audience on internal methods only;
//	           operator methods take operator clients' own
//	           tokens only (--operator-clients), and theirs
//	           nothing else;
//	           refusals to the security log, not a user's log
//	peer cert  internal methods: a verified client certificate  peercert.go
//	           naming the token's service (with TLS)
//	rate limit per user and per client, by the method's        ratelimit.go
//	           class from its contract → RESOURCE_EXHAUSTED,
//	           RATE_LIMITED + RetryInfo; refusals to the
//	           security log, like authn's
//	idem key   idempotency-key metadata → idempotency_key       idempotency.go
//	validate   protovalidate → INVALID_ARGUMENT + fields       validate.go
//	access     purpose, consent per the contract's access      access.go
//	           rule → immutable grant; the outcome appended
//	           to the user's access log before data leaves
//	admission  streams, the same, but only while they open:    admission.go
//	           last, so the slot covers every check above
//
// Each public method's access rule comes from its contract
// ((bankbridge.common.v1.access)); New refuses to build a server with a
// public method that declares none. Client and partner methods
// (AUDIENCE_CLIENT, AUDIENCE_PARTNER) have no rule: they read no user's
// data, and authn binds them to the client of a client-credentials token
// instead; only partners (--partner-clients) call partner methods, and
// nothing else. Operator methods (AUDIENCE_OPERATOR) have no rule either:
// only operator clients (--operator-clients) call them, and nothing else,
// and the service records each look-up in the users' logs itself.
//
// Every public, client and partner method is rate limited
// (platform/limits): its class (read, write, stream, partner) comes from
// its contract, and New refuses a method that has none, as it refuses a
// public method without an access rule.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/limits"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Keepalive policy. Clients made by platform/client ping every 30s and the
// bank client (adapters) every 10s at the least, both above the 5s minimum
// enforced here, so they are never sent GOAWAY for pinging: the margin
// matters because the server times from a ping's arrival and the client from
// the previous ack.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}
	keepaliveParams      = keepalive.ServerParameters{
		MaxConnectionIdle:     5 * time.Minute,
		MaxConnectionAge:      30 * time.Minute, // rebalance long-lived connections across replicas
		MaxConnectionAgeGrace: 30 * time.Second,
		Time:                  30 * time.Second,
		Timeout:               10 * time.Second,
	}
)

// Deps are what a service hands the kit besides its config.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Verifier checks bearer tokens. Required.
	Verifier *auth.Verifier
	// Consent decides consent for public methods whose access rule lists
	// scopes. Required when any registered method does.
	Consent access.ConsentChecker
	// Recorder appends every decided public call to the user's access log.
	// Required when any public method is registered.
	Recorder access.Recorder
	// Banks are the configured banks, for methods whose rule names a bank
	// field; nil when the service reaches no bank.
	Banks access.Banks
	// AdminHandlers are extra routes on the admin listener (e.g. the dev
	// issuer's JWKS).
	AdminHandlers map[string]http.Handler
	// TLS, when set, is the gRPC listener's TLS config (platform/certs),
	// usually verifying client certificates when given: product teams
	// call without one. A server whose methods are all internal requires
	// one. With TLS, internal methods take a verified client certificate
	// naming the calling service (peercert.go). Nil serves plaintext (dev
	// mode only, and handler tests).
	TLS *tls.Config
	// AdminTLS, when set, is the admin listener's TLS config.
	AdminTLS *tls.Config
	// Probes are the dependencies /readyz checks besides the server's own
	// state (readiness.go): the database, the event bus.
	Probes []Probe
	// LogRefs makes the pseudonymous user_ref and link_ref that every log
	// line of a granted call carries (platform/pseudonym); nil: none.
	LogRefs *pseudonym.Refs
}

// Server is a configured gRPC server plus its admin listener.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	grpc   *grpc.Server
	health *health.Server
	limits *limits.Limiter
	ready  atomic.Bool
	// stopping is closed when the graceful stop begins; open streams end.
	stopping chan struct{}

	grpcLis, adminLis net.Listener
}

// New builds the server and binds its listeners (so the caller can read the
// real addresses when it asked for port 0). register adds the service's
// implementations; the validator is warmed with their request messages.
func New(cfg Config, deps Deps, register func(grpc.ServiceRegistrar)) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Telemetry == nil || deps.Verifier == nil {
		return nil, errors.New("server: Telemetry and Verifier are required")
	}
	clients, err := access.ParseClients(cfg.ClientPurposes)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Telemetry.Logger, health: health.NewServer(), stopping: make(chan struct{})}

	// The validator and the access rules need the service names before the
	// chain exists, so collect them from a throwaway registrar first.
	names := &serviceNames{}
	register(names)
	validator, err := newValidator(names.list)
	if err != nil {
		return nil, err
	}
	methods, err := access.Load(names.list)
	if err != nil {
		return nil, err
	}
	if err := checkDeps(methods, deps); err != nil {
		return nil, err
	}
	if err := checkInternalAudience(methods, cfg, deps.Verifier); err != nil {
		return nil, err
	}
	limited, err := limitedMethods(names.list, methods)
	if err != nil {
		return nil, err
	}
	refusals, err := deps.Telemetry.MeterProvider.Meter("bankbridge/server").Int64Counter("bankbridge.security.refusals",
		metric.WithDescription("Calls refused before reaching user data: no valid token, another user's or client's name, an internal or partner method by another client, a partner's token on any other method, a caller over its rate limit."))
	if err != nil {
		return nil, err
	}
	authn := authenticator{verifier: deps.Verifier, methods: methods, internalClients: map[string]bool{},
		partners: cfg.Partners(), operators: cfg.Operators(), security: s.log, refusals: refusals}
	for c := range strings.SplitSeq(cfg.InternalClients, ",") {
		if c = strings.TrimSpace(c); c != "" {
			authn.internalClients[c] = true
		}
		if authn.partners[c] {
			// A partner's token is refused by internal methods; a client
			// listed as both is a configuration mistake, not a choice.
			return nil, fmt.Errorf("server: client %s is configured as both an internal client and a partner", c)
		}
	}
	for c := range authn.operators {
		if authn.partners[c] || authn.internalClients[c] {
			// An operator's token is refused by every other method; a
			// client listed twice would be refused by one of its lists.
			return nil, fmt.Errorf("server: client %s is configured as an operator and as a partner or internal client", c)
		}
	}
	subjectKey := cfg.SubjectKey
	if subjectKey == "" {
		subjectKey = "bankbridge-dev-subject-key" // dev mode only: Validate requires a key otherwise
	}
	pseudo := access.NewPseudonyms([]byte(subjectKey))
	check := &accessCheck{
		methods: methods, clients: clients, consent: deps.Consent, banks: deps.Banks, recorder: deps.Recorder,
		pseudo: pseudo, refs: deps.LogRefs, issuer: cfg.Issuer, log: s.log, now: time.Now,
	}
	if s.limits, err = limits.New(cfg.Limits, limits.Options{
		Service: cfg.Name, Logger: s.log, MeterProvider: deps.Telemetry.MeterProvider,
		UserKey: func(user string) string { return pseudo.SubjectID(cfg.Issuer, user) },
	}); err != nil {
		return nil, err
	}
	limit := rateLimiter{limits: s.limits, methods: limited, refuse: authn.refuse}
	admit, err := newAdmission(cfg.MaxInflight, methods, deps.Telemetry.MeterProvider.Meter("bankbridge/server"))
	if err != nil {
		_ = s.limits.Close()
		return nil, err
	}
	peers := peerCertCheck{methods: methods, off: deps.TLS == nil, refuse: authn.refuse}
	var creds []grpc.ServerOption
	if deps.TLS != nil {
		creds = append(creds, grpc.Creds(credentials.NewTLS(listenerTLS(deps.TLS, methods))))
	}
	s.grpc = grpc.NewServer(append(creds,
		// Unary calls are admitted in the transport, before anything
		// else runs for them (admission.go).
		grpc.InTapHandle(admit.tap),
		grpc.StatsHandler(admissionStats{}),
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(deps.Telemetry.TracerProvider),
			otelgrpc.WithMeterProvider(deps.Telemetry.MeterProvider),
			// Callers' trace context, never their baggage.
			otelgrpc.WithPropagators(deps.Telemetry.EdgePropagator),
		)),
		grpc.ChainUnaryInterceptor(
			recoveryUnary(s.log),
			traceIDUnary,
			admit.unary(),
			loggingUnary(s.log),
			maskUnary(s.log),
			authn.unary(),
			peers.unary(),
			limit.unary(),
			unaryCheck(fillIdempotencyKey),
			validateUnary(validator),
			check.unary(),
		),
		grpc.ChainStreamInterceptor(
			recoveryStream(s.log),
			drainStream(s.stopping),
			traceIDStream,
			loggingStream(s.log),
			maskStream(s.log),
			authn.stream(),
			peers.stream(),
			limit.stream(),
			streamCheck(fillIdempotencyKey),
			validateStream(validator),
			check.stream(),
			admit.stream(),
		),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(cfg.MaxSendMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepaliveEnforcement),
		grpc.KeepaliveParams(keepaliveParams),
		grpc.MaxHeaderListSize(uint32(cfg.MaxHeaderListBytes)),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
	)...)
	register(s.grpc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection {
		if err := registerReflection(s.grpc); err != nil {
			_ = s.limits.Close()
			return nil, err
		}
	}
	for _, name := range names.list {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)

	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		_ = s.limits.Close()
		return nil, fmt.Errorf("listen gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	if cfg.AdminAddr != "" {
		if s.adminLis, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			_ = s.grpcLis.Close()
			_ = s.limits.Close()
			return nil, fmt.Errorf("listen admin HTTP on %s: %w", cfg.AdminAddr, err)
		}
		if deps.AdminTLS != nil {
			s.adminLis = tls.NewListener(s.adminLis, HTTPTLS(deps.AdminTLS))
		}
	}
	return s, nil
}

// listenerTLS is the gRPC listener's TLS config: cfg, requiring a client
// certificate when every method served is internal, since only bankbridge
// calls them.
func listenerTLS(cfg *tls.Config, methods access.Methods) *tls.Config {
	for _, m := range methods {
		if m.Audience != commonv1.Audience_AUDIENCE_INTERNAL {
			return cfg
		}
	}
	if len(methods) == 0 || cfg.ClientAuth == tls.RequireAndVerifyClientCert {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg
}

// HTTPTLS is cfg for an HTTP listener: HTTP/2 and HTTP/1.1 offered by ALPN
// (http.Server serves HTTP/2 on a TLS listener that negotiated it).
func HTTPTLS(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return cfg
}

// checkInternalAudience refuses to build a server with internal methods
// whose verifier takes another internal audience than the config names:
// every internal call would be refused, or a token meant elsewhere taken.
func checkInternalAudience(methods access.Methods, cfg Config, v *auth.Verifier) error {
	for name, m := range methods {
		if m.Audience == commonv1.Audience_AUDIENCE_INTERNAL && v.InternalAudience() != cfg.InternalAudience {
			return fmt.Errorf("server: internal method %s: the token verifier takes internal audience %q, the config says %q", name, v.InternalAudience(), cfg.InternalAudience)
		}
	}
	return nil
}

// checkDeps refuses to build a server whose public methods need what the
// service did not hand over: no nil checks after start.
func checkDeps(methods access.Methods, deps Deps) error {
	for name, m := range methods {
		if m.Audience != commonv1.Audience_AUDIENCE_PUBLIC {
			continue
		}
		if deps.Recorder == nil {
			return fmt.Errorf("server: public method %s needs an access-log Recorder", name)
		}
		if !m.Rule.ConsentNotRequired && deps.Consent == nil {
			return fmt.Errorf("server: public method %s reads consented data and needs a ConsentChecker", name)
		}
	}
	return nil
}

// serviceNames records the names of the services a register func adds.
type serviceNames struct{ list []string }

func (n *serviceNames) RegisterService(desc *grpc.ServiceDesc, _ any) {
	n.list = append(n.list, desc.ServiceName)
}

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// AdminAddr is the address of the admin HTTP listener, or "" without one.
func (s *Server) AdminAddr() string {
	if s.adminLis == nil {
		return ""
	}
	return s.adminLis.Addr().String()
}

// Serve runs until ctx is done (the stop signal), then stops with the one
// sequence in shutdown.go: health turns NOT_SERVING and /readyz 503 at once
// while calls are still served for DrainDelay, so load balancers stop
// sending; then new calls are refused and in-flight ones get ShutdownGrace
// to finish before the server stops hard.
func (s *Server) Serve(ctx context.Context) error {
	endpoints := []Endpoint{GRPCEndpoint(s.grpc, s.grpcLis)}
	var admin []Endpoint
	if s.adminLis != nil {
		admin = append(admin, AdminEndpoint(s.adminLis,
			adminHandler(readyz(s.ready.Load, newProber(s.log, s.deps.Probes)), s.deps.Telemetry.MetricsHandler, s.deps.AdminHandlers)))
	}
	s.health.Resume()
	s.ready.Store(true)
	s.log.Info("serving", slog.String("addr", s.GRPCAddr()), slog.String("component", "grpc"))
	defer func() { _ = s.limits.Close() }() // after the last call has drained
	return Shutdown{
		DrainDelay: s.cfg.DrainDelay,
		Grace:      s.cfg.ShutdownGrace,
		Logger:     s.log,
		NotServing: func() {
			s.ready.Store(false)
			s.health.Shutdown()
		},
		Stopping: func() { close(s.stopping) },
	}.Serve(ctx, endpoints, admin)
}
