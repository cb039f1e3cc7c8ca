package bootstrap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/buildinfo"
	"github.com/bankbridge/bankbridge/services/platform/certs"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// flushTimeout bounds the last export of spans and metrics at exit.
const flushTimeout = 5 * time.Second

// Serve checks that every dependency spec declares is configured, builds
// them, calls spec.Start and serves until ctx ends; then it drains the
// servers (server.Shutdown), stops the tasks, runs Service.Close, and only
// then closes the dependencies and flushes telemetry. spec.Config must have
// been filled by Parse.
func Serve(ctx context.Context, spec Spec) error {
	c := spec.Config.base()
	if err := c.check(spec.Kind, spec.Needs); err != nil {
		return err
	}
	if spec.Start == nil {
		return errors.New("bootstrap: Spec.Start is nil")
	}
	// The dependencies' context: not ended by the stop signal, only once
	// everything built on it is done with.
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer endLife()

	tel, err := telemetry.Setup(life, telemetry.Config{
		ServiceName: c.Server.Name, ServiceVersion: c.Server.Version, ServiceCommit: buildinfo.Read().Commit,
		LogLevel: c.Server.LogLevel, LogOutput: spec.Logs,
		TraceSampleRatio: c.TraceSampleRatio,
	})
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(life, flushTimeout)
		defer cancel()
		_ = tel.Shutdown(flushCtx)
	}()
	tel.Logger.Info("starting", slog.String("version", c.Server.Version), slog.String("commit", buildinfo.Read().Commit))

	b := &builder{spec: spec, cfg: c, deps: &Deps{Telemetry: tel, Logger: tel.Logger, Now: c.now(), Stopping: ctx.Done()}}
	if c.DevClockOffset != 0 {
		tel.Logger.Warn("dev mode: this process's clock is shifted", slog.Duration("offset", c.DevClockOffset))
	}
	defer b.close()
	if err := b.build(life); err != nil {
		return err
	}
	svc, err := spec.Start(life, b.deps)
	if err != nil {
		return err
	}
	if svc.Close != nil {
		b.closers = append(b.closers, svc.Close)
	}
	return b.serve(ctx, life, svc)
}

// builder builds a binary's dependencies and serves it.
type builder struct {
	spec     Spec
	cfg      *Config
	deps     *Deps
	verifier *auth.Verifier
	tasks    []func(context.Context) error
	closers  []func()
}

// close releases what build made, newest first.
func (b *builder) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func (b *builder) build(life context.Context) error {
	c, needs, log := b.cfg, b.spec.Needs, b.deps.Logger
	if b.spec.Kind == KindService {
		pages, err := pageTokens(c.PageTokenKey, log)
		if err != nil {
			return err
		}
		b.deps.PageTokens = pages
	}
	readsVault := needs.Vault || needs.Banks || needs.Bus && c.NATSURL != ""
	if (readsVault || !c.TLS.Plaintext) && c.Vault.Address != "" {
		p, err := credentials.New(life, c.Vault,
			credentials.WithLogger(log), credentials.WithMeterProvider(b.deps.Telemetry.MeterProvider))
		if err != nil {
			return fmt.Errorf("vault: %w", err)
		}
		if readsVault {
			b.deps.Vault = p
		}
		b.closers = append(b.closers, func() { _ = p.Close() })
		if b.spec.Kind == KindService {
			b.deps.LogRefs = logRefs(life, p, log)
		}
		if !c.TLS.Plaintext {
			src, err := certs.New(life, p, c.certConfig(b.spec.Kind, needs),
				certs.WithLogger(log), certs.WithMeterProvider(b.deps.Telemetry.MeterProvider))
			if err != nil {
				return err
			}
			b.deps.Certs = src
			b.closers = append(b.closers, func() { _ = src.Close() })
		}
	}
	idp, err := b.identityProviderClient()
	if err != nil {
		return err
	}
	if b.spec.Kind == KindService {
		v, err := auth.NewVerifier(life, auth.Config{Issuer: c.Server.Issuer, Audience: c.Server.Audience, InternalAudience: c.Server.InternalAudience, JWKSURL: c.Server.JWKSURL,
			HTTPClient: idp, Now: b.deps.Now})
		if err != nil {
			return err
		}
		b.verifier = v
		b.closers = append(b.closers, func() { _ = v.Close(context.WithoutCancel(life)) })
	}
	if needs.Banks {
		if err := b.buildBanks(); err != nil {
			return err
		}
	}
	if needs.Storage {
		db, err := storage.Open(life, c.DatabaseURL)
		if err != nil {
			return err
		}
		b.deps.DB = db
		b.closers = append(b.closers, func() { _ = db.Close() })
	}
	if needs.Bus {
		if err := b.buildBus(life); err != nil {
			return err
		}
	}
	if needs.Consent {
		token := client.NewServiceToken(context.WithValue(life, oauth2.HTTPClient, idp), c.TokenURL, c.ClientID, string(c.ClientSecret), c.Server.InternalAudience)
		conn, err := client.Dial(c.ConsentAddr, b.deps.Telemetry, client.Options{
			TransportCredentials: b.deps.TransportCredentials("consent"),
			PerRPCCredentials:    token,
			RetryMethods:         []string{consentv1.ConsentCheckService_CheckConsent_FullMethodName},
		})
		if err != nil {
			return err
		}
		b.closers = append(b.closers, func() { _ = conn.Close() })
		b.deps.Consent = consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{
			CacheTTL: c.ConsentCacheTTL, CheckTimeout: c.ConsentTimeout, CacheUsers: c.ConsentCacheUsers, Logger: log,
			Now: b.deps.Now, MeterProvider: b.deps.Telemetry.MeterProvider,
		})
		// The change stream drops cached decisions and tells open event
		// streams to re-check consent, so it runs whether or not decisions
		// are cached.
		b.tasks = append(b.tasks, func(ctx context.Context) error {
			b.deps.Consent.Watch(ctx)
			return nil
		})
	}
	return nil
}

