package sandbox

import (
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// idempotencyTTL is how long a key answers with its first answer, as the
// protocol asks.
const idempotencyTTL = 24 * time.Hour

// maxIdempotencyEntries bounds the store's memory; the oldest go first.
const maxIdempotencyEntries = 100_000

// idempotencyStore remembers the first answer to each write's key. It is
// guarded by Bank.mu.
type idempotencyStore struct {
	now     func() time.Time
	entries map[string]*idempotencyEntry
	order   []string
}

type idempotencyEntry struct {
	fingerprint [sha256.Size]byte
	resp        proto.Message
	err         error
	at          time.Time
}

func newIdempotencyStore(now func() time.Time) *idempotencyStore {
	return &idempotencyStore{now: now, entries: map[string]*idempotencyEntry{}}
}

// idempotent answers a retry of (method, key) with the first answer, fails
// a reuse of key with a different request with IDEMPOTENCY_KEY_REUSED, and
// otherwise runs do and remembers what it answered. The caller holds
// Bank.mu, so that a key's write happens once however many retries race.
func idempotent[Resp proto.Message](s *idempotencyStore, method, key string, req proto.Message, do func() (Resp, error)) (Resp, error) {
	var zero Resp
	fingerprint, err := fingerprintOf(req)
	if err != nil {
		return zero, err
	}
	id := method + "\x00" + key
	now := s.now()
	if e, ok := s.entries[id]; ok && now.Sub(e.at) < idempotencyTTL {
		if e.fingerprint != fingerprint {
			return zero, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
				"this idempotency key was used before with a different request")
		}
		if e.err != nil {
			return zero, e.err
		}
		return clone(e.resp.(Resp)), nil
	}
	resp, err := do()
	s.put(id, &idempotencyEntry{fingerprint: fingerprint, resp: resp, err: err, at: now})
	if err != nil {
		return zero, err
	}
	return clone(resp), nil
}

func fingerprintOf(req proto.Message) ([sha256.Size]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(b), nil
}

func (s *idempotencyStore) put(id string, e *idempotencyEntry) {
	if _, ok := s.entries[id]; !ok {
		s.order = append(s.order, id)
	}
	s.entries[id] = e
	for len(s.order) > maxIdempotencyEntries {
		delete(s.entries, s.order[0])
		s.order = s.order[1:]
	}
}
