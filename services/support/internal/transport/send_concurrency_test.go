package transport_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// TestConcurrentSendsToOneConversation: a user who sends several messages
// at once (two devices, a client that does not wait) gets every one of
// them answered, on SQLite and PostgreSQL: no call fails because another
// got in first, each message is stored once, and each answer comes right
// after the message it answers.
func TestConcurrentSendsToOneConversation(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		e := start(t, options{noBankEvents: true, db: db})
		c := e.create(t)

		// The balance question makes each answer call the balance service
		// first, the slow part that concurrent sends overlap on.
		const n = 8
		sent := make([]*supportv1.Message, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				resp, err := e.support.SendMessage(e.as(t, "alice"), &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{
					ClientMessageId: fmt.Sprintf("cm-concurrent-%02d", i), Text: "What's my balance?",
				}})
				sent[i], errs[i] = resp.GetMessage(), err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				st := status.Convert(err)
				t.Errorf("send %d: %v %q, want it answered", i, st.Code(), st.Message())
			}
		}
		if t.Failed() {
			return
		}

		ms := e.messages(t, c.GetName())
		if len(ms) != 1+2*n {
			t.Fatalf("%d messages, want the greeting and %d messages each answered once", len(ms), n)
		}
		byID := map[string]*supportv1.Message{}
		for _, m := range ms {
			byID[m.GetName()] = m
		}
		for i, m := range sent {
			if got := byID[m.GetName()]; got == nil || got.GetClientMessageId() != fmt.Sprintf("cm-concurrent-%02d", i) {
				t.Errorf("send %d answered %s, which is not stored as its message", i, m.GetName())
			}
		}
		seen := map[string]bool{}
		for i, m := range ms[1:] {
			wantRole := supportv1.ParticipantRole_PARTICIPANT_ROLE_USER
			if i%2 == 1 {
				wantRole = supportv1.ParticipantRole_PARTICIPANT_ROLE_ASSISTANT
			}
			if m.GetSenderRole() != wantRole {
				t.Errorf("message %d is from %v, want %v: each answer right after its question", i+1, m.GetSenderRole(), wantRole)
			}
			if id := m.GetClientMessageId(); id != "" {
				if seen[id] {
					t.Errorf("client message %s stored twice", id)
				}
				seen[id] = true
			}
		}
		if len(seen) != n {
			t.Errorf("%d user messages stored, want %d", len(seen), n)
		}
	})
}

// conflictingStore is a store whose transactions all lose to a concurrent
// write while conflicts is set, as on a database where other replicas keep
// changing the conversation.
type conflictingStore struct {
	app.Store
	conflicts atomic.Bool
}

func (s *conflictingStore) Tx(ctx context.Context, fn func(app.Tx) error) error {
	if s.conflicts.Load() {
		return fmt.Errorf("update conversation: %w", app.ErrConflict)
	}
	return s.Store.Tx(ctx, fn)
}

func (s *conflictingStore) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	if s.conflicts.Load() {
		return fmt.Errorf("update conversation: %w", app.ErrConflict)
	}
	return s.Store.IdempotentTx(ctx, fn)
}

// TestSendAbortsWhenConflictsPersist: a send that keeps losing to
// concurrent changes is ABORTED, which the caller may send again as it
// was, not INTERNAL; nothing of it is stored, and the same send goes
// through once the conversation is quiet.
func TestSendAbortsWhenConflictsPersist(t *testing.T) {
	t.Parallel()
	var st *conflictingStore
	e := start(t, options{noBankEvents: true, store: func(s app.Store) app.Store {
		st = &conflictingStore{Store: s}
		return st
	}})
	c := e.create(t)
	req := &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{ClientMessageId: "cm-aborted-01", Text: "hello"}}

	st.conflicts.Store(true)
	_, err := e.support.SendMessage(e.as(t, "alice"), req)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_ABORTED)
	if got := status.Code(err); got != codes.Aborted {
		t.Errorf("code = %v, want ABORTED", got)
	}
	if ms := e.messages(t, c.GetName()); len(ms) != 1 {
		t.Fatalf("%d messages after the aborted send, want the greeting only", len(ms))
	}

	st.conflicts.Store(false)
	resp, err := e.support.SendMessage(e.as(t, "alice"), req)
	if err != nil {
		t.Fatalf("the same send again: %v", err)
	}
	if ms := e.messages(t, c.GetName()); len(ms) != 3 || ms[1].GetName() != resp.GetMessage().GetName() {
		t.Errorf("after the send again: %d messages, want the greeting, the message and its answer", len(ms))
	}
}
