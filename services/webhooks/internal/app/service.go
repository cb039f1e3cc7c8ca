// Package app is the webhooks service's logic: a client's endpoints and
// their signing secrets, and the delivery of the client's events to them
// (deliver.go). It speaks domain types; its ports (ports.go) are the
// store, the secret store, the URL check, the HTTP poster and the bus.
package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Defaults of Config.
const (
	DefaultRetryWindow    = 24 * time.Hour
	DefaultBackoffBase    = 5 * time.Second
	DefaultBackoffCap     = time.Hour
	DefaultAttemptTimeout = 10 * time.Second
	DefaultOverlap        = 24 * time.Hour
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultPollInterval   = time.Second
	DefaultConcurrency    = 8
	// MaxReplay is how many events one ReplayEvents call queues.
	MaxReplay = 10000
)

// Config wires the service.
type Config struct {
	Store   Store
	Secrets Secrets
	URLs    URLChecker
	Poster  Poster
	Pages   *pagetoken.Tokens
	Logger  *slog.Logger
	Now     func() time.Time

	// RetryWindow is how long a delivery is retried before it FAILED.
	RetryWindow time.Duration
	// BackoffBase and BackoffCap shape the retries: the n-th retry waits a
	// random time up to min(cap, base·2^(n-1)) (full jitter).
	BackoffBase, BackoffCap time.Duration
	// AttemptTimeout bounds one POST.
	AttemptTimeout time.Duration
	// Retention is how long events are kept for replay, and finished
	// deliveries in the log.
	Retention time.Duration
	// PollInterval is how often due deliveries are looked for when nothing
	// wakes the dispatcher.
	PollInterval time.Duration
	// Concurrency is how many deliveries are attempted at once.
	Concurrency int
}