func (b *builder) buildBanks() error {
	banks, err := runtime.LoadConfig(b.cfg.BanksFile)
	if err != nil {
		return err
	}
	tel := b.deps.Telemetry
	opts := []runtime.Option{runtime.WithRegistryLogger(b.deps.Logger), runtime.WithMeterProvider(tel.MeterProvider), runtime.WithDialOptions(grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tel.TracerProvider),
		otelgrpc.WithMeterProvider(tel.MeterProvider),
		otelgrpc.WithPropagators(tel.Propagator),
	)))}
	if b.deps.Certs != nil {
		// For adapters that trust bankbridge's CA (tls.client_cert_from_service).
		opts = append(opts, runtime.WithClientCertificate(func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return b.deps.Certs.Certificate(), nil
		}))
	}
	if b.deps.Vault != nil {
		opts = append(opts, runtime.WithCredentials(VaultCredentials{Provider: b.deps.Vault}))
	} else {
		for _, bank := range banks {
			if bank.Kind == runtime.KindRemote {
				return fmt.Errorf("%s needs --vault-addr (%s): bank %s is remote, and its credentials are in Vault",
					b.cfg.Server.Name, envName("vault-addr"), bank.ID)
			}
		}
	}
	reg, err := runtime.NewRegistry(banks, opts...)
	if err != nil {
		return err
	}
	b.deps.Banks = reg
	b.closers = append(b.closers, func() { _ = reg.Close() })
	return nil
}

// serve runs the servers of svc until ctx ends or a task fails, then the
// tasks until the servers have drained.
func (b *builder) serve(ctx, life context.Context, svc Service) error {
	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	taskCtx, endTasks := context.WithCancel(life)
	var wg sync.WaitGroup
	var taskErr error
	var once sync.Once
	for _, task := range append(b.tasks, svc.Tasks...) {
		wg.Go(func() {
			if err := task(taskCtx); err != nil {
				once.Do(func() { taskErr = err })
				stop(err)
			}
		})
	}
	err := b.serveKind(stopCtx, svc)
	endTasks()
	wg.Wait()
	return errors.Join(err, taskErr)
}

func (b *builder) serveKind(ctx context.Context, svc Service) error {
	switch b.spec.Kind {
	case KindService:
		return b.serveService(ctx, svc)
	case KindBank:
		return b.serveBank(ctx, svc)
	case KindGateway:
		return b.serveGateway(ctx, svc)
	}
	return fmt.Errorf("bootstrap: unknown kind %d", b.spec.Kind)
}

