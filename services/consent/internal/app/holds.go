package app

import (
	"context"
	"fmt"
	"time"
)

const (
	// keyHoldLease is how long a call holds its idempotency key while it
	// answers: longer than any bank call and settleTimeout; the hold of a
	// call that died lapses after it, and a call waiting takes it over.
	keyHoldLease = 2 * time.Minute
	// keyPollFirst and keyPollMost bound how long a call waiting for
	// another's answer to the same key sleeps between looks: short at
	// first (most answers take one bank call), doubling up to the most.
	keyPollFirst = 10 * time.Millisecond
	keyPollMost  = 200 * time.Millisecond
)

// awaitKey makes a call of op with idempotency key the only one answering
// that key. Calls made at once with one key (a client retrying before its
// first call answered, or sending twice) would otherwise race: both to the
// bank, which refuses the second StartSca or ExtendConsent as a reuse of
// its key (the consent's validity is computed a moment later), and both to
// the challenge, where the second finds the first's code being checked.
// So the first call holds the key (Store.HoldKey) until it has answered,
// and a second one with the same request waits, within its deadline, for
// the first's recorded answer and replays it, success or error; a second
// one with another request is IDEMPOTENCY_KEY_REUSED at once. When the
// first ends with an answer that records nothing (BANK_UNAVAILABLE and the
// like, which a retry asks again), the one waiting takes the key over and
// answers itself, as a retry would.
//
// release is nil when the call is answered (link, err): replayed, refused
// or given up at its deadline. Otherwise the caller answers and then calls
// release, after recording its answer.
func (s *Service) awaitKey(ctx context.Context, user, op, key string, fps []string) (release func(), link Link, err error) {
	if key == "" {
		return func() {}, Link{}, nil
	}
	h := KeyHold{User: user, Operation: op, Key: key, RequestHash: fps[0], Holder: newID()}
	poll := keyPollFirst
	for {
		now := s.now()
		h.ExpireTime = now.Add(keyHoldLease)
		held, ok, err := s.store.HoldKey(ctx, h, now)
		if err != nil {
			return nil, Link{}, fmt.Errorf("hold idempotency key: %w", err)
		}
		if ok {
			release := func() { s.releaseKey(ctx, h) }
			// The call that held the key before may have answered
			// between the caller's replay and this hold.
			if link, seen, err := s.replay(ctx, user, op, key, fps); seen || err != nil {
				release()
				return nil, link, err
			}
			return release, Link{}, nil
		}
		if held.Holder != "" && !matches(held.RequestHash, fps) {
			return nil, Link{}, errKeyReused()
		}
		select {
		case <-ctx.Done():
			return nil, Link{}, ctx.Err()
		case <-time.After(poll):
		}
		poll = min(2*poll, keyPollMost)
		if link, seen, err := s.replay(ctx, user, op, key, fps); seen || err != nil {
			return nil, link, err
		}
	}
}

// releaseKey frees a key the call held, once it answered, even when its
// caller has gone. A hold that cannot be freed lapses by itself; the
// calls waiting on it see the recorded answer before then.
func (s *Service) releaseKey(ctx context.Context, h KeyHold) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := s.store.ReleaseKey(ctx, h); err != nil {
		s.log.WarnContext(ctx, "could not release an idempotency key; its hold lapses by itself", "error", err.Error())
	}
}
