package app

import (
	"context"
	"errors"
	"sync"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// A user's SendMessage and Handover plan outside any transaction (they
// call the balance service or the bank first, and no lock may be held
// across such a call: on SQLite that would stop every writer), then write
// only if the conversation has not changed since. Two such calls on one
// conversation at once would always have one of them plan again, and with
// a few more at once some would run out of attempts. So on a replica they
// take turns per conversation, waiting in memory, never in the database:
// the version check is left to catch what another replica or the bank's
// events changed meanwhile, which retry absorbs; when that keeps
// happening the caller gets ABORTED, never INTERNAL.

// turns hands out one turn at a time per conversation. The zero value is
// not usable; use newTurns.
type turns struct {
	mu sync.Mutex
	m  map[ConversationKey]*turn
}

// turn is one conversation's: sem holds a token while a call has the
// turn; users counts the calls holding or waiting for it, so the entry
// goes when the last leaves.
type turn struct {
	sem   chan struct{}
	users int
}

func newTurns() *turns { return &turns{m: map[ConversationKey]*turn{}} }

// take waits for k's turn, in the order the calls came, until ctx ends;
// release ends the turn.
func (ts *turns) take(ctx context.Context, k ConversationKey) (release func(), err error) {
	ts.mu.Lock()
	t := ts.m[k]
	if t == nil {
		t = &turn{sem: make(chan struct{}, 1)}
		ts.m[k] = t
	}
	t.users++
	ts.mu.Unlock()
	select {
	case t.sem <- struct{}{}:
		return func() {
			<-t.sem
			ts.leave(k, t)
		}, nil
	case <-ctx.Done():
		ts.leave(k, t)
		return nil, ctx.Err()
	}
}

func (ts *turns) leave(k ConversationKey, t *turn) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t.users--; t.users == 0 {
		delete(ts.m, k)
	}
}

// inTurn runs op, retried on conflicts, in k's turn. A conflict that
// outlasts the retries is the contract's ABORTED: nothing was written, and
// the same call again is safe.
func inTurn[T any](ctx context.Context, s *Service, k ConversationKey, op func() (T, error)) (T, error) {
	release, err := s.turns.take(ctx, k)
	if err != nil {
		var zero T
		return zero, err
	}
	defer release()
	v, err := retry(op)
	if errors.Is(err, ErrConflict) {
		return v, apierr.New(commonv1.ErrorReason_ERROR_REASON_ABORTED,
			"the conversation kept changing while this call was applied; nothing was changed, send it again")
	}
	return v, err
}
