// Command consent is bankbridge's consent service: users link a bank under
// its two-factor challenge, see and revoke their links and read their
// access log (bankbridge.consent.v1.ConsentService), and bankbridge's data
// services check consent and record every access
// (bankbridge.consent.v1.ConsentCheckService).
//
// Usage:
//
//	consent [flags]                           serve
//	consent [flags] verify-access-log [user]  check the access log hash chains and exit
//
// Every flag can also be set as a BANKBRIDGE_* environment variable (a flag
// wins): --database-url is BANKBRIDGE_DATABASE_URL, and so on. Besides the
// platform server's flags (--grpc-addr, --issuer, --jwks-url,
// --client-purposes, --internal-clients, ...) and the Vault flags
// (--vault-addr, --vault-auth, --vault-token, --vault-refresh, ...):
//
//	--data-dir        directory of the embedded SQLite database (default "data")
//	--database-url    sqlite:/path/file.db or postgres://...; default the SQLite file consent.db in --data-dir
//	--banks           banks.yaml: the banks and their adapters (required to serve)
//	--consent-ttl     how long a consent lasts unless the user asks for less, and the most it may (default 2160h, 90 days)
//	--sweep-interval  how often ended links are written down and expiry warnings sent (default 1m)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, nil)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "consent:", err)
		os.Exit(1)
	}
}

// config is the consent service's configuration.
type config struct {
	Server server.Config
	Vault  credentials.Config

	DataDir       string
	DatabaseURL   string
	BanksFile     string
	ConsentTTL    time.Duration
	SweepInterval time.Duration
}

// parseConfig reads flags and BANKBRIDGE_* variables; it returns the
// arguments left after the flags (the command).
func parseConfig(args []string) (config, []string, error) {
	c := config{
		Server:        server.Defaults("consent", "127.0.0.1:9101", "127.0.0.1:9201"),
		Vault:         credentials.Config{Auth: credentials.AuthConfig{Method: credentials.AuthToken}},
		DataDir:       "data",
		ConsentTTL:    app.DefaultConsentTTL,
		SweepInterval: time.Minute,
	}
	fs := flag.NewFlagSet("consent", flag.ContinueOnError)
	c.Server.RegisterFlags(fs)
	c.Vault.RegisterFlags(fs)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the embedded SQLite database")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "sqlite:/path/to/file.db or postgres://user:pass@host/db; default consent.db in --data-dir")
	fs.StringVar(&c.BanksFile, "banks", c.BanksFile, "banks.yaml: the banks and how to reach their adapters")
	fs.DurationVar(&c.ConsentTTL, "consent-ttl", c.ConsentTTL, "how long a consent lasts unless the user asks for less, and the most it may; 24h to 2160h")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often ended links are written down and expiry warnings sent")
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("BANKBRIDGE")); err != nil {
		return c, nil, fmt.Errorf("config: %w", err)
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = storage.SQLiteURL(c.DataDir, "consent")
	}
	return c, fs.Args(), nil
}

// validateServe reports the first setting that keeps the service from
// serving.
func (c config) validateServe() error {
	if err := c.Server.Validate(); err != nil {
		return err
	}
	switch {
	case c.Server.JWKSURL == "" || c.Server.Issuer == "":
		return errors.New("config: --issuer and --jwks-url (BANKBRIDGE_ISSUER, BANKBRIDGE_JWKS_URL) are required, in dev mode too")
	case c.BanksFile == "":
		return errors.New("config: --banks (BANKBRIDGE_BANKS) is required: without banks nothing can be linked")
	case c.SweepInterval <= 0:
		return errors.New("config: --sweep-interval must be positive")
	}
	return nil
}

// run runs the command args name until ctx ends. ready, when not nil,
// learns the gRPC address once it is bound (tests listen on port 0).
func run(ctx context.Context, args []string, stdout io.Writer, ready func(grpcAddr string)) error {
	cfg, rest, err := parseConfig(args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		if err := cfg.validateServe(); err != nil {
			return err
		}
		return serve(ctx, cfg, ready)
	case rest[0] == "verify-access-log" && len(rest) <= 2:
		user := ""
		if len(rest) == 2 {
			user = rest[1]
		}
		return verifyAccessLog(ctx, cfg, user, stdout)
	default:
		return fmt.Errorf("unknown command %q: want no command (serve) or verify-access-log [user]", rest)
	}
}
