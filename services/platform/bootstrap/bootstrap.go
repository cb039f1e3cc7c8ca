// Package bootstrap is the one way a bankbridge binary starts: every
// service, the gateway and the sandbox bank. A binary declares what it is
// (a Spec: its kind, its config, the dependencies it needs, and a Start
// function that wires its handlers); the kit parses flags and BANKBRIDGE_*
// variables, refuses to start when a declared dependency is not configured,
// sets up telemetry with the build version, builds the dependencies, serves,
// and stops with the one shutdown sequence (server.Shutdown).
//
// A service's main:
//
//	func main() { bootstrap.Main("balance", run) }
//
//	func run(ctx context.Context, args []string) error {
//		cfg := bootstrap.Defaults("balance", "127.0.0.1:9102", "127.0.0.1:9202")
//		return bootstrap.Run(ctx, args, bootstrap.Spec{
//			Config: &cfg,
//			Needs:  bootstrap.Needs{Banks: true, Consent: true},
//			Start: func(_ context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
//				h := transport.New(app.New(banks.New(d.Banks), d.Consent))
//				return bootstrap.Service{GRPC: func(r grpc.ServiceRegistrar) { balancev1.RegisterBalanceServiceServer(r, h) }}, nil
//			},
//		})
//	}
//
// Transport: every listener of every kind speaks TLS with a certificate
// for the binary's name from Vault's PKI engine, renewed in the background
// (Deps.Certs, tls.go); connections to other bankbridge processes present
// it (Deps.TransportCredentials, the consent service's and the banks'
// connections). --plaintext turns TLS off, in dev mode only.
//
// Lifetimes: ctx (from Main, ended by SIGINT or SIGTERM) is only the stop
// signal. Everything a handler uses — the Vault credentials provider, the
// token verifier's JWKS cache, the service token, connections, the
// database — lives on a context of its own that ends after the servers have
// drained, so calls served during the drain work like any other.
package bootstrap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/buildinfo"
	"github.com/bankbridge/bankbridge/services/platform/certs"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Kind is how a binary serves; it decides which listener and caller flags
// it takes.
type Kind int

const (
	// KindService is a bankbridge service: gRPC through the server kit
	// (token check, validation, access rules, consent, access log, health,
	// reflection) on --grpc-addr, and the admin listener on --admin-addr;
	// with Needs.HTTP, also a public HTTP handler on --http-addr.
	KindService Kind = iota
	// KindBank is a bank adapter server (the sandbox bank): gRPC with
	// telemetry and health but no bankbridge token check — the adapter
	// protocol authenticates bankbridge by API key, and TLS by a client
	// certificate of bankbridge's CA, which its listener requires — on
	// --grpc-addr, and the admin listener on --admin-addr.
	KindBank
	// KindGateway is an HTTP server on --addr (the REST gateway), with
	// /readyz added.
	KindGateway
)

// Needs are the dependencies a binary declares. Each one declared must be
// configured, or the binary refuses to start and names the missing flag;
// each one declared is set in Deps.
type Needs struct {
	// Banks: the bank adapter registry from --banks, with bank credentials
	// from Vault when --vault-addr is set (required for remote banks).
	Banks bool
	// Vault: the Vault credentials provider (--vault-addr, ...).
	Vault bool
	// Consent: the consent check and access log through the consent service
	// (--consent-addr), called with this service's client credentials from
	// --token-url.
	Consent bool
	// Storage: the service's database (--database-url, or a SQLite file
	// named after the service in --data-dir).
	Storage bool
	// Bus: the event bus, NATS JetStream (platform/events). --nats-url
	// names a NATS server or cluster; without it the service embeds a NATS
	// server of its own, its streams in --nats-dir (default
	// <data-dir>/<service>/nats), which other processes reach at the URL
	// it logs. With --nats-url and --vault-addr, the NATS credentials are
	// read from Vault KV v2 at bankbridge/nats (keys creds, token, or user
	// and password; see credentials.NATSPath) at every connection, so a
	// rotation needs no restart; with no secret there, it connects
	// without. With Storage too, the service gets the outbox
	// (Deps.Outbox, its table migrated) and runs the relay that publishes
	// it (one leads per database; published rows are kept
	// --outbox-retention). Only a KindService may declare it: the users'
	// references on the bus are keyed with its --subject-key.
	Bus bool
	// HTTP: a public HTTP listener on --http-addr beside the gRPC one,
	// serving Service.HTTP, for callers that cannot speak gRPC with a
	// bearer token (a carrier's signed webhooks). The handler
	// authenticates its callers itself: none of the server kit's
	// interceptors run there. It gets OpenTelemetry instrumentation, the
	// X-Trace-Id response header, panics answered with a masked INTERNAL,
	// and the gRPC listener's drain and graceful stop. Only a KindService
	// may declare it (a gateway is an HTTP server already).
	HTTP bool
}

// Configurer is a binary's config: a struct that embeds Config. A config
// with fields of its own also implements FlagRegisterer, and Validator to
// check them.
type Configurer interface {
	base() *Config
}

// FlagRegisterer is a config with flags of its own, registered after the
// kit's.
type FlagRegisterer interface {
	RegisterFlags(fs *flag.FlagSet)
}

