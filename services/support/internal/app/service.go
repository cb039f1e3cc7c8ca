package app

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Defaults of Config.
const (
	// DefaultAgentIdleTimeout is how long a user message may wait for the
	// agent's answer before the assistant takes control back.
	DefaultAgentIdleTimeout = 10 * time.Minute
	// DefaultMessageRetention is how long a message is kept: 90 days.
	DefaultMessageRetention = 90 * 24 * time.Hour
	// MinMessageRetention is the shortest retention accepted.
	MinMessageRetention = time.Hour
	// DefaultIdempotencyTTL is how long a CreateConversation key is kept.
	DefaultIdempotencyTTL = 7 * 24 * time.Hour
	// DefaultLeaseTTL is how long a replica holds a bank's event stream
	// without renewing: the longest a bank goes unread after its holder
	// dies.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultReconnectBackoff is the first wait before reopening a bank's
	// event stream that ended; it doubles up to MaxReconnectBackoff.
	DefaultReconnectBackoff = 500 * time.Millisecond
	// MaxReconnectBackoff caps the wait between reconnects.
	MaxReconnectBackoff = 30 * time.Second
	// DefaultBankTimeout bounds a call to a bank made on a user's request.
	DefaultBankTimeout = 10 * time.Second
)

// Config wires the service. Zero durations take their defaults.
type Config struct {
	Store    Store
	Consent  Consent
	Banks    Banks
	Balances Balances
	Pages    *pagetoken.Tokens
	Logger   *slog.Logger
	Now      func() time.Time

	AgentIdleTimeout time.Duration
	MessageRetention time.Duration
	IdempotencyTTL   time.Duration
	// LeaseTTL is how long a bank's event lease lasts; it is renewed at a
	// third of it.
	LeaseTTL         time.Duration
	ReconnectBackoff time.Duration
	// Holder names this replica in the bank event leases; default the
	// host name and a random suffix.
	Holder string

	// Fraud is the fraud files' part (ports_fraud.go).
	Fraud FraudConfig
}

// Service is the support logic. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	consent  Consent
	banks    Banks
	balances Balances
	pages    *pagetoken.Tokens
	log      *slog.Logger
	now      func() time.Time

	fraud fraudState
	// turns serialises a conversation's SendMessage and Handover calls on
	// this replica (turns.go).
	turns *turns
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Consent == nil || cfg.Banks == nil || cfg.Balances == nil || cfg.Pages == nil {
		return nil, errors.New("support: Store, Consent, Banks, Balances and Pages are required")
	}
	cfg.AgentIdleTimeout = cmp.Or(cfg.AgentIdleTimeout, DefaultAgentIdleTimeout)
	cfg.MessageRetention = cmp.Or(cfg.MessageRetention, DefaultMessageRetention)
	cfg.IdempotencyTTL = cmp.Or(cfg.IdempotencyTTL, DefaultIdempotencyTTL)
	cfg.LeaseTTL = cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL)
	cfg.ReconnectBackoff = cmp.Or(cfg.ReconnectBackoff, DefaultReconnectBackoff)
	switch {
	case cfg.AgentIdleTimeout < 0 || cfg.IdempotencyTTL < 0 || cfg.LeaseTTL < 0 || cfg.ReconnectBackoff < 0:
		return nil, errors.New("support: durations must be positive")
	case cfg.MessageRetention < MinMessageRetention:
		return nil, errors.New("support: the message retention is shorter than an hour")
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Holder = cmp.Or(host, "support") + "-" + hex.EncodeToString(b[:])
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		cfg: cfg, store: cfg.Store, consent: cfg.Consent, banks: cfg.Banks, balances: cfg.Balances, pages: cfg.Pages,
		log: cfg.Logger, now: cfg.Now, turns: newTurns(),
	}
	fs, err := newFraudState(cfg)
	if err != nil {
		return nil, err
	}
	s.fraud = fs
	return s, nil
}

// stamp is the clock, in UTC at the storage's precision.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// retry runs op again while it fails with ErrConflict, at most 3 times: a
// concurrent write took a key op needed, or changed what op planned on,
// and the next run sees it.
func retry[T any](op func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := op()
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue
		}
		return v, err
	}
}
