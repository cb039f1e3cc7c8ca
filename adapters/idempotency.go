package adapters

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// DefaultIdempotencyTTL is how long [Idempotency] answers a key with its
// first answer unless told otherwise: the protocol asks for 24 hours.
const DefaultIdempotencyTTL = 24 * time.Hour

// IdempotencyRecord is what an [IdempotencyStore] keeps for one key: the
// request's fingerprint and the final answer, as bytes so that any store
// (a map, a SQL table, Redis) can keep it. It holds a customer's data:
// store it as you store the bank's other answers.
type IdempotencyRecord struct {
	// Fingerprint is the SHA-256 of the request, deterministically
	// marshalled: a retry must be the same request.
	Fingerprint []byte
	// Response is the marshalled response; nil when Status is set.
	Response []byte
	// Status is the marshalled google.rpc.Status of a final failure (the
	// request was refused for good, e.g. FAILED_PRECONDITION); nil for a
	// success.
	Status []byte
	// Created is when the answer was given; the record answers for the TTL
	// from then.
	Created time.Time
}

// IdempotencyStore keeps the answer to each idempotency key. Keys are
// opaque strings of the RPC's name and the caller's idempotency key.
// Implementations are safe for concurrent use. [Idempotency] runs one call
// per key at a time within a process; adapters run as several replicas
// share a store whose Put keeps the first record written (an INSERT ... ON
// CONFLICT DO NOTHING), and pass the idempotency key on to the bank where
// its API takes one, so that two replicas racing never book twice.
type IdempotencyStore interface {
	// Get returns the record of key, or false when there is none.
	Get(ctx context.Context, key string) (IdempotencyRecord, bool, error)
	// Put stores rec under key, replacing an expired record.
	Put(ctx context.Context, key string, rec IdempotencyRecord) error
}

// Idempotency answers a retried write once: the first call with a key runs,
// a retry with the same key and the same request gets the first answer
// again, and the key reused with another request fails with ALREADY_EXISTS
// (IDEMPOTENCY_KEY_REUSED), as the protocol requires of every RPC with an
// idempotency_key. Only final answers are kept: a success, or a failure
// that the same request would get again (INVALID_ARGUMENT, NOT_FOUND,
// ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE). A
// transient failure (UNAVAILABLE such as BANK_UNAVAILABLE, a deadline,
// RESOURCE_EXHAUSTED, UNAUTHENTICATED, an error without a status) is never
// kept: the call did not happen as far as the caller knows, no attempt is
// spent, and the retry calls the bank again. Use it with [Idempotent].
type Idempotency struct {
	store IdempotencyStore
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// IdempotencyOption configures [NewIdempotency].
type IdempotencyOption func(*Idempotency)

// WithIdempotencyTTL sets how long a key answers with its first answer;
// default [DefaultIdempotencyTTL].
func WithIdempotencyTTL(d time.Duration) IdempotencyOption {
	return func(i *Idempotency) {
		if d > 0 {
			i.ttl = d
		}
	}
}

// WithIdempotencyClock sets the clock the TTL is measured with (tests,
// simulated time); default time.Now.
func WithIdempotencyClock(now func() time.Time) IdempotencyOption {
	return func(i *Idempotency) {
		if now != nil {
			i.now = now
		}
	}
}

// NewIdempotency returns an Idempotency keeping its records in store, for
// instance [NewMemoryIdempotencyStore]() for an adapter run as one
// process.
func NewIdempotency(store IdempotencyStore, opts ...IdempotencyOption) *Idempotency {
	i := &Idempotency{store: store, ttl: DefaultIdempotencyTTL, now: time.Now, locks: map[string]*keyLock{}}
	for _, o := range opts {
		o(i)
	}
	return i
}

// Idempotent runs do once for (method, key): see [Idempotency]. method
// names the RPC, so that one key used by two RPCs means two writes; req is
// the request whose fingerprint a retry must match. An empty key runs do
// every time.
//
//	func (b *Bank) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
//		return adapters.Idempotent(ctx, b.idem, "BlockCard", req.GetIdempotencyKey(), req,
//			func(ctx context.Context) (*adapterv1.BlockCardResponse, error) { return b.blockCard(ctx, req) })
//	}
//
// The store's own failures are UNAVAILABLE (BANK_UNAVAILABLE): without the
// record the write cannot be made safely.
func Idempotent[Resp proto.Message](ctx context.Context, i *Idempotency, method, key string, req proto.Message, do func(context.Context) (Resp, error)) (Resp, error) {
	var zero Resp
	if key == "" {
		return do(ctx)
	}
	fingerprint, err := fingerprintOf(req)
	if err != nil {
		return zero, fmt.Errorf("fingerprint the %s request: %w", method, err)
	}
	id := method + "\x00" + key
	unlock := i.lock(id)
	defer unlock()

	rec, ok, err := i.store.Get(ctx, id)
	if err != nil {
		return zero, storeUnavailable(err)
	}
	if ok && i.now().Sub(rec.Created) < i.ttl {
		if !bytes.Equal(rec.Fingerprint, fingerprint) {
			return zero, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
				"this idempotency key was used before with a different request")
		}
		return replay[Resp](rec)
	}
	created := i.now()
	resp, callErr := do(ctx)
	rec = IdempotencyRecord{Fingerprint: fingerprint, Created: created}
	switch {
	case callErr == nil:
		if rec.Response, err = (proto.MarshalOptions{Deterministic: true}).Marshal(resp); err != nil {
			return zero, fmt.Errorf("keep the %s response: %w", method, err)
		}
	case final(callErr):
		if rec.Status, err = proto.Marshal(status.Convert(callErr).Proto()); err != nil {
			return zero, fmt.Errorf("keep the %s failure: %w", method, err)
		}
	default:
		return resp, callErr // transient: nothing kept, the retry runs again
	}
	// A store that fails now still gets the answer to the caller: the
	// write happened, and the retry the store missed is the bank's to
	// refuse (pass the key on to it).
	_ = i.store.Put(ctx, id, rec)
	return resp, callErr
}