// serveService serves through the server kit, with the consent check and
// access log of Needs.Consent, and the public HTTP handler of Needs.HTTP.
func (b *builder) serveService(ctx context.Context, svc Service) error {
	if svc.GRPC == nil {
		return errors.New("bootstrap: a service's Start returned no GRPC registration")
	}
	httpLis, err := b.listenPublicHTTP(svc)
	if err != nil {
		return err
	}
	// Product teams call a service without a client certificate; bankbridge's
	// own services present theirs, which internal methods require.
	deps := server.Deps{Telemetry: b.deps.Telemetry, Verifier: b.verifier, AdminHandlers: b.cfg.adminRoutes(b.banksRoute(svc.Admin)),
		TLS: b.deps.serverTLS(tls.VerifyClientCertIfGiven), AdminTLS: b.deps.serverTLS(tls.VerifyClientCertIfGiven),
		LogRefs: b.deps.LogRefs}
	if b.deps.Banks != nil {
		deps.Banks = configuredBanks{b.deps.Banks}
	}
	if b.deps.Consent != nil {
		deps.Consent, deps.Recorder = b.deps.Consent, b.deps.Consent
	}
	if svc.Recorder != nil {
		deps.Recorder = svc.Recorder
	}
	deps.Probes = append(b.probes(), svc.Probes...)
	srv, err := server.New(b.cfg.Server, deps, svc.GRPC)
	if err != nil {
		if httpLis != nil {
			_ = httpLis.Close()
		}
		return err
	}
	listening := Listening{Addr: srv.GRPCAddr(), AdminAddr: srv.AdminAddr()}
	if httpLis == nil {
		b.ready(listening)
		return srv.Serve(ctx)
	}
	listening.HTTPAddr = httpLis.Addr().String()
	b.ready(listening)
	return b.serveWithPublicHTTP(ctx, srv, svc.HTTP, httpLis)
}

// serveBank serves a bank adapter: gRPC with telemetry and health, and the
// admin listener.
func (b *builder) serveBank(ctx context.Context, svc Service) error {
	if svc.GRPC == nil {
		return errors.New("bootstrap: a bank's Start returned no GRPC registration")
	}
	tel, cfg := b.deps.Telemetry, b.cfg.Server
	opts := []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tel.TracerProvider),
		otelgrpc.WithMeterProvider(tel.MeterProvider),
		otelgrpc.WithPropagators(tel.Propagator),
	))}
	if t := b.deps.serverTLS(tls.RequireAndVerifyClientCert); t != nil {
		// Only bankbridge calls a bank adapter: a client certificate of its
		// CA is required, besides the API key.
		opts = append(opts, grpc.Creds(grpccreds.NewTLS(t)))
	}
	srv := grpc.NewServer(opts...)
	svc.GRPC(srv)
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(srv, healthSrv)

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	var ready atomic.Bool
	ready.Store(true)
	endpoints := []server.Endpoint{server.GRPCEndpoint(srv, lis)}
	var admin []server.Endpoint
	listening := Listening{Addr: lis.Addr().String()}
	if cfg.AdminAddr != "" {
		adminLis, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("listen admin HTTP on %s: %w", cfg.AdminAddr, err)
		}
		listening.AdminAddr = adminLis.Addr().String()
		adminLis = b.tlsListener(adminLis, tls.VerifyClientCertIfGiven)
		admin = append(admin, server.AdminEndpoint(adminLis, server.AdminHandler(ready.Load, tel.MetricsHandler, b.cfg.adminRoutes(b.banksRoute(svc.Admin)))))
	}
	b.deps.Logger.Info("serving", slog.String("addr", listening.Addr), slog.String("admin_addr", listening.AdminAddr))
	b.ready(listening)
	return b.shutdown(func() {
		ready.Store(false)
		healthSrv.Shutdown()
	}).Serve(ctx, endpoints, admin)
}

