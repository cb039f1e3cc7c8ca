package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// TestAKeyedConversationSurvivesALostConnection: PostgreSQL ends the
// connection under a keyed CreateConversation's transaction, as in a
// restart. It (IdempotentTx) runs again on a fresh connection: lost
// before its commit, the conversation is stored; lost after a run that
// committed, the second run conflicts on the conversation and its key,
// from which CreateConversation answers (its retry recalls the key).
// Either way the caller gets the conversation, stored once with its
// greeting, key and event.
func TestAKeyedConversationSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	db, lose := storagetest.Losable(t)
	st := open(t, db)
	tests := []struct {
		name string
		// committed commits the creation elsewhere before the connection
		// is lost: the first run's COMMIT went through, its answer not.
		committed bool
		wantErr   error
	}{
		{name: "lost before the commit", wantErr: nil},
		{name: "lost after a run that committed", committed: true, wantErr: app.ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conversation("alice", "bank-"+string(rune('a'+i)), "conv-lost-"+string(rune('a'+i)), t0)
			k := app.IdempotencyKey{User: c.User, Client: c.Client, Key: "key-lost-" + string(rune('a'+i)), RequestHash: "rh",
				Conversation: c.ConversationKey, CreateTime: t0}
			runs := 0
			err := st.IdempotentTx(t.Context(), func(tx app.Tx) error {
				runs++
				if runs == 1 && tt.committed {
					if err := st.Tx(t.Context(), func(other app.Tx) error { return writeConversation(t.Context(), other, c, k) }); err != nil {
						t.Fatal(err)
					}
					lose()
					return nil
				}
				if err := writeConversation(t.Context(), tx, c, k); err != nil {
					return err
				}
				if runs == 1 {
					lose()
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("IdempotentTx = %v, want %v", err, tt.wantErr)
			}
			if runs != 2 {
				t.Errorf("ran %d times, want 2", runs)
			}
			got, err := st.Recall(t.Context(), k.User, k.Client, k.Key)
			if err != nil {
				t.Fatalf("Recall = %v, want the key stored", err)
			}
			if got.Conversation != c.ConversationKey {
				t.Errorf("key answers %v, want %v", got.Conversation, c.ConversationKey)
			}
			ms, err := st.ListMessages(t.Context(), c.ConversationKey, nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 {
				t.Errorf("%d messages, want the greeting once", len(ms))
			}
			if got := outboxTypes(t, db, c.Name()); len(got) != 1 {
				t.Errorf("events %v, want one", got)
			}
		})
	}
}

// writeConversation is CreateConversation's transaction: the
// conversation, its greeting, its key and its event.
func writeConversation(ctx context.Context, tx app.Tx, c app.Conversation, k app.IdempotencyKey) error {
	if err := tx.InsertConversation(ctx, c); err != nil {
		return err
	}
	if err := tx.InsertMessage(ctx, message(c, 1, app.RoleAssistant, "Hello", t0)); err != nil {
		return err
	}
	if err := tx.Remember(ctx, k); err != nil {
		return err
	}
	return tx.AddEvent(ctx, app.Event{ID: "ev-" + c.ID, Type: app.TypeControlChanged, User: c.User, Client: c.Client,
		Resource: c.Name(), Time: t0, Payload: app.ControlChanged{Conversation: c, Action: app.ActionPass, Actor: app.RoleUser}})
}
