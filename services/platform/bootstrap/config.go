package bootstrap

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/bankbridge/bankbridge/services/platform/buildinfo"
	"github.com/bankbridge/bankbridge/services/platform/certs"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// envPrefix names every binary's environment variables: --banks is
// BANKBRIDGE_BANKS. A flag wins over the environment.
const envPrefix = "BANKBRIDGE"

// Config is what every binary reads at start. A binary embeds it in its own
// config; only the fields of its Kind and Needs are bound to flags.
type Config struct {
	// Server is the server kit's config. Its Name and Version are set by
	// the kit; KindBank and KindGateway read only the addresses, the log
	// level and the drain settings.
	Server server.Config
	// HTTPAddr is a KindGateway binary's listen address (--addr), or a
	// KindService's public HTTP listener (--http-addr, with Needs.HTTP).
	HTTPAddr string
	// PageTokenKey signs a KindService's page tokens (--page-token-key):
	// one secret of at least 32 bytes, the same on every replica, or
	// "new,old" while a rotation settles. Unset, each process draws its own
	// (see platform/pagetoken).
	PageTokenKey credentials.Sensitive

	Vault credentials.Config

	// TLS secures every listener and connection with a certificate from
	// Vault's PKI engine (tls.go).
	TLS TLSConfig

	// BanksFile is banks.yaml (Needs.Banks).
	BanksFile string

	// ConsentAddr is the consent service (Needs.Consent).
	ConsentAddr string
	// ConsentCacheTTL is how long allowed consent decisions are reused
	// while the change stream is up; 0 asks every time. Revocations and
	// expiries do not wait for it: the change stream evicts a revoked
	// link's decisions at once, a decision never outlives its consent, and
	// every cached decision is dropped when the stream breaks. It only
	// bounds how stale a decision is should a change be missed, so it can
	// be long enough for a user's calls to hit the cache (at 2s, 45% of
	// GetBalance calls over 1,000 users asked consent again).
	ConsentCacheTTL time.Duration
	// TraceSampleRatio samples that share of new traces (parent-based: a
	// caller's sampled trace is always followed); 0 leaves it to
	// OTEL_TRACES_SAMPLER, whose default records every trace.
	TraceSampleRatio float64
	// ConsentTimeout bounds one question to the consent service within the
	// caller's deadline: past it the call fails at once with UNAVAILABLE
	// (CONSENT_UNAVAILABLE) and a retry hint.
	ConsentTimeout time.Duration
	// ConsentCacheUsers bounds how many users' consent decisions are
	// cached.
	ConsentCacheUsers int
	// Service credentials (OAuth 2.0 client credentials) for calls to the
	// consent service.
	TokenURL     string
	ClientID     string
	ClientSecret credentials.Sensitive

	// DatabaseURL is sqlite:/path/file.db or postgres://... (Needs.Storage);
	// empty means the SQLite file <service>.db in DataDir.
	DatabaseURL string
	DataDir     string

	// NATSURL is the NATS server or cluster of the event bus (Needs.Bus);
	// empty embeds a server, its streams in NATSDir (default
	// <DataDir>/<service>/nats).
	NATSURL string
	NATSDir string
	// Events is the stream's shape: its retention (--events-max-age) and
	// copies in a cluster (--nats-replicas). Every service must agree.
	Events events.StreamConfig
	// OutboxRetention is how long published outbox rows are kept
	// (Needs.Storage and Needs.Bus).
	OutboxRetention time.Duration

	// Pprof serves Go's profiling endpoints, /debug/pprof/, on the admin
	// listener (the gateway, which has none: on its own listener, in
	// --dev-mode only). Off by default (pprof.go).
	Pprof bool

	// DevClockOffset shifts the clock the kit hands out (Deps.Now: the
	// token verifier's, the consent check's, the service's own) by this
	// much, to try the binary under clock skew (--dev-clock-offset, e.g.
	// -5m): Go reads the wall clock through the vDSO, which tools such as
	// libfaketime do not reach. --dev-mode only.
	DevClockOffset time.Duration
}

