package app

import (
	"context"
	"errors"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// The ports the logic needs; internal/store, internal/secrets and
// internal/egress implement them, and the platform's JetStream bus is the
// event source.

// ErrNotFound is what a store answers for a row that is not there.
var ErrNotFound = errors.New("not found")

// ErrKeyTaken is what a store answers when an idempotency key was stored
// first by another request.
var ErrKeyTaken = errors.New("idempotency key already used")

// Store keeps endpoints, events, deliveries and idempotency keys.
type Store interface {
	// CreateEndpoint inserts e, with key remembered for it when key.Key is
	// set, in one transaction: ErrKeyTaken when the key is already there.
	CreateEndpoint(ctx context.Context, e Endpoint, key IdempotencyKey) error
	GetEndpoint(ctx context.Context, client, id string) (Endpoint, error)
	// ListEndpoints reads the client's endpoints oldest first, after the
	// position (nil: from the first), at most limit.
	ListEndpoints(ctx context.Context, client string, after *pagetoken.Position, limit int) ([]Endpoint, error)
	CountEndpoints(ctx context.Context, client string) (int, error)
	// EndpointsOf reads every endpoint of the client.
	EndpointsOf(ctx context.Context, client string) ([]Endpoint, error)
	// DeleteEndpoint removes the endpoint, its deliveries and their
	// attempts.
	DeleteEndpoint(ctx context.Context, client, id string) error
	// UpdateSecretTimes records a rotation.
	UpdateSecretTimes(ctx context.Context, client, id string, created, previousExpire time.Time) error

	// Recall reads what a request with the key answered.
	Recall(ctx context.Context, client, key string) (IdempotencyKey, error)
	// Remember stores key; ErrKeyTaken when it is there already.
	Remember(ctx context.Context, key IdempotencyKey) error

	// AddEvent keeps e and queues deliveries for it, in one transaction,
	// unless an event with its id is kept already (the bus delivers at
	// least once): then it changes nothing and answers false.
	AddEvent(ctx context.Context, e Event, deliveries []Delivery) (bool, error)
	// Event reads the client's event id.
	Event(ctx context.Context, client, id string) (Event, error)
	// EventsAfter reads the client's events in order (time, then id), of
	// the given types (nil: all), after the position (time and id) or, with
	// id "", at or after the time, at most limit.
	EventsAfter(ctx context.Context, client string, types []string, after time.Time, afterID string, limit int) ([]Event, error)
	// Replay queues deliveries, with key remembered for them when key.Key
	// is set, in one transaction: ErrKeyTaken when the key is there.
	Replay(ctx context.Context, deliveries []Delivery, key IdempotencyKey) error

	// ClaimDue claims up to limit pending deliveries due at now, pushing
	// their next attempt to now+lease so no other worker takes them while
	// this one tries; a worker that dies leaves them due again after it.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Due, error)
	// RecordAttempt appends an attempt to a delivery and moves it to state
	// (with next, the next attempt's time, for PENDING).
	RecordAttempt(ctx context.Context, deliveryID string, a Attempt, state DeliveryState, next time.Time) error
	// ListDeliveries reads an endpoint's deliveries newest first, with
	// their attempts, optionally in one state (0: all), after the position.
	ListDeliveries(ctx context.Context, client, endpointID string, state DeliveryState, after *pagetoken.Position, limit int) ([]Delivery, error)
	// Prune removes events, and finished deliveries, older than before.
	Prune(ctx context.Context, before time.Time) error
}

// IdempotencyKey is a request's idempotency key and what it answered.
type IdempotencyKey struct {
	Client string
	Key    string
	// Method and Hash identify the request: a key reused with another is
	// IDEMPOTENCY_KEY_REUSED.
	Method string
	Hash   string
	// Result is what the first request answered, as the method records it.
	Result string
	Time   time.Time
}

// Secrets keeps endpoints' signing secrets (Vault KV v2). Errors mean the
// secret store cannot be reached (CREDENTIALS_UNAVAILABLE), or wrap
// ErrNotFound.
type Secrets interface {
	Put(ctx context.Context, endpointID string, s SecretSet) error
	Get(ctx context.Context, endpointID string) (SecretSet, error)
	Delete(ctx context.Context, endpointID string) error
}

// URLChecker judges an endpoint URL at registration; its error's text
// says why it is refused, in words shown to the client.
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) error
}

// Poster POSTs one webhook and tells how it went: the status code (0
// without an answer) and the outcome. It never returns the body.
type Poster interface {
	Post(ctx context.Context, url string, header map[string]string, body []byte) (status int, outcome Outcome)
}

// Bus is the event bus as the deliverer reads it: a durable consumer that
// hands each event to handle, at least once, and redelivers it (after a
// backoff) when handle fails. Consume returns when ctx ends.
type Bus interface {
	Consume(ctx context.Context, durable string, f events.Filter, handle func(context.Context, events.Delivered) error) error
}
