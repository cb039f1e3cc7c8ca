// Command consent is bankbridge's consent service: users link a bank under
// its two-factor challenge, see, reconfirm and revoke their links, opt in
// to partners pushing them data (and revoke that), and read their access
// log (bankbridge.consent.v1.ConsentService); bankbridge's data services
// check consent, resolve partners' partner-scoped user ids and record every
// access (bankbridge.consent.v1.ConsentCheckService).
//
// It writes events with the changes they report, to the platform's outbox
// in its database, whence they reach the bus: consent.link.expiring seven
// days before a link expires, consent.link.revoked when a link is
// revoked, from which its own worker tells the bank, retrying until the
// bank accepts, and consent.partner_opt_in.created and
// consent.partner_opt_in.revoked when a user opts in to a partner or
// revokes it.
//
// Usage:
//
//	consent [flags]                           serve
//	consent [flags] verify-access-log [user]  check the access log hash chains and exit
//
// It starts through platform/bootstrap. Every flag can also be set as a
// BANKBRIDGE_* environment variable (a flag wins): --database-url is
// BANKBRIDGE_DATABASE_URL, and so on. Besides the platform server's flags
// (--grpc-addr, --issuer, --jwks-url, --client-purposes, --internal-clients,
// --partner-clients: the partners users may opt in to, ...), the Vault flags (--vault-addr, --vault-auth, --vault-token,
// --vault-refresh, ...) and the storage flags:
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
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() {
	bootstrap.Main("consent", func(ctx context.Context, args []string) error {
		return run(ctx, args, os.Stdout, nil)
	})
}

// config is the consent service's configuration.
type config struct {
	bootstrap.Config
	ConsentTTL    time.Duration
	SweepInterval time.Duration
}

// RegisterFlags binds the consent service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ConsentTTL, "consent-ttl", c.ConsentTTL, "how long a consent lasts unless the user asks for less, and the most it may; 24h to 2160h")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often ended links are written down and expiry warnings sent")
}

// Validate checks the consent service's own settings.
func (c *config) Validate() error {
	if c.SweepInterval <= 0 {
		return errors.New("--sweep-interval must be positive")
	}
	return nil
}

// run runs the command args name until ctx ends. ready, when not nil,
// learns the gRPC address once it is bound (tests listen on port 0).
func run(ctx context.Context, args []string, stdout io.Writer, ready func(grpcAddr string)) error {
	cfg := &config{
		Config:        bootstrap.Defaults("consent", "127.0.0.1:9101", "127.0.0.1:9201"),
		ConsentTTL:    app.DefaultConsentTTL,
		SweepInterval: time.Minute,
	}
	spec := bootstrap.Spec{
		Config: cfg,
		// Without banks nothing can be linked. The consent service answers
		// consent checks itself, so it needs no consent service. Its events
		// leave through the outbox and the bus.
		Needs: bootstrap.Needs{Banks: true, Storage: true, Bus: true},
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return start(ctx, cfg, d)
		},
	}
	if ready != nil {
		spec.Ready = func(l bootstrap.Listening) { ready(l.Addr) }
	}
	rest, err := bootstrap.Parse(spec, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		return bootstrap.Serve(ctx, spec)
	case rest[0] == "verify-access-log" && len(rest) <= 2:
		user := ""
		if len(rest) == 2 {
			user = rest[1]
		}
		return verifyAccessLog(ctx, cfg.DatabaseURL, cfg.ConsentTTL, user, stdout)
	default:
		return fmt.Errorf("unknown command %q: want no command (serve) or verify-access-log [user]", rest)
	}
}
