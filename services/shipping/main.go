// Command shipping serves bankbridge.shipping.v1: a user's product tracks
// parcels (ShippingService: create, read, list, delete, choose the carrier
// of an ambiguous number, watch), partners the user opted in to register
// parcels for the user (PartnerShippingService), and carriers push signed
// tracking events to POST /v1/carriers/{carrier}/trackingEvents on the
// public HTTP listener (internal/carrierpush), which fan out to every
// shipment of the parcel, of every user. Shipments expire when their
// carrier reports nothing for --expire-after, and are deleted when the
// user revokes the last consent covering shipping, or the opt-in to the
// partner that registered them.
//
// It starts through platform/bootstrap: besides the kit's flags
// (--grpc-addr, --issuer, --jwks-url, --partner-clients, ...), the consent
// service (--consent-addr, ...), the storage flags (--data-dir,
// --database-url), the bus flags (--nats-url, ...), Vault (--vault-addr,
// ...: the carriers' signing secrets are at bankbridge/carriers/<carrier>)
// and the public HTTP listener (--http-addr, default 127.0.0.1:9305), it
// takes:
//
//	--expire-after           how long a shipment is tracked without news from its carrier (default 720h, 30 days)
//	--sweep-interval         how often shipments expire and old push ids and keys are forgotten (default 10m)
//	--idempotency-key-ttl    how long an idempotency key is kept (default 168h; at least 168h)
//
// Every flag is also a BANKBRIDGE_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
	"github.com/bankbridge/bankbridge/services/shipping/internal/store"
	"github.com/bankbridge/bankbridge/services/shipping/internal/transport"
)

func main() { bootstrap.Main("shipping", run) }

// The default listen addresses.
const (
	defaultGRPCAddr  = "127.0.0.1:9105"
	defaultAdminAddr = "127.0.0.1:9205"
	defaultHTTPAddr  = "127.0.0.1:9305"
)

// config is the kit's config plus the shipping service's own.
type config struct {
	bootstrap.Config
	ExpireAfter    time.Duration
	SweepInterval  time.Duration
	IdempotencyTTL time.Duration
}

func defaults() *config {
	c := &config{
		Config:         bootstrap.Defaults("shipping", defaultGRPCAddr, defaultAdminAddr),
		ExpireAfter:    app.DefaultExpireAfter,
		SweepInterval:  app.DefaultSweepInterval,
		IdempotencyTTL: app.DefaultIdempotencyTTL,
	}
	c.HTTPAddr = defaultHTTPAddr
	return c
}

// RegisterFlags binds the shipping service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ExpireAfter, "expire-after", c.ExpireAfter, "how long a shipment is tracked without news from its carrier (from its last carrier event, or its creation) before it is EXPIRED")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often shipments expire and old push ids and idempotency keys are forgotten")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-key-ttl", c.IdempotencyTTL, "how long an idempotency key is kept; at least 168h")
}

// Validate checks the shipping service's own settings.
func (c *config) Validate() error {
	switch {
	case c.ExpireAfter <= 0:
		return errors.New("--expire-after must be positive")
	case c.SweepInterval <= 0:
		return errors.New("--sweep-interval must be positive")
	case c.IdempotencyTTL < app.MinIdempotencyTTL:
		return fmt.Errorf("--idempotency-key-ttl must be at least %s", app.MinIdempotencyTTL)
	}
	return nil
}

func run(ctx context.Context, args []string) error {
	cfg := defaults()
	return bootstrap.Run(ctx, args, spec(cfg))
}

// spec declares the binary: consent, storage and the bus with its outbox,
// Vault for the carriers' signing secrets, and the public HTTP listener
// they push to. It reads no bank.
func spec(cfg *config) bootstrap.Spec {
	return bootstrap.Spec{
		Kind:   bootstrap.KindService,
		Config: cfg,
		Needs:  bootstrap.Needs{Consent: true, Storage: true, Bus: true, Vault: true, HTTP: true},
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return start(ctx, cfg, d)
		},
	}
}

// start wires the service on the dependencies bootstrap built: both gRPC
// services, the carrier endpoint, and beside them the sweeper and the
// consent change follower.
func start(ctx context.Context, cfg *config, d *bootstrap.Deps) (bootstrap.Service, error) {
	st, err := store.New(ctx, d.DB, d.Outbox)
	if err != nil {
		return bootstrap.Service{}, err
	}
	svc, err := app.New(app.Config{
		Store: st, Consent: d.Consent, Pages: d.PageTokens, Logger: d.Logger,
		ExpireAfter: cfg.ExpireAfter, IdempotencyTTL: cfg.IdempotencyTTL,
	})
	if err != nil {
		return bootstrap.Service{}, err
	}
	secrets, err := carrierpush.NewVaultSecrets(d.Vault, carrierpush.VaultOptions{Logger: d.Logger})
	if err != nil {
		return bootstrap.Service{}, err
	}
	// One subscription to the bus fans the events out to every watch of
	// the process; closed once the servers have drained.
	hub, err := stream.NewHub(d.Bus, stream.HubOptions{Types: transport.LiveWatchTypes, Logger: d.Logger, MeterProvider: d.Telemetry.MeterProvider})
	if err != nil {
		return bootstrap.Service{}, err
	}
	reads := transport.NewShippingServer(svc, stream.Feed{Bus: d.Bus, Hub: hub, Consent: d.Consent, Logger: d.Logger})
	partners := transport.NewPartnerServer(svc)
	return bootstrap.Service{
		GRPC: func(r grpc.ServiceRegistrar) {
			shippingv1.RegisterShippingServiceServer(r, reads)
			shippingv1.RegisterPartnerShippingServiceServer(r, partners)
		},
		HTTP:  carrierpush.NewHandler(transport.NewCarrierIngester(svc), secrets, carrierpush.Options{Logger: d.Logger}),
		Tasks: []func(context.Context) error{bootstrap.Periodic{What: "shipping sweep", Every: cfg.SweepInterval, Run: svc.Sweep, Done: "shipments expired", Logger: d.Logger}.Task, svc.FollowChanges, transport.ExpandParcelEvents(d.Bus, svc, d.Logger)},
		Close: hub.Close,
	}, nil
}
