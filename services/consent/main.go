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
//	consent [flags] verify-access-log [user]  check the access log hash chains and their signatures, and exit
//
// Every access log chain head is signed with a Vault Transit key, so that
// whoever can write to the database but cannot use the key cannot rewrite
// a user's log unnoticed: the heads appends move are signed right after
// they commit, those of --access-log-sign-delay in one request, so no
// access waits for Vault (0 signs each batch's heads in one request, in
// its transaction). If Vault is down the access is still
// recorded and served (the entries are durable; audit before data holds),
// and the heads wait, unsigned, for the background signer, which checks
// each chain from its last signature before signing it. Unsigned entries
// pass verification for --access-log-sign-grace only: a head neither
// signed nor that recent fails, so stripping a signature does not help
// whoever rewrote a chain. After a Vault outage longer than the grace, or
// when upgrading a database whose heads predate signing, check the chains
// (verify-access-log) and raise the grace until the signer has caught up.
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
//	--sweep-interval  how often ended links are written down and expiry warnings sent, and unsigned access log heads signed (default 1m)
//	--transit-mount   the Vault Transit engine's path (default "transit")
//	--access-log-key  the Transit key (ed25519 or ecdsa-p256) that signs access log heads (default "bankbridge-access-log")
//	--access-log-sign-grace  how long an access log entry may await its signature (Vault down) before verification fails (default 1h)
//	--access-log-sign-delay  how long the heads appends move are gathered before they are signed, after commit; 0 signs in the append's transaction (default 10ms)
//	--pending-link-limit     how many links per user and bank may wait for verification at once (default 3)
//	--sca-failure-limit      how many two-factor codes per user, bank and bank login may fail within --sca-failure-window, across links, before a cooldown (default 5)
//	--sca-failure-window     the window of --sca-failure-limit (default 1h)
//	--sca-cooldown           how long no code is taken and no link made for that user, bank and login once the limit is reached (default 1h)
//
// Its secret keys are in Vault KV v2 at bankbridge/keys/consent (see
// keys.go): code_hmac_key keys the fingerprints of requests kept for
// idempotent retries (they cover the two-factor code), login_hmac_key the
// hashes of bank logins wrong codes are counted under; the service reads
// them at start and every --vault-refresh.
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
	"github.com/bankbridge/bankbridge/services/consent/internal/signer"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
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
	// TransitMount and AccessLogKey name the Vault Transit key that signs
	// access log heads; AccessLogSignGrace is app.Config.HeadSignGrace.
	TransitMount       string
	AccessLogKey       string
	AccessLogSignGrace time.Duration
	// AccessLogSignDelay is app.Config.HeadSignDelay.
	AccessLogSignDelay time.Duration
	// Limits against linking abuse: app.Config's PendingLinkLimit,
	// ScaFailureLimit, ScaFailureWindow and ScaCooldown.
	PendingLinkLimit int
	ScaFailureLimit  int
	ScaFailureWindow time.Duration
	ScaCooldown      time.Duration
}

// RegisterFlags binds the consent service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ConsentTTL, "consent-ttl", c.ConsentTTL, "how long a consent lasts unless the user asks for less, and the most it may; 24h to 2160h")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often ended links are written down and expiry warnings sent, and unsigned access log heads signed")
	fs.StringVar(&c.TransitMount, "transit-mount", c.TransitMount, "path of Vault's Transit engine")
	fs.StringVar(&c.AccessLogKey, "access-log-key", c.AccessLogKey, "Transit key (ed25519 or ecdsa-p256) that signs access log chain heads")
	fs.DurationVar(&c.AccessLogSignGrace, "access-log-sign-grace", c.AccessLogSignGrace,
		"how long an access log entry may await its signature (while Vault is down) before verification fails and it is no longer signed")
	fs.DurationVar(&c.AccessLogSignDelay, "access-log-sign-delay", c.AccessLogSignDelay,
		"how long the access log heads appends move are gathered before they are signed, after their transaction commits; 0 signs them in the transaction")
	fs.IntVar(&c.PendingLinkLimit, "pending-link-limit", c.PendingLinkLimit, "how many links per user and bank may wait for verification at once")
	fs.IntVar(&c.ScaFailureLimit, "sca-failure-limit", c.ScaFailureLimit,
		"how many two-factor codes per user, bank and bank login may fail within --sca-failure-window, across links, before a cooldown")
	fs.DurationVar(&c.ScaFailureWindow, "sca-failure-window", c.ScaFailureWindow, "the window --sca-failure-limit counts in")
	fs.DurationVar(&c.ScaCooldown, "sca-cooldown", c.ScaCooldown,
		"how long no two-factor code is taken and no link made for a user, bank and login that reached --sca-failure-limit")
}

// Validate checks the consent service's own settings.
func (c *config) Validate() error {
	if c.SweepInterval <= 0 {
		return errors.New("--sweep-interval must be positive")
	}
	if c.AccessLogSignGrace <= 0 {
		return errors.New("--access-log-sign-grace must be positive")
	}
	if c.AccessLogSignDelay < 0 || c.AccessLogSignDelay >= c.AccessLogSignGrace {
		return errors.New("--access-log-sign-delay must be 0 or more, and less than --access-log-sign-grace")
	}
	if c.PendingLinkLimit <= 0 || c.ScaFailureLimit <= 0 || c.ScaFailureWindow <= 0 || c.ScaCooldown <= 0 {
		return errors.New("--pending-link-limit, --sca-failure-limit, --sca-failure-window and --sca-cooldown must be positive")
	}
	return nil
}

// run runs the command args name until ctx ends. ready, when not nil,
// learns the gRPC address once it is bound (tests listen on port 0).
func run(ctx context.Context, args []string, stdout io.Writer, ready func(grpcAddr string)) error {
	cfg := &config{
		Config:             bootstrap.Defaults("consent", "127.0.0.1:9101", "127.0.0.1:9201"),
		ConsentTTL:         app.DefaultConsentTTL,
		SweepInterval:      time.Minute,
		TransitMount:       credentials.DefaultTransitMount,
		AccessLogKey:       signer.DefaultKey,
		AccessLogSignGrace: app.DefaultHeadSignGrace,
		AccessLogSignDelay: app.DefaultHeadSignDelay,
		PendingLinkLimit:   app.DefaultPendingLinkLimit,
		ScaFailureLimit:    app.DefaultScaFailureLimit,
		ScaFailureWindow:   app.DefaultScaFailureWindow,
		ScaCooldown:        app.DefaultScaCooldown,
	}
	spec := bootstrap.Spec{
		Config: cfg,
		// Without banks nothing can be linked. The consent service answers
		// consent checks itself, so it needs no consent service. Its events
		// leave through the outbox and the bus. Vault signs the access log.
		Needs: bootstrap.Needs{Banks: true, Storage: true, Bus: true, Vault: true},
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
		return verifyAccessLog(ctx, cfg, user, stdout)
	default:
		return fmt.Errorf("unknown command %q: want no command (serve) or verify-access-log [user]", rest)
	}
}