// now is the binary's clock: the wall clock, shifted by DevClockOffset.
func (c *Config) now() func() time.Time {
	if c.DevClockOffset == 0 {
		return time.Now
	}
	offset := c.DevClockOffset
	return func() time.Time { return time.Now().Add(offset) }
}

func (c *Config) base() *Config { return c }

// Defaults returns the config a binary starts from: its name and default
// listen addresses (gRPC and admin; KindGateway sets HTTPAddr instead).
func Defaults(name, grpcAddr, adminAddr string) Config {
	return Config{
		Server:            server.Defaults(name, grpcAddr, adminAddr),
		Vault:             credentials.Config{Auth: credentials.AuthConfig{Method: credentials.AuthToken}},
		TLS:               TLSConfig{Mount: certs.DefaultMount, TTL: certs.DefaultTTL},
		ConsentCacheTTL:   30 * time.Second,
		ConsentTimeout:    consentcheck.DefaultCheckTimeout,
		ConsentCacheUsers: consentcheck.DefaultCacheUsers,
		ClientID:          name,
		DataDir:           "data",
		Events:            events.StreamConfig{MaxAge: events.DefaultMaxAge, Replicas: 1},
		OutboxRetention:   events.DefaultRetention,
	}
}

// Parse fills spec.Config from args and BANKBRIDGE_* environment variables
// and returns the arguments left after the flags. It checks the binary's
// own fields (Validator) but not the dependencies: a subcommand may need
// fewer of them than serving does, and Serve checks those.
func Parse(spec Spec, args []string) ([]string, error) {
	c := spec.Config.base()
	fs := flag.NewFlagSet(c.Server.Name, flag.ContinueOnError)
	fs.Usage = func() { usage(fs) }
	c.registerFlags(fs, spec.Kind, spec.Needs)
	if own, ok := spec.Config.(FlagRegisterer); ok {
		own.RegisterFlags(fs)
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(envPrefix)); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Server.Version = buildinfo.Read().Version
	if spec.Needs.Storage && c.DatabaseURL == "" && c.DataDir != "" {
		c.DatabaseURL = storage.SQLiteURL(c.DataDir, c.Server.Name)
	}
	if spec.Needs.Bus && c.NATSURL == "" && c.NATSDir == "" && c.DataDir != "" {
		c.NATSDir = filepath.Join(c.DataDir, c.Server.Name, "nats")
	}
	if v, ok := spec.Config.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return fs.Args(), nil
}

