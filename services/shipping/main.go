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
	"sync"
	"time"

	"google.golang.org/grpc"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
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
		Store: st, Consent: consents{d.Consent}, Pages: d.PageTokens, Logger: d.Logger,
		ExpireAfter: cfg.ExpireAfter, SweepInterval: cfg.SweepInterval, IdempotencyTTL: cfg.IdempotencyTTL,
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
	hub, err := stream.NewHub(d.Bus, stream.HubOptions{Types: transport.WatchTypes, Logger: d.Logger})
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
		Tasks: []func(context.Context) error{svc.RunSweeper, svc.FollowChanges},
		Close: hub.Close,
	}, nil
}

// consents is the platform's consent checker as the app's port.
type consents struct{ c *consentcheck.Checker }

func (c consents) ResolvePartner(ctx context.Context, partner, partnerUserID string, scope commonv1.Scope) (app.PartnerUser, error) {
	p, err := c.c.ResolvePartner(ctx, partner, partnerUserID, scope)
	return app.PartnerUser{User: p.User, OptIn: p.OptIn, Client: p.Client}, err
}

func (c consents) CoveringLinks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]app.CoveringLink, error) {
	links, err := c.c.CoveringLinks(ctx, user, scope, purpose)
	if err != nil {
		return nil, err
	}
	out := make([]app.CoveringLink, len(links))
	for i, l := range links {
		out[i] = app.CoveringLink{Link: l.Link, BankID: l.BankID, Client: l.Client}
	}
	return out, nil
}

func (c consents) Decide(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) error {
	_, err := c.c.Decide(ctx, user, consentcheck.Need{Scope: scope}, purpose)
	return err
}

func (c consents) Record(ctx context.Context, e access.Entry) error { return c.c.Record(ctx, e) }

// AllChanges turns the checker's changes into the app's until cancel.
func (c consents) AllChanges() (<-chan app.Change, func()) {
	in, stop := c.c.AllChanges()
	out := make(chan app.Change)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for {
			select {
			case ch, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- change(ch):
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(done)
			stop()
		})
	}
}

// change is a consent change as the app acts on it.
func change(ch consentcheck.Change) app.Change {
	out := app.Change{User: ch.User, Link: ch.Link, PartnerOptIn: ch.PartnerOptIn, Partner: ch.Partner, Resync: ch.Resync,
		PartnerRevoked: ch.PartnerState == consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED}
	switch ch.LinkState {
	case consentv1.ConsentState_CONSENT_STATE_VALID:
		out.LinkState = app.LinkValid
	case consentv1.ConsentState_CONSENT_STATE_EXPIRED:
		out.LinkState = app.LinkExpired
	case consentv1.ConsentState_CONSENT_STATE_REVOKED:
		out.LinkState = app.LinkRevoked
	}
	return out
}
