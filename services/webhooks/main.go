// Command webhooks serves bankbridge.webhooks.v1.WebhooksService: a
// product team's client registers the HTTPS endpoints it wants bankbridge's
// events at, and this service delivers each event of the client's users to
// them as signed webhooks (Standard Webhooks format), retried with backoff
// for 24 hours, with a delivery log and replay. Signing secrets live in
// Vault KV v2 at bankbridge/webhooks/<endpoint_id>
// (deploy/vault/policies/bankbridge-webhooks.hcl is its policy); endpoints,
// the events kept for replay and the deliveries in the service's database.
//
// It starts through platform/bootstrap: besides the kit's flags
// (--grpc-addr, --issuer, --jwks-url, ...), the Vault flags (--vault-addr,
// ...), the storage flags (--data-dir, --database-url) and the bus flags
// (--nats-url, the NATS JetStream bus the events come from; ...), it takes:
//
//	--webhook-attempt-timeout   how long one POST may take (default 10s)
//	--webhook-retry-window      how long a delivery is retried before it FAILED (default 24h)
//	--webhook-backoff-base      the first retry's longest wait, doubling per retry (default 5s)
//	--webhook-backoff-cap       the longest wait between two attempts (default 1h)
//	--webhook-retention         how long events are kept for replay (default 720h, 30 days)
//	--webhook-concurrency       how many deliveries are attempted at once (default 8)
//
// In dev mode (--dev-mode) endpoints may be http and on private addresses,
// so a receiver on 127.0.0.1 works; never in production.
package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

func main() {
	bootstrap.Main("webhooks", func(ctx context.Context, args []string) error { return run(ctx, args, nil) })
}

// config is the kit's config plus the webhooks service's own.
type config struct {
	bootstrap.Config
	AttemptTimeout time.Duration
	RetryWindow    time.Duration
	BackoffBase    time.Duration
	BackoffCap     time.Duration
	Retention      time.Duration
	Concurrency    int
}

// RegisterFlags binds the webhooks service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.AttemptTimeout, "webhook-attempt-timeout", c.AttemptTimeout, "how long one webhook POST may take")
	fs.DurationVar(&c.RetryWindow, "webhook-retry-window", c.RetryWindow, "how long a delivery is retried before it is marked FAILED")
	fs.DurationVar(&c.BackoffBase, "webhook-backoff-base", c.BackoffBase, "the first retry's longest wait; it doubles per retry (full jitter)")
	fs.DurationVar(&c.BackoffCap, "webhook-backoff-cap", c.BackoffCap, "the longest wait between two attempts")
	fs.DurationVar(&c.Retention, "webhook-retention", c.Retention, "how long events are kept for replay, and finished deliveries in the log")
	fs.IntVar(&c.Concurrency, "webhook-concurrency", c.Concurrency, "how many deliveries are attempted at once")
}

// Validate checks the webhooks service's own settings.
func (c *config) Validate() error {
	switch {
	case c.AttemptTimeout <= 0 || c.RetryWindow <= 0 || c.BackoffBase <= 0 || c.Retention <= 0 || c.Concurrency <= 0:
		return errors.New("the --webhook-* durations and --webhook-concurrency must be positive")
	case c.BackoffCap < c.BackoffBase:
		return errors.New("--webhook-backoff-cap must be at least --webhook-backoff-base")
	case c.Retention < c.RetryWindow:
		return errors.New("--webhook-retention must be at least --webhook-retry-window")
	}
	return nil
}

// run serves until ctx ends. ready, when not nil, learns the addresses
// once they are bound (tests listen on port 0).
func run(ctx context.Context, args []string, ready func(bootstrap.Listening)) error {
	cfg := &config{
		Config:         bootstrap.Defaults("webhooks", "127.0.0.1:9106", "127.0.0.1:9206"),
		AttemptTimeout: app.DefaultAttemptTimeout,
		RetryWindow:    app.DefaultRetryWindow,
		BackoffBase:    app.DefaultBackoffBase,
		BackoffCap:     app.DefaultBackoffCap,
		Retention:      app.DefaultRetention,
		Concurrency:    app.DefaultConcurrency,
	}
	return bootstrap.Run(ctx, args, bootstrap.Spec{
		Config: cfg,
		// Vault for the signing secrets, storage for endpoints, events and
		// deliveries, the bus for the events. No consent: client calls
		// read no user's data.
		Needs: bootstrap.Needs{Vault: true, Storage: true, Bus: true},
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return start(ctx, cfg, d)
		},
		Ready: ready,
	})
}