func (c *Config) registerFlags(fs *flag.FlagSet, kind Kind, needs Needs) {
	switch kind {
	case KindService:
		c.Server.RegisterFlags(fs)
		fs.Func("page-token-key", "HMAC key of page tokens, shared by every replica, at least 32 bytes; new,old while rotating (unset: random per process)", func(s string) error {
			c.PageTokenKey = credentials.Sensitive(s)
			return nil
		})
	case KindBank:
		fs.StringVar(&c.Server.GRPCAddr, "grpc-addr", c.Server.GRPCAddr, "gRPC listen address")
		fs.StringVar(&c.Server.AdminAddr, "admin-addr", c.Server.AdminAddr, "HTTP listen address for /healthz, /readyz, /metrics and the admin routes; empty turns it off")
		c.registerRunFlags(fs)
	case KindGateway:
		fs.StringVar(&c.HTTPAddr, "addr", c.HTTPAddr, "HTTP listen address")
		fs.StringVar(&c.Server.AdminAddr, "admin-addr", c.Server.AdminAddr, "HTTP listen address for /healthz, /readyz (every backend answers), /metrics and the admin routes; empty turns it off")
		c.registerRunFlags(fs)
	}
	if needs.HTTP && kind == KindService {
		fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "public HTTP listen address, for callers that cannot use gRPC (e.g. carriers' signed pushes)")
	}
	fs.Float64Var(&c.TraceSampleRatio, "trace-sample-ratio", c.TraceSampleRatio, "share of new traces sampled, in (0, 1], a caller's sampled trace always followed; 0: OTEL_TRACES_SAMPLER decides (default: every trace)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve Go's profiling endpoints, /debug/pprof/, on the admin listener (the gateway: on --addr, with --dev-mode only); off by default")
	fs.DurationVar(&c.DevClockOffset, "dev-clock-offset", c.DevClockOffset, "shift this process's clock (token expiry, consent cache, the service's own times) by this much, e.g. -5m, to try it under clock skew; refused outside --dev-mode")
	// Every binary: its TLS certificate comes from Vault.
	c.Vault.RegisterFlags(fs)
	c.registerTLSFlags(fs)
	if needs.Banks {
		fs.StringVar(&c.BanksFile, "banks", c.BanksFile, "banks.yaml: the banks and how to reach their adapters")
	}
	if needs.Consent {
		fs.StringVar(&c.ConsentAddr, "consent-addr", c.ConsentAddr, "consent service gRPC address")
		fs.DurationVar(&c.ConsentCacheTTL, "consent-cache-ttl", c.ConsentCacheTTL, "reuse allowed consent decisions this long while the change stream is up (0: never)")
		fs.IntVar(&c.ConsentCacheUsers, "consent-cache-users", c.ConsentCacheUsers, "most users whose consent decisions are cached; past it the least recently used go")
		fs.DurationVar(&c.ConsentTimeout, "consent-timeout", c.ConsentTimeout, "how long to wait for the consent service's answer before refusing with UNAVAILABLE (CONSENT_UNAVAILABLE)")
		fs.StringVar(&c.TokenURL, "token-url", c.TokenURL, "identity provider token endpoint for this service's client credentials")
		fs.StringVar(&c.ClientID, "client-id", c.ClientID, "this service's client id at the identity provider")
		fs.Func("client-secret", "this service's client secret", func(s string) error {
			c.ClientSecret = credentials.Sensitive(s)
			return nil
		})
	}
	if needs.Storage || needs.Bus {
		fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the embedded SQLite database and NATS server")
	}
	if needs.Storage {
		fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "sqlite:/path/to/file.db or postgres://user:pass@host/db; default <service>.db in --data-dir")
	}
	if needs.Bus {
		fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server or cluster of the event bus, nats://host:4222[,nats://...]; credentials from Vault at bankbridge/nats when --vault-addr is set; empty embeds a NATS server")
		fs.StringVar(&c.NATSDir, "nats-dir", c.NATSDir, "directory of the embedded NATS server's streams (no --nats-url); default <data-dir>/<service>/nats")
		fs.DurationVar(&c.Events.MaxAge, "events-max-age", c.Events.MaxAge, "how long the event stream keeps events (older stream cursors expire); the same for every service")
		fs.IntVar(&c.Events.Replicas, "nats-replicas", c.Events.Replicas, "copies of the event stream in a NATS cluster")
	}
	if needs.Storage && needs.Bus {
		fs.DurationVar(&c.OutboxRetention, "outbox-retention", c.OutboxRetention, "how long published events stay in the outbox table before they are pruned")
	}
}

// registerRunFlags binds the settings every binary has, for the kinds that
// do not take the server kit's flags (which include them).
func (c *Config) registerRunFlags(fs *flag.FlagSet) {
	fs.TextVar(&c.Server.LogLevel, "log-level", c.Server.LogLevel, "minimum log level: DEBUG, INFO, WARN, ERROR")
	fs.BoolVar(&c.Server.DevMode, "dev-mode", c.Server.DevMode, "enable dev-only features (the gateway's token issuer, --plaintext); never in production")
	fs.DurationVar(&c.Server.DrainDelay, "drain-delay", c.Server.DrainDelay, "on SIGTERM, how long to report not ready while still serving, so load balancers stop routing here first")
	fs.DurationVar(&c.Server.ShutdownGrace, "shutdown-grace", c.Server.ShutdownGrace, "how long in-flight calls may take to finish after the drain delay before they are cut")
}