// Service is the webhooks logic.
type Service struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	wake chan struct{}
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Secrets == nil || cfg.URLs == nil || cfg.Pages == nil {
		return nil, errors.New("webhooks: Store, Secrets, URLs and Pages are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryWindow, DefaultRetryWindow)
	def(&cfg.BackoffBase, DefaultBackoffBase)
	def(&cfg.BackoffCap, DefaultBackoffCap)
	def(&cfg.AttemptTimeout, DefaultAttemptTimeout)
	def(&cfg.Retention, DefaultRetention)
	def(&cfg.PollInterval, DefaultPollInterval)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BackoffCap < cfg.BackoffBase {
		return nil, errors.New("webhooks: the backoff cap is below its base")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, wake: make(chan struct{}, 1)}, nil
}

// newID returns prefix and 20 random hex digits.
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// requestHash identifies a request's body for its idempotency key.
func requestHash(parts ...any) string {
	b, _ := json.Marshal(parts) // strings, slices and numbers always marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// internal masks an unexpected error behind an incident id it logs.
func (s *Service) internal(ctx context.Context, what string, err error) error {
	id, masked := apierr.Internal()
	s.log.ErrorContext(ctx, what, slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return masked
}

// secretsUnavailable logs why the secret store failed and answers
// CREDENTIALS_UNAVAILABLE.
func (s *Service) secretsUnavailable(ctx context.Context, err error) error {
	s.log.ErrorContext(ctx, "webhook signing secrets unavailable", slog.String("error", err.Error()))
	return errSecretsUnavailable()
}

// recall answers a request whose idempotency key was seen: the first
// answer's result, or IDEMPOTENCY_KEY_REUSED for another request. ok is
// false for a key never seen.
func (s *Service) recall(ctx context.Context, client, key, method, hash string) (result string, ok bool, err error) {
	if key == "" {
		return "", false, nil
	}
	k, err := s.cfg.Store.Recall(ctx, client, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, s.internal(ctx, "read idempotency key", err)
	case k.Method != method || k.Hash != hash:
		return "", false, errKeyReused()
	}
	return k.Result, true, nil
}

// CreateEndpoint registers e for client and returns it with its secret.
func (s *Service) CreateEndpoint(ctx context.Context, client string, e Endpoint, idemKey string) (Endpoint, string, error) {
	const method = "CreateEndpoint"
	hash := requestHash(e.URL, e.EventTypes, e.Description)
	if id, ok, err := s.recall(ctx, client, idemKey, method, hash); err != nil || ok {
		if err != nil {
			return Endpoint{}, "", err
		}
		return s.endpointWithSecret(ctx, client, id)
	}
	if err := s.cfg.URLs.CheckURL(ctx, e.URL); err != nil {
		return Endpoint{}, "", errURLRefused(err.Error())
	}
	n, err := s.cfg.Store.CountEndpoints(ctx, client)
	if err != nil {
		return Endpoint{}, "", s.internal(ctx, "count endpoints", err)
	}
	if n >= MaxEndpoints {
		return Endpoint{}, "", errTooManyEndpoints()
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	e.Client, e.ID, e.CreateTime, e.SecretCreateTime = client, newID("ep_"), now, now
	e.PreviousSecretExpireTime = time.Time{}
	secret := NewSecret(now)
	// The secret is in place before the endpoint exists: the deliverer
	// never finds an endpoint it cannot sign for.
	if err := s.cfg.Secrets.Put(ctx, e.ID, SecretSet{secret}); err != nil {
		return Endpoint{}, "", s.secretsUnavailable(ctx, err)
	}
	key := IdempotencyKey{Client: client, Key: idemKey, Method: method, Hash: hash, Result: e.ID, Time: now}
	err = s.cfg.Store.CreateEndpoint(ctx, e, key)
	if err != nil {
		s.dropSecret(ctx, e.ID)
		if errors.Is(err, ErrKeyTaken) {
			// A retry of the same request got here first.
			return s.CreateEndpoint(ctx, client, e, idemKey)
		}
		return Endpoint{}, "", s.internal(ctx, "insert endpoint", err)
	}
	return e, secret.Value, nil
}

// dropSecret deletes a secret no endpoint will use; a failure leaves an
// orphan in the secret store, which is logged.
func (s *Service) dropSecret(ctx context.Context, id string) {
	if err := s.cfg.Secrets.Delete(context.WithoutCancel(ctx), id); err != nil {
		s.log.WarnContext(ctx, "webhook signing secret left behind", slog.String(attrEndpointID, id), slog.String("error", err.Error()))
	}
}

func (s *Service) endpointWithSecret(ctx context.Context, client, id string) (Endpoint, string, error) {
	e, err := s.endpoint(ctx, client, id)
	if err != nil {
		return Endpoint{}, "", err
	}
	set, err := s.cfg.Secrets.Get(ctx, id)
	if err != nil {
		return Endpoint{}, "", s.secretsUnavailable(ctx, err)
	}
	return e, set.Current().Value, nil
}

func (s *Service) endpoint(ctx context.Context, client, id string) (Endpoint, error) {
	e, err := s.cfg.Store.GetEndpoint(ctx, client, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Endpoint{}, errEndpointNotFound()
	case err != nil:
		return Endpoint{}, s.internal(ctx, "read endpoint", err)
	}
	return e, nil
}

// GetEndpoint returns one endpoint.
func (s *Service) GetEndpoint(ctx context.Context, name names.Endpoint) (Endpoint, error) {
	return s.endpoint(ctx, name.Client, name.ID)
}

// ListEndpoints returns one page of the client's endpoints, oldest first.
func (s *Service) ListEndpoints(ctx context.Context, client string, pageSize int, token string) ([]Endpoint, string, error) {
	list := pagetoken.List{Method: "bankbridge.webhooks.v1.WebhooksService/ListEndpoints", Parent: names.Client(client)}
	var readErr error
	eps, next, err := pagetoken.ReadPage(s.cfg.Pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]Endpoint, error) {
			eps, err := s.cfg.Store.ListEndpoints(ctx, client, after, limit)
			readErr = err
			return eps, err
		},
		func(e Endpoint) pagetoken.Position { return pagetoken.Position{Time: e.CreateTime, ID: e.ID} })
	if readErr != nil {
		return nil, "", s.internal(ctx, "list endpoints", readErr)
	}
	return eps, next, err
}

// DeleteEndpoint removes an endpoint, its deliveries and its secrets.
func (s *Service) DeleteEndpoint(ctx context.Context, name names.Endpoint) error {
	if _, err := s.endpoint(ctx, name.Client, name.ID); err != nil {
		return err
	}
	err := s.cfg.Store.DeleteEndpoint(ctx, name.Client, name.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return errEndpointNotFound()
	case err != nil:
		return s.internal(ctx, "delete endpoint", err)
	}
	// After the row: an endpoint never exists without its secret.
	s.dropSecret(ctx, name.ID)
	return nil
}

// RotateSecret gives the endpoint a new current secret; the ones signing
// now keep signing for overlap (nil: the default).
func (s *Service) RotateSecret(ctx context.Context, name names.Endpoint, overlap *time.Duration, idemKey string) (Endpoint, string, error) {
	const method = "RotateEndpointSecret"
	d := DefaultOverlap
	if overlap != nil {
		d = *overlap
	}
	hash := requestHash(name.String(), d.String())
	e, err := s.endpoint(ctx, name.Client, name.ID)
	if err != nil {
		return Endpoint{}, "", err
	}
	if _, ok, err := s.recall(ctx, name.Client, idemKey, method, hash); err != nil || ok {
		if err != nil {
			return Endpoint{}, "", err
		}
		return s.endpointWithSecret(ctx, name.Client, name.ID)
	}
	set, err := s.cfg.Secrets.Get(ctx, e.ID)
	if err != nil {
		return Endpoint{}, "", s.secretsUnavailable(ctx, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	fresh := NewSecret(now)
	set = set.Rotate(now, d, fresh)
	if err := s.cfg.Secrets.Put(ctx, e.ID, set); err != nil {
		return Endpoint{}, "", s.secretsUnavailable(ctx, err)
	}
	e.SecretCreateTime, e.PreviousSecretExpireTime = now, set.PreviousExpire(now)
	if err := s.cfg.Store.UpdateSecretTimes(ctx, e.Client, e.ID, e.SecretCreateTime, e.PreviousSecretExpireTime); err != nil {
		return Endpoint{}, "", s.internal(ctx, "record rotation", err)
	}
	if idemKey != "" {
		err := s.cfg.Store.Remember(ctx, IdempotencyKey{Client: e.Client, Key: idemKey, Method: method, Hash: hash, Result: e.ID, Time: now})
		if err != nil && !errors.Is(err, ErrKeyTaken) {
			s.log.WarnContext(ctx, "idempotency key of a rotation not stored", slog.String("error", err.Error()))
		}
	}
	return e, fresh.Value, nil
}

// Replay queues the endpoint's events again: those after the event cursor
// names, or at or after start. It returns how many it queued and, when
// more follow than one call takes, the cursor to go on from.
func (s *Service) Replay(ctx context.Context, name names.Endpoint, cursor string, start time.Time, idemKey string) (int, string, error) {
	const method = "ReplayEvents"
	hash := requestHash(name.String(), cursor, start.UnixMicro())
	e, err := s.endpoint(ctx, name.Client, name.ID)
	if err != nil {
		return 0, "", err
	}
	if res, ok, err := s.recall(ctx, name.Client, idemKey, method, hash); err != nil || ok {
		if err != nil {
			return 0, "", err
		}
		count, next, _ := strings.Cut(res, " ")
		n, _ := strconv.Atoi(count)
		return n, next, nil
	}
	afterTime, afterID := start, ""
	if cursor != "" {
		ev, err := s.cfg.Store.Event(ctx, e.Client, cursor)
		switch {
		case errors.Is(err, ErrNotFound):
			return 0, "", errCursorInvalid()
		case err != nil:
			return 0, "", s.internal(ctx, "read replay cursor", err)
		}
		afterTime, afterID = ev.Time, ev.ID
	}
	types := e.EventTypes
	if e.Subscribes(AllTypes) {
		types = nil
	}
	evs, err := s.cfg.Store.EventsAfter(ctx, e.Client, types, afterTime, afterID, MaxReplay+1)
	if err != nil {
		return 0, "", s.internal(ctx, "read events to replay", err)
	}
	next := ""
	if len(evs) > MaxReplay {
		evs = evs[:MaxReplay]
		next = evs[len(evs)-1].ID
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	ds := make([]Delivery, 0, len(evs))
	for _, ev := range evs {
		ds = append(ds, s.newDelivery(e, ev, now, true))
	}
	key := IdempotencyKey{Client: e.Client, Key: idemKey, Method: method, Hash: hash,
		Result: strconv.Itoa(len(ds)) + " " + next, Time: now}
	if err := s.cfg.Store.Replay(ctx, ds, key); err != nil {
		if errors.Is(err, ErrKeyTaken) {
			return s.Replay(ctx, name, cursor, start, idemKey)
		}
		return 0, "", s.internal(ctx, "queue replay", err)
	}
	s.Wake()
	return len(ds), next, nil
}

// ListDeliveries returns one page of the endpoint's delivery log, newest
// first, optionally in one state (0: all).
func (s *Service) ListDeliveries(ctx context.Context, name names.Endpoint, state DeliveryState, pageSize int, token string) ([]Delivery, string, error) {
	if _, err := s.endpoint(ctx, name.Client, name.ID); err != nil {
		return nil, "", err
	}
	list := pagetoken.List{Method: "bankbridge.webhooks.v1.WebhooksService/ListDeliveries", Parent: name.String(),
		Filters: []string{state.String()}}
	var readErr error
	ds, next, err := pagetoken.ReadPage(s.cfg.Pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]Delivery, error) {
			ds, err := s.cfg.Store.ListDeliveries(ctx, name.Client, name.ID, state, after, limit)
			readErr = err
			return ds, err
		},
		func(d Delivery) pagetoken.Position { return pagetoken.Position{Time: d.CreateTime, ID: d.ID} })
	if readErr != nil {
		return nil, "", s.internal(ctx, "list deliveries", readErr)
	}
	return ds, next, err
}
