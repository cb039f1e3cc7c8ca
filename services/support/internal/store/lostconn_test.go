package store_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// losable opens a fresh PostgreSQL database and returns it with lose,
// which ends every connection the database's pool holds, from another
// connection, as a PostgreSQL restart does, and waits until they are
// gone. It skips the test when no PostgreSQL is given.
func losable(t *testing.T) (*storage.DB, func()) {
	t.Helper()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	url := storagetest.PostgresDatabase(t, admin)
	db, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	killer, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the database is dropped (cleanups run last first).
	t.Cleanup(func() { _, _ = db.Close(), killer.Close() })
	killer.SetMaxOpenConns(1) // its own connection is the one spared
	return db, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var pids []int64
		rows, err := killer.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var pid int64
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		// Waiting for those only: a pool may already be connecting again.
		for _, pid := range pids {
			if _, err := killer.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			for {
				var n int
				if err := killer.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

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
	db, lose := losable(t)
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