// Validator is a config that checks its own fields once they are parsed.
type Validator interface {
	Validate() error
}

// Spec declares one binary.
type Spec struct {
	Kind   Kind
	Config Configurer
	Needs  Needs
	// Start wires the binary's handlers once every dependency is up, and
	// returns what to serve. It runs once; ctx lives until the servers have
	// drained.
	Start func(ctx context.Context, d *Deps) (Service, error)
	// Ready, when set, learns the bound addresses (tests listen on port 0).
	Ready func(Listening)
	// Logs receives the JSON log lines; default os.Stderr.
	Logs io.Writer
}

// Listening are the addresses a binary is bound to.
type Listening struct {
	// Addr is the gRPC address (KindService, KindBank) or the HTTP address
	// (KindGateway).
	Addr string
	// AdminAddr is the admin listener's address; "" without one.
	AdminAddr string
	// HTTPAddr is a KindService's public HTTP listener (Needs.HTTP); ""
	// without one.
	HTTPAddr string
}

// Service is what a Start function hands back to be served.
type Service struct {
	// GRPC registers the implementations (KindService, KindBank).
	GRPC func(grpc.ServiceRegistrar)
	// HTTP is the handler of a KindGateway binary, or the public HTTP
	// handler of a KindService that declares Needs.HTTP (required then,
	// refused otherwise).
	HTTP http.Handler
	// Admin are extra routes on the admin listener.
	Admin map[string]http.Handler
	// Probes are what the admin listener's /readyz checks besides the
	// kit's own (the gateway: that its backends answer).
	Probes []server.Probe
	// Recorder appends to the access log in place of the consent service's
	// (the consent service records its own accesses).
	Recorder access.Recorder
	// Tasks run beside the servers until they have drained (then their ctx
	// ends). A task's error stops the binary.
	Tasks []func(ctx context.Context) error
	// Close runs after the servers have drained and the tasks returned,
	// before the dependencies close.
	Close func()
	// MaxHeaderBytes bounds a KindGateway request's header fields, read
	// before the handler runs (http.Server.MaxHeaderBytes: 431 above it);
	// 0 is net/http's 1 MiB.
	MaxHeaderBytes int
}

// Deps are the dependencies the kit built. A dependency in Needs is never
// nil; they stay usable until the servers have drained.
type Deps struct {
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// PageTokens mints and reads a KindService's page tokens, with the key
	// of --page-token-key.
	PageTokens *pagetoken.Tokens
	// Banks is set with Needs.Banks.
	Banks *runtime.Registry
	// Vault is set with Needs.Vault, and with Needs.Banks when --vault-addr
	// is set.
	Vault *credentials.Provider
	// LogRefs makes the pseudonymous user and link references of log
	// lines (platform/pseudonym), with the key in Vault at
	// bankbridge/telemetry/pseudonym; nil without Vault or that key (a
	// KindService's calls then log no user_ref nor link_ref).
	LogRefs *pseudonym.Refs
	// Consent is set with Needs.Consent.
	Consent *consentcheck.Checker
	// DB is set with Needs.Storage.
	DB *storage.DB
	// Bus is set with Needs.Bus.
	Bus *events.Bus
	// Outbox is set with Needs.Storage and Needs.Bus: events written in
	// the caller's transaction, published by the relay the kit runs.
	Outbox events.Outbox
	// Certs is the binary's TLS identity: a certificate for its name from
	// Vault's PKI engine, renewed in the background. Its listeners serve
	// it; TransportCredentials and ClientTLS present it to other bankbridge
	// processes. Nil with --plaintext (dev mode only).
	Certs *certs.Source
	// Now is the binary's clock, for the service's own times (its app's
	// Now): the wall clock, shifted by --dev-clock-offset in dev mode. The
	// token verifier and the consent check read it too.
	Now func() time.Time
	// Stopping is closed when the stop signal arrives. Long-lived streams
	// end on it, so they do not hold the graceful stop until the grace
	// period ends; unary calls are served through the drain.
	Stopping <-chan struct{}
}

// Main runs a binary: run gets the arguments and a context that ends on
// SIGINT or SIGTERM. Main exits 2 when run returns flag.ErrHelp (-h),
// 1 with the error on stderr when it fails, 0 otherwise; with --version it
// prints the build and exits 0.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := mainCode(ctx, name, os.Args[1:], os.Stdout, os.Stderr, run)
	stop()
	if code != 0 {
		os.Exit(code)
	}
}

// mainCode is Main up to its exit code. With --version among the flags it
// prints the build (bankbridge-<name> v1.0.0 (commit ..., go...)) and
// returns 0 without calling run, for every binary alike (see
// versionRequested).
func mainCode(ctx context.Context, name string, args []string, stdout, stderr io.Writer, run func(ctx context.Context, args []string) error) int {
	if versionRequested(args) {
		fmt.Fprintln(stdout, buildinfo.Read().Line(name))
		return 0
	}
	err := run(ctx, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// Run parses args into spec.Config, then serves until ctx ends. Arguments
// left after the flags are an error.
func Run(ctx context.Context, args []string, spec Spec) error {
	rest, err := Parse(spec, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments: %q", rest)
	}
	return Serve(ctx, spec)
}
