// Package app is the shipping service's logic: shipments a user's product
// creates or a partner registers (create.go), the user's reads, deletes and
// carrier choices (read.go), carriers' pushes fanned out to every shipment
// of their parcels (ingest.go), and expiry and deletion when consent goes
// (sweep.go).
//
// It knows nothing of gRPC: transport calls it with names and domain
// values, and it reaches the database and the consent service through the
// ports in ports.go. Errors meant for the caller are apierr errors;
// anything else is an internal failure that the kit masks.
package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Defaults of Config.
const (
	// DefaultExpireAfter is how long a shipment is tracked without news
	// from its carrier before it expires: 30 days.
	DefaultExpireAfter = 30 * 24 * time.Hour
	// DefaultIdempotencyTTL is how long an idempotency key is kept; the
	// contract promises at least 7 days.
	DefaultIdempotencyTTL = 7 * 24 * time.Hour
	// MinIdempotencyTTL is the shortest accepted: the contract's promise.
	MinIdempotencyTTL = 7 * 24 * time.Hour
	// DefaultSweepInterval is how often expiry and pruning run.
	DefaultSweepInterval = 10 * time.Minute
	// DefaultReconcileInterval is how often stored shipments are checked
	// against the consents they need.
	DefaultReconcileInterval = time.Hour
	// PushIDTTL is how long a carrier's push ids are kept against
	// replays: far longer than the 5 minutes a push's timestamp may be
	// off, after which the endpoint refuses it anyway.
	PushIDTTL = 24 * time.Hour
)

// listShipments is the list the page tokens name.
const listShipments = "bankbridge.shipping.v1.ShippingService/ListShipments"

// maxAttempts bounds how often an operation runs again after a concurrent
// one took a key it needed.
const maxAttempts = 3

// Config wires the service. Zero durations take their defaults.
type Config struct {
	Store   Store
	Consent Consent
	Pages   *pagetoken.Tokens
	Logger  *slog.Logger
	Now     func() time.Time

	ExpireAfter       time.Duration
	IdempotencyTTL    time.Duration
	ReconcileInterval time.Duration
}

// Service is the shipping logic. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	consent Consent
	pages   *pagetoken.Tokens
	log     *slog.Logger
	now     func() time.Time
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Consent == nil || cfg.Pages == nil {
		return nil, errors.New("shipping: Store, Consent and Pages are required")
	}
	cfg.ExpireAfter = cmp.Or(cfg.ExpireAfter, DefaultExpireAfter)
	cfg.IdempotencyTTL = cmp.Or(cfg.IdempotencyTTL, DefaultIdempotencyTTL)
	cfg.ReconcileInterval = cmp.Or(cfg.ReconcileInterval, DefaultReconcileInterval)
	switch {
	case cfg.IdempotencyTTL < MinIdempotencyTTL:
		return nil, errors.New("shipping: idempotency keys must be kept at least 7 days")
	case cfg.ExpireAfter < 0 || cfg.ReconcileInterval < 0:
		return nil, errors.New("shipping: durations must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, store: cfg.Store, consent: cfg.Consent, pages: cfg.Pages, log: cfg.Logger, now: cfg.Now}, nil
}

// newID returns a random opaque id: 32 hex digits, naming nothing.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stamp is the clock, in UTC at the storage's precision.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// retry runs op again while it fails with ErrConflict, at most
// maxAttempts times: a concurrent write took a key op needed, and the
// next run sees it.
func retry[T any](op func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := op()
		if errors.Is(err, ErrConflict) && attempt < maxAttempts {
			continue
		}
		return v, err
	}
}

// record appends an allowed access to the user's access log.
func (s *Service) record(ctx context.Context, user, client, method, resource string) error {
	e := access.Entry{
		Time: s.now().UTC(), User: user, ClientID: client, Method: method, Resource: resource,
		Purpose: commonv1.Purpose_PURPOSE_ORDER_TRACKING, Scope: commonv1.Scope_SCOPE_SHIPPING, Allowed: true,
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	return s.consent.Record(ctx, e)
}
