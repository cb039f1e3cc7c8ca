// Package app is the receipts service's logic: partners' receipts taken in
// (ingest.go), matched to the user's card transactions in the background
// (match.go), card issuers' receipts read from the banks (issuer.go), the
// user's reads and deletes (read.go), and deletion when retention ends or
// consent goes (retention.go).
//
// It knows nothing of gRPC: transport calls it with names and domain
// values, and it reaches the database, the banks and the consent service
// through the ports in ports.go. Errors meant for the caller are apierr
// errors; anything else is an internal failure that the kit masks.
package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Defaults of Config.
const (
	// DefaultRetention is how long a receipt is kept after its purchase:
	// 13 months.
	DefaultRetention = 396 * 24 * time.Hour
	// MinRetention is the shortest retention accepted.
	MinRetention = 24 * time.Hour
	// DefaultIdempotencyTTL is how long an idempotency key is kept; the
	// contract promises at least 7 days.
	DefaultIdempotencyTTL = 7 * 24 * time.Hour
	// MinIdempotencyTTL is the shortest accepted: the contract's promise.
	MinIdempotencyTTL = 7 * 24 * time.Hour
	// DefaultMatchGiveUp is how long matching a receipt is retried.
	DefaultMatchGiveUp = 14 * 24 * time.Hour
	// DefaultIssuerInterval is how old a user's issuer receipts may be
	// before a list or the periodic sync reads them again.
	DefaultIssuerInterval = 6 * time.Hour
	// DefaultIssuerLookback is how far back card transactions are asked
	// about at their issuer.
	DefaultIssuerLookback = 90 * 24 * time.Hour
	// DefaultReconcileInterval is how often stored receipts are checked
	// against the consents they need.
	DefaultReconcileInterval = time.Hour
	// DefaultSweepInterval is how often retention is applied.
	DefaultSweepInterval = 10 * time.Minute
	// DefaultMatchPoll is how often due match jobs are looked for when
	// nothing wakes the matcher.
	DefaultMatchPoll = time.Second
)

// DefaultMatchBackoff is the wait before each retry of a match: the n-th
// retry waits the n-th, and the last repeats.
func DefaultMatchBackoff() []time.Duration {
	return []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour}
}

// The methods the service records in access logs besides its RPCs: its
// own reads of a user's banks.
const (
	MethodMatch  = "bankbridge.receipts.v1/match"
	MethodIssuer = "bankbridge.receipts.v1/issuer-sync"
)

// listReceipts is the list the page tokens name.
const listReceipts = "bankbridge.receipts.v1.ReceiptsService/ListReceipts"

// Config wires the service. Zero durations take their defaults.
type Config struct {
	Store   Store
	Consent Consent
	Banks   Banks
	Pages   *pagetoken.Tokens
	Logger  *slog.Logger
	Now     func() time.Time
	// ClientID is the service's own client id, recorded in the access log
	// for its reads of users' banks.
	ClientID string

	Retention         time.Duration
	IdempotencyTTL    time.Duration
	MatchBackoff      []time.Duration
	MatchGiveUp       time.Duration
	MatchPoll         time.Duration
	IssuerInterval    time.Duration
	IssuerLookback    time.Duration
	ReconcileInterval time.Duration
}

// Service is the receipts logic. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	consent Consent
	banks   Banks
	pages   *pagetoken.Tokens
	log     *slog.Logger
	now     func() time.Time

	matchWake chan struct{}
	issuer    chan issuerJob

	mu sync.Mutex
	// noDetails are the banks that answered they have no purchase
	// details at all, and since when.
	noDetails map[string]time.Time
	// syncing are the users whose issuer receipts are being synced.
	syncing map[string]bool
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Consent == nil || cfg.Banks == nil || cfg.Pages == nil {
		return nil, errors.New("receipts: Store, Consent, Banks and Pages are required")
	}
	cfg.Retention = cmp.Or(cfg.Retention, DefaultRetention)
	cfg.IdempotencyTTL = cmp.Or(cfg.IdempotencyTTL, DefaultIdempotencyTTL)
	cfg.MatchGiveUp = cmp.Or(cfg.MatchGiveUp, DefaultMatchGiveUp)
	cfg.MatchPoll = cmp.Or(cfg.MatchPoll, DefaultMatchPoll)
	cfg.IssuerInterval = cmp.Or(cfg.IssuerInterval, DefaultIssuerInterval)
	cfg.IssuerLookback = cmp.Or(cfg.IssuerLookback, DefaultIssuerLookback)
	cfg.ReconcileInterval = cmp.Or(cfg.ReconcileInterval, DefaultReconcileInterval)
	cfg.ClientID = cmp.Or(cfg.ClientID, "receipts")
	if len(cfg.MatchBackoff) == 0 {
		cfg.MatchBackoff = DefaultMatchBackoff()
	}
	switch {
	case cfg.Retention < MinRetention:
		return nil, errors.New("receipts: the retention is shorter than a day")
	case cfg.IdempotencyTTL < MinIdempotencyTTL:
		return nil, errors.New("receipts: idempotency keys must be kept at least 7 days")
	}
	for _, d := range cfg.MatchBackoff {
		if d <= 0 {
			return nil, errors.New("receipts: every match backoff must be positive")
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg: cfg, store: cfg.Store, consent: cfg.Consent, banks: cfg.Banks, pages: cfg.Pages,
		log: cfg.Logger, now: cfg.Now,
		matchWake: make(chan struct{}, 1),
		issuer:    make(chan issuerJob, issuerQueue),
		noDetails: map[string]time.Time{},
		syncing:   map[string]bool{},
	}, nil
}

// newID returns a random opaque id: 32 hex digits, naming nothing.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// contentHash identifies a receipt's content and what it amends.
func contentHash(c Content, amends string) string {
	b, _ := json.Marshal(struct { // plain data always marshals
		C Content
		A string
	}{c, amends})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stamp is the clock, in UTC at the storage's precision.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// record appends an allowed access to the user's access log.
func (s *Service) record(ctx context.Context, user, client, method, resource string, scope commonv1.Scope) error {
	e := access.Entry{
		Time: s.now().UTC(), User: user, ClientID: client, Method: method, Resource: resource,
		Purpose: commonv1.Purpose_PURPOSE_PURCHASE_HISTORY, Scope: scope, Allowed: true,
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	return s.consent.Record(ctx, e)
}