// serveGateway serves an HTTP handler on HTTPAddr, with /readyz.
func (b *builder) serveGateway(ctx context.Context, svc Service) error {
	if svc.HTTP == nil {
		return errors.New("bootstrap: a gateway's Start returned no HTTP handler")
	}
	lis, err := net.Listen("tcp", b.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen HTTP on %s: %w", b.cfg.HTTPAddr, err)
	}
	addr := lis.Addr().String()
	lis = b.tlsListener(lis, tls.VerifyClientCertIfGiven) // product teams call without a client certificate
	var ready atomic.Bool
	ready.Store(true)
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", server.Readyz(ready.Load))
	for pattern, h := range b.cfg.adminRoutes(nil) {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", svc.HTTP)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    svc.MaxHeaderBytes,
		// No WriteTimeout: streamed responses are long-lived; the handler
		// bounds every other call.
		ErrorLog: handshakeLog(b.deps.Logger),
	}
	listening := Listening{Addr: addr}
	var admin []server.Endpoint
	if b.cfg.Server.AdminAddr != "" {
		adminLis, err := net.Listen("tcp", b.cfg.Server.AdminAddr)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("listen admin HTTP on %s: %w", b.cfg.Server.AdminAddr, err)
		}
		listening.AdminAddr = adminLis.Addr().String()
		adminLis = b.tlsListener(adminLis, tls.VerifyClientCertIfGiven)
		h := server.AdminHandlerProbes(ready.Load, b.deps.Telemetry.MetricsHandler, svc.Admin, b.deps.Logger, svc.Probes...)
		admin = append(admin, server.AdminEndpoint(adminLis, h))
	}
	b.deps.Logger.Info("serving", slog.String("addr", addr), slog.String("admin_addr", listening.AdminAddr))
	b.ready(listening)
	return b.shutdown(func() { ready.Store(false) }).Serve(ctx, []server.Endpoint{server.HTTPEndpoint("HTTP", srv, lis)}, admin)
}

// banksRoute adds /banks, each bank's breaker state, recent error rate,
// last success and last error reason, to the admin routes of a binary
// that calls banks.
func (b *builder) banksRoute(extra map[string]http.Handler) map[string]http.Handler {
	if b.deps.Banks == nil {
		return extra
	}
	routes := map[string]http.Handler{"GET /banks": b.deps.Banks.BanksHandler()}
	maps.Copy(routes, extra)
	return routes
}

// logRefs reads the pseudonym key from Vault. Without it the service
// still serves: its log lines then carry no user_ref nor link_ref, which
// the warning says, rather than refs made with a key of its own that would
// differ from every other service's.
func logRefs(ctx context.Context, p *credentials.Provider, log *slog.Logger) *pseudonym.Refs {
	kv, err := p.KV(pseudonym.PathPrefix)
	if err == nil {
		var refs *pseudonym.Refs
		if refs, err = pseudonym.Load(ctx, kvSecrets{kv}); err == nil {
			return refs
		}
	}
	log.Warn("no pseudonym key: log lines carry no user_ref nor link_ref", slog.String("error", err.Error()))
	return nil
}

// kvSecrets reads secrets' fields through the provider's KV.
type kvSecrets struct{ kv *credentials.KV }

func (k kvSecrets) Get(ctx context.Context, id string) (map[string]string, error) {
	s, err := k.kv.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

// tlsListener serves TLS on lis with the binary's certificate, asking for
// client certificates as auth says; with --plaintext it returns lis.
func (b *builder) tlsListener(lis net.Listener, auth tls.ClientAuthType) net.Listener {
	t := b.deps.serverTLS(auth)
	if t == nil {
		return lis
	}
	return tls.NewListener(lis, server.HTTPTLS(t))
}

// handshakeLog takes net/http's own error lines, mostly failed TLS
// handshakes (a plaintext client, a load balancer's TCP probe), at DEBUG:
// they are the caller's problem, and frequent.
func handshakeLog(log *slog.Logger) *stdlog.Logger {
	return slog.NewLogLogger(log.Handler(), slog.LevelDebug)
}

func (b *builder) shutdown(notServing func()) server.Shutdown {
	return server.Shutdown{
		DrainDelay: b.cfg.Server.DrainDelay,
		Grace:      b.cfg.Server.ShutdownGrace,
		Logger:     b.deps.Logger,
		NotServing: notServing,
	}
}

func (b *builder) ready(l Listening) {
	if b.spec.Ready != nil {
		b.spec.Ready(l)
	}
}

// configuredBanks tells the server kit which banks the registry knows.
type configuredBanks struct{ r *runtime.Registry }

// HasBank reports whether bank id is configured.
func (b configuredBanks) HasBank(id string) bool {
	_, ok := b.r.Bank(id)
	return ok
}
