package server

import (
	"errors"
	"flag"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// Config is what every bankbridge service reads at start. bootstrap binds
// it to flags (RegisterFlags) and BANKBRIDGE_* environment variables, a
// flag winning: --grpc-addr or BANKBRIDGE_GRPC_ADDR, and so on.
type Config struct {
	// Name is the service name in telemetry; set by the service, not a flag.
	Name string
	// Version is the build version in telemetry.
	Version string

	GRPCAddr  string
	AdminAddr string
	DevMode   bool
	LogLevel  slog.Level

	Issuer   string
	Audience string
	// InternalAudience is the aud of the tokens internal methods take
	// (bankbridge's own services' client-credentials tokens), and no other
	// method does; it differs from Audience, so neither token passes for
	// the other.
	InternalAudience string
	JWKSURL          string
	ClientPurposes   string
	InternalClients  string
	// PartnerClients are the client ids of partners (payment providers,
	// merchants, carriers): the only clients that may call AUDIENCE_PARTNER
	// methods, and refused by every other method. Comma-separated.
	PartnerClients string
	// OperatorClients are the client ids of bankbridge's on-call operator
	// tools: the only clients that may call AUDIENCE_OPERATOR methods, and
	// refused by every other method. Comma-separated.
	OperatorClients string
	// SubjectKey keys the pseudonymous subject ids in access-log entries;
	// every replica of every service shares it.
	SubjectKey string

	// Limits are the per-client and per-user rate limits of public,
	// client and partner methods (--rate-limit-*, --redis-url).
	Limits limits.Config

	// Reflection serves gRPC server reflection, which describes every
	// method to anyone who asks; off unless asked for (the dev stack does).
	Reflection bool

	DrainDelay      time.Duration
	ShutdownGrace   time.Duration
	MaxRecvMsgBytes int
	MaxSendMsgBytes int
	// MaxHeaderListBytes bounds a call's metadata, all of it (HTTP/2
	// header list size); a call over it is refused before any handler.
	MaxHeaderListBytes int
	// MaxConcurrentStreams bounds the calls and streams open at once on
	// one connection. The gateway carries every REST call to a service
	// over one connection, so it also bounds what one gateway replica has
	// open at a service; a call over it waits for one to end.
	MaxConcurrentStreams int
	// MaxInflight bounds the calls of public, client and partner methods
	// in flight at once in this process (internal methods: internalFactor
	// times as many); a call over it is refused at once with UNAVAILABLE
	// (OVERLOADED). It is
	// a ceiling: the limit in force adapts below it when the calls
	// admitted time out on the kit's dependencies (admission.go).
	// Streams count only while they open (admission.go).
	MaxInflight int
}

// Defaults a service starts from; it sets Name and its default ports.
func Defaults(name, grpcAddr, adminAddr string) Config {
	return Config{
		Name:             name,
		Version:          "dev",
		GRPCAddr:         grpcAddr,
		AdminAddr:        adminAddr,
		LogLevel:         slog.LevelInfo,
		Audience:         "bankbridge",
		InternalAudience: auth.DefaultInternalAudience,
		Limits:           limits.Defaults(),
		DrainDelay:       5 * time.Second,
		ShutdownGrace:    10 * time.Second,
		MaxRecvMsgBytes:  1 << 20, // requests are small; 1 MiB bounds a hostile body
		MaxSendMsgBytes:  8 << 20,
		// A bearer token, a purpose, an idempotency key and trace context
		// take a few KiB; grpc-go's own default is 16 MiB.
		MaxHeaderListBytes: 64 << 10,
		// grpc-go's default is unlimited; enough for a gateway replica's
		// open REST streams, few enough to bound what one connection holds.
		MaxConcurrentStreams: 4096,
		// A call mostly waits on a bank, the database or another service;
		// 64 per core keep the cores busy without letting a surge queue
		// up memory, goroutines and calls its dependencies cannot answer
		// in time. It is the ceiling of an adaptive limit (admission.go).
		MaxInflight: 64 * runtime.GOMAXPROCS(0),
	}
}

// RegisterFlags binds every field to fs, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "gRPC listen address")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "HTTP listen address for /healthz, /readyz and /metrics")
	fs.BoolVar(&c.DevMode, "dev-mode", c.DevMode, "enable dev-only features (the dev token issuer); never in production")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "minimum log level: DEBUG, INFO, WARN, ERROR")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "required iss of bearer tokens")
	fs.StringVar(&c.Audience, "audience", c.Audience, "required aud of bearer tokens on public, client and partner methods")
	fs.StringVar(&c.InternalAudience, "internal-audience", c.InternalAudience, "required aud of bearer tokens on internal methods (bankbridge services' own client-credentials tokens); must differ from --audience")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "URL of the token issuer's JWKS")
	fs.StringVar(&c.ClientPurposes, "client-purposes", c.ClientPurposes, "purposes each client may declare: client=PURPOSE,PURPOSE;client2=...")
	fs.StringVar(&c.SubjectKey, "subject-key", c.SubjectKey, "secret key of the pseudonymous subject ids in access logs; the same for every service and replica (required outside dev mode)")
	fs.StringVar(&c.InternalClients, "internal-clients", c.InternalClients, "comma-separated client ids of bankbridge services allowed to call internal methods")
	fs.StringVar(&c.PartnerClients, "partner-clients", c.PartnerClients, "comma-separated client ids of partners (payment providers, merchants, carriers) allowed to push data with client-credentials tokens; they may call nothing else")
	fs.StringVar(&c.OperatorClients, "operator-clients", c.OperatorClients, "comma-separated client ids of on-call operator tools allowed to call operator methods (look-up by trace id) with client-credentials tokens; they may call nothing else")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on SIGTERM, how long to report NOT_SERVING while still serving, so load balancers stop routing here first")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long to drain in-flight calls on SIGTERM before cutting them")
	fs.IntVar(&c.MaxRecvMsgBytes, "max-recv-msg-bytes", c.MaxRecvMsgBytes, "largest request message accepted")
	fs.IntVar(&c.MaxSendMsgBytes, "max-send-msg-bytes", c.MaxSendMsgBytes, "largest response message sent")
	fs.IntVar(&c.MaxHeaderListBytes, "max-header-list-bytes", c.MaxHeaderListBytes, "largest metadata (HTTP/2 header list) a call may carry")
	fs.IntVar(&c.MaxConcurrentStreams, "max-concurrent-streams", c.MaxConcurrentStreams, "most calls and streams open at once on one connection (the gateway's REST calls to a service share one)")
	fs.IntVar(&c.MaxInflight, "max-inflight", c.MaxInflight, "most calls in flight at once in this process, for public, client and partner methods (internal ones: 4 times as many); the excess is refused at once with UNAVAILABLE (OVERLOADED) and a retry hint; health checks are never refused; a ceiling: the limit in force shrinks when admitted calls time out on the consent service or the access log, and grows back (admission.go)")
	fs.BoolVar(&c.Reflection, "reflection", c.Reflection, "serve gRPC server reflection, which describes every method to any caller (off by default; the dev stack turns it on)")
	c.Limits.RegisterFlags(fs)
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("config: service name is empty")
	case c.GRPCAddr == "":
		return errors.New("config: --grpc-addr (BANKBRIDGE_GRPC_ADDR) is empty")
	case c.JWKSURL == "" && !c.DevMode:
		return errors.New("config: --jwks-url (BANKBRIDGE_JWKS_URL) is required outside dev mode")
	case c.Issuer == "" && !c.DevMode:
		return errors.New("config: --issuer (BANKBRIDGE_ISSUER) is required outside dev mode")
	case c.SubjectKey == "" && !c.DevMode:
		return errors.New("config: --subject-key (BANKBRIDGE_SUBJECT_KEY) is required outside dev mode")
	case c.DrainDelay < 0:
		return errors.New("config: --drain-delay must not be negative")
	case c.ShutdownGrace <= 0:
		return errors.New("config: --shutdown-grace must be positive")
	case c.MaxRecvMsgBytes <= 0 || c.MaxSendMsgBytes <= 0:
		return errors.New("config: message size limits must be positive")
	case c.MaxHeaderListBytes <= 0:
		return errors.New("config: --max-header-list-bytes must be positive")
	case c.MaxConcurrentStreams <= 0 || c.MaxConcurrentStreams > math.MaxUint32:
		return errors.New("config: --max-concurrent-streams must be positive")
	case c.MaxInflight <= 0:
		return errors.New("config: --max-inflight must be positive")
	case c.InternalAudience == "" || c.InternalAudience == c.Audience:
		return errors.New("config: --internal-audience (BANKBRIDGE_INTERNAL_AUDIENCE) must be set and differ from --audience: a token for one would call the other's methods")
	}
	return c.Limits.Validate()
}

// Partners returns the configured partner client ids as a set.
func (c Config) Partners() map[string]bool { return clientSet(c.PartnerClients) }

// Operators returns the configured operator client ids as a set.
func (c Config) Operators() map[string]bool { return clientSet(c.OperatorClients) }

// clientSet reads a comma-separated list of client ids.
func clientSet(list string) map[string]bool {
	set := map[string]bool{}
	for p := range strings.SplitSeq(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			set[p] = true
		}
	}
	return set
}