// check reports the first setting that keeps the binary from serving,
// naming the flag to set.
func (c *Config) check(kind Kind, needs Needs) error {
	name := c.Server.Name
	missing := func(flags ...string) error {
		var named []string
		for _, f := range flags {
			named = append(named, fmt.Sprintf("--%s (%s)", f, envName(f)))
		}
		return fmt.Errorf("%s needs %s", name, strings.Join(named, " and "))
	}
	switch kind {
	case KindService:
		var unset []string
		if c.Server.Issuer == "" {
			unset = append(unset, "issuer")
		}
		if c.Server.JWKSURL == "" {
			unset = append(unset, "jwks-url")
		}
		if len(unset) > 0 {
			return missing(unset...) // in dev mode too: every call's token is checked
		}
		if err := c.Server.Validate(); err != nil {
			return err
		}
	case KindBank:
		if c.Server.GRPCAddr == "" {
			return missing("grpc-addr")
		}
	case KindGateway:
		if c.HTTPAddr == "" {
			return missing("addr")
		}
		if c.Pprof && !c.Server.DevMode {
			return errors.New("config: --pprof on the gateway serves profiles on its public listener: --dev-mode only")
		}
	}
	if c.DevClockOffset != 0 && !c.Server.DevMode {
		return fmt.Errorf("%s: --dev-clock-offset (%s) is refused outside dev mode: it skews the clock tokens and consents are checked against", name, envName("dev-clock-offset"))
	}
	if kind != KindService && (c.Server.DrainDelay < 0 || c.Server.ShutdownGrace <= 0) {
		return fmt.Errorf("config: --drain-delay must not be negative and --shutdown-grace must be positive")
	}
	if err := c.checkTLS(kind); err != nil {
		return err
	}
	switch {
	case needs.Vault && c.Vault.Address == "":
		return missing("vault-addr")
	case needs.Banks && c.BanksFile == "":
		return missing("banks")
	case needs.Consent && c.ConsentAddr == "":
		return missing("consent-addr")
	case needs.Consent && c.TokenURL == "":
		return missing("token-url")
	case needs.Storage && c.DatabaseURL == "":
		return missing("database-url")
	case needs.Bus && kind != KindService:
		return fmt.Errorf("%s: only a service can need the event bus", name)
	case needs.HTTP && kind != KindService:
		return fmt.Errorf("%s: only a service can need a public HTTP listener", name)
	case needs.HTTP && c.HTTPAddr == "":
		return missing("http-addr")
	case needs.Bus && c.NATSURL == "" && c.NATSDir == "":
		return fmt.Errorf("%s needs --nats-url (%s) or, for an embedded NATS server, --nats-dir (%s)",
			name, envName("nats-url"), envName("nats-dir"))
	case needs.Bus && (c.Events.MaxAge <= 0 || c.Events.Replicas <= 0):
		return errors.New("config: --events-max-age and --nats-replicas must be positive")
	case needs.Bus && needs.Storage && c.OutboxRetention <= 0:
		return errors.New("config: --outbox-retention must be positive")
	}
	return nil
}

// pageTokens returns the page tokens of key, or of a random key of this
// process, with a warning on log, when none is set.
func pageTokens(key credentials.Sensitive, log *slog.Logger) (*pagetoken.Tokens, error) {
	if key == "" {
		log.Warn("no --page-token-key set: page tokens are signed with a random key of this process, " +
			"so a page token is refused by any other replica and after a restart")
		return pagetoken.Random(), nil
	}
	t, err := pagetoken.FromKeys(string(key))
	if err != nil {
		return nil, fmt.Errorf("--page-token-key (%s): %w", envName("page-token-key"), err)
	}
	return t, nil
}

// versionRequested reports whether args ask for the binary's version:
// -version or --version before any "--". Main reads it before run, so
// every binary answers it, those with flags of their own (devstack,
// benchratio) too. It is not a flag of the set on purpose: ff would also
// read it from BANKBRIDGE_VERSION, a name a deployment may well use for
// something else, and a binary that printed its version instead of serving
// would be a strange outage.
func versionRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-version", "--version", "-version=true", "--version=true":
			return true
		}
	}
	return false
}

// usage is -h's text: the flags, and --version, which Main handles.
func usage(fs *flag.FlagSet) {
	fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
	fs.PrintDefaults()
	fmt.Fprint(fs.Output(), "  -version\n    \tprint the build's version, commit and Go release, and exit\n")
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