// final reports whether err is an answer the same request would get
// again, and so one a retry is given back.
func final(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.FailedPrecondition, codes.OutOfRange:
		return true
	}
	return false
}

func replay[Resp proto.Message](rec IdempotencyRecord) (Resp, error) {
	var zero Resp
	if rec.Status != nil {
		st := &spb.Status{}
		if err := proto.Unmarshal(rec.Status, st); err != nil {
			return zero, fmt.Errorf("read a kept failure: %w", err)
		}
		return zero, status.ErrorProto(st)
	}
	resp := zero.ProtoReflect().New().Interface().(Resp)
	if err := proto.Unmarshal(rec.Response, resp); err != nil {
		return zero, fmt.Errorf("read a kept response: %w", err)
	}
	return resp, nil
}

func storeUnavailable(err error) error {
	_ = err // the store's text may name its host; the adapter's log has it
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		"the adapter's idempotency store is unavailable", apierr.WithRetryAfter(RetryAfterBankFailure))
}

func fingerprintOf(req proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// lock serialises the calls of one key within the process.
func (i *Idempotency) lock(id string) func() {
	i.mu.Lock()
	l := i.locks[id]
	if l == nil {
		l = &keyLock{}
		i.locks[id] = l
	}
	l.refs++
	i.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		i.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(i.locks, id)
		}
		i.mu.Unlock()
	}
}

// maxMemoryIdempotencyEntries bounds a memory store; the oldest go first.
const maxMemoryIdempotencyEntries = 100_000

// MemoryIdempotencyStore is an [IdempotencyStore] in the process's memory,
// for an adapter run as one process (and tests): a restart forgets every
// key. It keeps the newest 100,000 records.
type MemoryIdempotencyStore struct {
	mu      sync.Mutex
	entries map[string]IdempotencyRecord
	order   []string
}

// NewMemoryIdempotencyStore returns an empty MemoryIdempotencyStore.
func NewMemoryIdempotencyStore() *MemoryIdempotencyStore {
	return &MemoryIdempotencyStore{entries: map[string]IdempotencyRecord{}}
}

// Get implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Get(_ context.Context, key string) (IdempotencyRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.entries[key]
	return rec, ok, nil
}

// Put implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Put(_ context.Context, key string, rec IdempotencyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; !ok {
		s.order = append(s.order, key)
	}
	s.entries[key] = rec
	for len(s.order) > maxMemoryIdempotencyEntries {
		delete(s.entries, s.order[0])
		s.order = s.order[1:]
	}
	return nil
}
