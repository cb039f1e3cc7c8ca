// Command receipts serves bankbridge.receipts.v1: partners push itemised
// receipts for the users who opted in to them (PartnerReceiptsService), the
// service matches them to the users' card transactions in the background
// and imports card issuers' purchase details as receipts, and a user's
// product lists, reads, deletes and watches them (ReceiptsService).
// Receipts are deleted when their retention ends, when the user revokes
// the opt-in to the partner that sent them, and when the user revokes the
// last consent covering receipts.
//
// It starts through platform/bootstrap: besides the kit's flags
// (--grpc-addr, --issuer, --jwks-url, --partner-clients, ...), the banks
// flags (--banks, and --vault-addr for remote banks), the consent service
// (--consent-addr, ...), the storage flags (--data-dir, --database-url) and
// the bus flags (--nats-url, ...), it takes:
//
//	--retention              how long a receipt is kept after its purchase (default 9504h, 13 months; at least 24h)
//	--idempotency-key-ttl    how long a partner's idempotency key is kept (default 168h; at least 168h)
//	--match-backoff          waits before each retry of a match, the last repeating (default 1m,5m,30m,2h,6h)
//	--match-give-up          how long matching a receipt is retried (default 336h)
//	--issuer-sync-interval   how old a user's issuer receipts may get before they are read again (default 6h)
//	--reconcile-interval     how often stored receipts are checked against consent (default 1h)
//	--sweep-interval         how often retention is applied (default 10m)
//
// Every flag is also a BANKBRIDGE_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"

	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/banks"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
	"github.com/bankbridge/bankbridge/services/receipts/internal/transport"
)

func main() { bootstrap.Main("receipts", run) }

// config is the kit's config plus the receipts service's own.
type config struct {
	bootstrap.Config
	Retention         time.Duration
	IdempotencyTTL    time.Duration
	MatchBackoff      durations
	MatchGiveUp       time.Duration
	IssuerInterval    time.Duration
	ReconcileInterval time.Duration
	SweepInterval     time.Duration
}

func defaults() *config {
	return &config{
		Config:            bootstrap.Defaults("receipts", "127.0.0.1:9103", "127.0.0.1:9203"),
		Retention:         app.DefaultRetention,
		IdempotencyTTL:    app.DefaultIdempotencyTTL,
		MatchBackoff:      app.DefaultMatchBackoff(),
		MatchGiveUp:       app.DefaultMatchGiveUp,
		IssuerInterval:    app.DefaultIssuerInterval,
		ReconcileInterval: app.DefaultReconcileInterval,
		SweepInterval:     app.DefaultSweepInterval,
	}
}

// RegisterFlags binds the receipts service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Retention, "retention", c.Retention, "how long a receipt is kept after its purchase; at least 24h")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-key-ttl", c.IdempotencyTTL, "how long a partner's idempotency key is kept; at least 168h (the contract promises 7 days)")
	fs.Var(&c.MatchBackoff, "match-backoff", "comma-separated waits before each retry of matching a receipt to a card transaction; the last repeats")
	fs.DurationVar(&c.MatchGiveUp, "match-give-up", c.MatchGiveUp, "how long after its ingest matching a receipt is retried")
	fs.DurationVar(&c.IssuerInterval, "issuer-sync-interval", c.IssuerInterval, "how old a user's card issuer receipts may get before a list or the periodic sync reads them again")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", c.ReconcileInterval, "how often stored receipts are checked against the consents they need")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often receipts past their retention and expired idempotency keys are deleted")
}

// Validate checks the receipts service's own settings.
func (c *config) Validate() error {
	switch {
	case c.Retention < app.MinRetention:
		return fmt.Errorf("--retention must be at least %s", app.MinRetention)
	case c.IdempotencyTTL < app.MinIdempotencyTTL:
		return fmt.Errorf("--idempotency-key-ttl must be at least %s: the contract promises keys are kept 7 days", app.MinIdempotencyTTL)
	case len(c.MatchBackoff) == 0:
		return errors.New("--match-backoff must list at least one wait")
	case c.MatchGiveUp <= 0 || c.IssuerInterval <= 0 || c.ReconcileInterval <= 0 || c.SweepInterval <= 0:
		return errors.New("--match-give-up, --issuer-sync-interval, --reconcile-interval and --sweep-interval must be positive")
	}
	for _, d := range c.MatchBackoff {
		if d <= 0 {
			return errors.New("every --match-backoff wait must be positive")
		}
	}
	return nil
}

// durations is a comma-separated list of durations as a flag.
type durations []time.Duration

func (d *durations) String() string {
	if d == nil {
		return ""
	}
	parts := make([]string, len(*d))
	for i, v := range *d {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

func (d *durations) Set(s string) error {
	var out durations
	for p := range strings.SplitSeq(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	*d = out
	return nil
}

func run(ctx context.Context, args []string) error {
	cfg := defaults()
	return bootstrap.Run(ctx, args, spec(cfg))
}

// spec declares the binary: banks (and Vault only for remote banks, as the
// registry needs it), consent, storage and the bus with its outbox.
func spec(cfg *config) bootstrap.Spec {
	return bootstrap.Spec{
		Kind:   bootstrap.KindService,
		Config: cfg,
		Needs:  bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true},
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return start(ctx, cfg, d)
		},
	}
}

// start wires the service on the dependencies bootstrap built: both
// services' handlers, and beside them the matcher, the issuer sync, the
// retention sweeper and the consent change follower.
func start(ctx context.Context, cfg *config, d *bootstrap.Deps) (bootstrap.Service, error) {
	st, err := store.New(ctx, d.DB, d.Outbox)
	if err != nil {
		return bootstrap.Service{}, err
	}
	svc, err := app.New(app.Config{
		Store: st, Consent: d.Consent, Banks: banks.New(d.Banks), Pages: d.PageTokens, Logger: d.Logger,
		ClientID: cfg.ClientID, Retention: cfg.Retention, IdempotencyTTL: cfg.IdempotencyTTL,
		MatchBackoff: cfg.MatchBackoff, MatchGiveUp: cfg.MatchGiveUp, IssuerInterval: cfg.IssuerInterval,
		ReconcileInterval: cfg.ReconcileInterval,
	})
	if err != nil {
		return bootstrap.Service{}, err
	}
	// One subscription to the bus fans the events out to every watch of
	// the process; closed once the servers have drained.
	hub, err := stream.NewHub(d.Bus, stream.HubOptions{Types: transport.WatchTypes, Logger: d.Logger, MeterProvider: d.Telemetry.MeterProvider})
	if err != nil {
		return bootstrap.Service{}, err
	}
	reads := transport.NewReceiptsServer(svc, stream.Feed{Bus: d.Bus, Hub: hub, Consent: d.Consent, Logger: d.Logger})
	pushes := transport.NewPartnerServer(svc)
	return bootstrap.Service{
		GRPC: func(r grpc.ServiceRegistrar) {
			receiptsv1.RegisterReceiptsServiceServer(r, reads)
			receiptsv1.RegisterPartnerReceiptsServiceServer(r, pushes)
		},
		Tasks: []func(context.Context) error{svc.RunMatcher, svc.RunIssuer, bootstrap.Periodic{
			What: "receipts sweep", Every: cfg.SweepInterval, Run: svc.Sweep, Done: "receipts past their retention deleted", Logger: d.Logger,
		}.Task, svc.FollowChanges},
		Close: hub.Close,
	}, nil
}
