package store_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
)

// t0 is the suite's clock: microsecond precision, like the columns.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

func open(t testing.TB, db *storage.DB) *store.Store {
	t.Helper()
	if err := events.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(context.Background(), db, events.NewOutbox(db))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func conversation(user, bank, id string, at time.Time) app.Conversation {
	return app.Conversation{
		ConversationKey: app.ConversationKey{User: user, BankID: bank, ID: id},
		Client:          "chat-app", Link: "users/" + user + "/links/l-" + bank, BankConsentID: "bc-" + user,
		State: app.StateOpen, Controller: app.ControllerAssistant,
		Assistant:  assistant.State{Offered: assistant.Menu()},
		CreateTime: at, UpdateTime: at,
	}
}

// create stores c with its first messages, as CreateConversation does.
func create(t *testing.T, st *store.Store, c app.Conversation, msgs ...app.Message) {
	t.Helper()
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.InsertConversation(t.Context(), c); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := tx.InsertMessage(t.Context(), m); err != nil {
				return err
			}
		}
		return tx.AddEvent(t.Context(), app.Event{ID: "ev-" + c.ID, Type: app.TypeControlChanged, User: c.User, Client: c.Client,
			Resource: c.Name(), Time: c.CreateTime, Payload: app.ControlChanged{Conversation: c, Action: app.ActionPass, Actor: app.RoleUser}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func message(c app.Conversation, seq int64, role app.Role, text string, at time.Time) app.Message {
	return app.Message{Conversation: c.ConversationKey, ID: "m" + string(rune('a'+seq)), Seq: seq, Role: role, Text: text, CreateTime: at}
}

// outboxTypes are the event types written for a resource, in order.
func outboxTypes(t *testing.T, db *storage.DB, resource string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT event_type FROM events_outbox WHERE resource = $1 ORDER BY seq`, resource)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

// TestStore is the storage contract, run on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		ctx := t.Context()

		c1 := conversation("alice", "sandbox", "c1", t0)
		c1.LastSeq = 3
		m1 := message(c1, 1, app.RoleAssistant, "Hi!", t0)
		m1.QuickReplies = assistant.Menu()
		m2 := message(c1, 2, app.RoleUser, "", t0.Add(time.Second))
		m2.ClientMessageID, m2.Postback = "client-0001", &app.Postback{Payload: "BALANCE", Title: "Balance"}
		m3 := message(c1, 3, app.RoleBankAgent, "Hello, Anna here", t0.Add(2*time.Second))
		m3.SenderDisplayName, m3.BankMessageID = "Anna", "bank-m1"
		create(t, st, c1, m1, m2, m3)

		t.Run("a conversation reads back as stored", func(t *testing.T) {
			got, err := st.Conversation(ctx, c1.ConversationKey)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c1) {
				t.Errorf("Conversation =\n%+v\nwant\n%+v", got, c1)
			}
			if _, err := st.Conversation(ctx, app.ConversationKey{User: "bob", BankID: "sandbox", ID: "c1"}); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another user's conversation = %v, want ErrNotFound", err)
			}
			if got := outboxTypes(t, db, c1.Name()); !slices.Equal(got, []string{app.TypeControlChanged}) {
				t.Errorf("outbox = %v", got)
			}
		})

		t.Run("messages read back, newest first, a page at a time", func(t *testing.T) {
			got, err := st.ListMessages(ctx, c1.ConversationKey, nil, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []app.Message{m3, m2}) {
				t.Errorf("first page =\n%+v\nwant m3, m2", got)
			}
			got, err = st.ListMessages(ctx, c1.ConversationKey, &pagetoken.Position{Seq: 2}, 2)
			if err != nil || !reflect.DeepEqual(got, []app.Message{m1}) {
				t.Errorf("second page = %+v, %v; want m1", got, err)
			}
			if m, err := st.Message(ctx, c1.ConversationKey, m2.ID); err != nil || !reflect.DeepEqual(m, m2) {
				t.Errorf("Message = %+v, %v", m, err)
			}
			if m, err := st.MessageByClientID(ctx, c1.ConversationKey, "client-0001"); err != nil || m.ID != m2.ID {
				t.Errorf("MessageByClientID = %+v, %v", m, err)
			}
			if _, err := st.MessageByClientID(ctx, c1.ConversationKey, "client-9999"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("unknown client id = %v", err)
			}
		})

		t.Run("client and bank message ids are taken once per conversation", func(t *testing.T) {
			err := st.Tx(ctx, func(tx app.Tx) error {
				dup := message(c1, 4, app.RoleUser, "again", t0)
				dup.ClientMessageID = "client-0001"
				return tx.InsertMessage(ctx, dup)
			})
			if !errors.Is(err, app.ErrConflict) {
				t.Errorf("a second message with client-0001 = %v, want ErrConflict", err)
			}
			err = st.Tx(ctx, func(tx app.Tx) error {
				seen, err := tx.HasBankMessage(ctx, c1.ConversationKey, "bank-m1")
				if err != nil || !seen {
					t.Errorf("HasBankMessage(bank-m1) = %v, %v", seen, err)
				}
				seen, err = tx.HasBankMessage(ctx, c1.ConversationKey, "bank-m2")
				if err != nil || seen {
					t.Errorf("HasBankMessage(bank-m2) = %v, %v", seen, err)
				}
				last, err := tx.LastMessages(ctx, c1.ConversationKey, 2)
				if err != nil || len(last) != 2 || last[0].ID != m2.ID || last[1].ID != m3.ID {
					t.Errorf("LastMessages = %+v, %v; want m2, m3", last, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})

		t.Run("an update writes every mutable field, and the case finds it", func(t *testing.T) {
			err := st.Tx(ctx, func(tx app.Tx) error {
				c, err := tx.LockConversation(ctx, c1.ConversationKey)
				if err != nil {
					return err
				}
				c.Controller, c.CaseID, c.Handovers, c.AgentDisplayName = app.ControllerBankAgent, "case-1", 1, "Anna"
				c.Pending = &app.ControlRequest{RequestedBy: app.ControllerAssistant, Metadata: "back please", Time: t0.Add(time.Minute)}
				c.Assistant = assistant.State{Flow: assistant.FlowCardConfirm, Cards: []assistant.Card{{ID: "card-1", AccountID: "acc-1", Last4: "1234"}}}
				c.AwaitingAgentSince = t0.Add(time.Minute)
				c.Version, c.UpdateTime = 2, t0.Add(time.Minute)
				if err := tx.UpdateConversation(ctx, c); err != nil {
					return err
				}
				c1 = c
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Conversation(ctx, c1.ConversationKey)
			if err != nil || !reflect.DeepEqual(got, c1) {
				t.Errorf("after update =\n%+v, %v\nwant\n%+v", got, err, c1)
			}
			err = st.Tx(ctx, func(tx app.Tx) error {
				byCase, err := tx.ConversationByCase(ctx, "sandbox", "case-1")
				if err != nil || byCase.ID != "c1" {
					t.Errorf("ConversationByCase = %+v, %v", byCase, err)
				}
				if _, err := tx.ConversationByCase(ctx, "other-bank", "case-1"); !errors.Is(err, app.ErrNotFound) {
					t.Errorf("another bank's case = %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})

		t.Run("the idle sweep finds agents' conversations waiting too long", func(t *testing.T) {
			got, err := st.IdleConversations(ctx, t0.Add(2*time.Minute), 10)
			if err != nil || !reflect.DeepEqual(got, []app.ConversationKey{c1.ConversationKey}) {
				t.Errorf("IdleConversations = %v, %v", got, err)
			}
			got, err = st.IdleConversations(ctx, t0.Add(time.Minute), 10)
			if err != nil || len(got) != 0 {
				t.Errorf("IdleConversations before it waited = %v, %v", got, err)
			}
		})

		t.Run("conversations list most recently updated first, by state, a page at a time", func(t *testing.T) {
			c2 := conversation("alice", "sandbox", "c2", t0.Add(time.Hour))
			c3 := conversation("alice", "otherbank", "c3", t0.Add(time.Hour))
			c3.State = app.StateClosed
			create(t, st, c2)
			create(t, st, c3)
			create(t, st, conversation("bob", "sandbox", "c4", t0))
			ids := func(cs []app.Conversation) (out []string) {
				for _, c := range cs {
					out = append(out, c.BankID+"~"+c.ID)
				}
				return out
			}
			all, err := st.ListConversations(ctx, "alice", app.ConversationFilter{}, nil, 10)
			if err != nil || !slices.Equal(ids(all), []string{"sandbox~c2", "otherbank~c3", "sandbox~c1"}) {
				t.Errorf("all = %v, %v", ids(all), err)
			}
			page, err := st.ListConversations(ctx, "alice", app.ConversationFilter{}, &pagetoken.Position{Time: all[0].UpdateTime, ID: "sandbox~c2"}, 10)
			if err != nil || !slices.Equal(ids(page), []string{"otherbank~c3", "sandbox~c1"}) {
				t.Errorf("after c2 = %v, %v", ids(page), err)
			}
			open, err := st.ListConversations(ctx, "alice", app.ConversationFilter{State: app.StateOpen}, nil, 10)
			if err != nil || !slices.Equal(ids(open), []string{"sandbox~c2", "sandbox~c1"}) {
				t.Errorf("open = %v, %v", ids(open), err)
			}
		})

		t.Run("idempotency keys are the user's and client's, taken once", func(t *testing.T) {
			k := app.IdempotencyKey{User: "alice", Client: "chat-app", Key: "key-00000001", RequestHash: "h1", Conversation: c1.ConversationKey, CreateTime: t0}
			if err := st.Tx(ctx, func(tx app.Tx) error { return tx.Remember(ctx, k) }); err != nil {
				t.Fatal(err)
			}
			got, err := st.Recall(ctx, "alice", "chat-app", "key-00000001")
			if err != nil || !reflect.DeepEqual(got, k) {
				t.Errorf("Recall = %+v, %v", got, err)
			}
			if _, err := st.Recall(ctx, "alice", "other-app", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another client's key = %v", err)
			}
			if err := st.Tx(ctx, func(tx app.Tx) error { return tx.Remember(ctx, k) }); !errors.Is(err, app.ErrConflict) {
				t.Errorf("the key again = %v, want ErrConflict", err)
			}
		})

		t.Run("retention deletes old messages and keys", func(t *testing.T) {
			n, err := st.DeleteExpired(ctx, t0.Add(1500*time.Millisecond), t0.Add(time.Second))
			if err != nil || n != 2 {
				t.Fatalf("DeleteExpired = %d, %v; want 2 messages", n, err)
			}
			left, _ := st.ListMessages(ctx, c1.ConversationKey, nil, 10)
			if len(left) != 1 || left[0].ID != m3.ID {
				t.Errorf("left = %+v", left)
			}
			if _, err := st.Recall(ctx, "alice", "chat-app", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("expired key = %v", err)
			}
		})

		t.Run("a revoked link's conversations go with their messages", func(t *testing.T) {
			err := st.Tx(ctx, func(tx app.Tx) error {
				cs, err := tx.LinkConversations(ctx, "alice", "users/alice/links/l-sandbox")
				if err != nil {
					return err
				}
				if len(cs) != 2 {
					t.Errorf("LinkConversations = %d, want c1 and c2", len(cs))
				}
				for _, c := range cs {
					if err := tx.DeleteConversation(ctx, c.ConversationKey); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Conversation(ctx, c1.ConversationKey); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("c1 = %v", err)
			}
			if left, _ := st.ListMessages(ctx, c1.ConversationKey, nil, 10); len(left) != 0 {
				t.Errorf("c1's messages = %d", len(left))
			}
			if _, err := st.Conversation(ctx, app.ConversationKey{User: "bob", BankID: "sandbox", ID: "c4"}); err != nil {
				t.Errorf("bob's conversation = %v", err)
			}
		})

		t.Run("a case's early events are kept in order, taken once, and swept", func(t *testing.T) {
			err := st.Tx(ctx, func(tx app.Tx) error {
				if err := tx.LockBankEvents(ctx, "sandbox"); err != nil {
					return err
				}
				for i, ev := range []string{`{"a":1}`, `{"b":2}`} {
					if err := tx.ParkCaseEvent(ctx, "sandbox", "case-9", []byte(ev), t0.Add(time.Duration(i)*time.Second)); err != nil {
						return err
					}
				}
				return tx.ParkCaseEvent(ctx, "sandbox", "case-10", []byte(`{"c":3}`), t0)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = st.Tx(ctx, func(tx app.Tx) error {
				got, err := tx.TakeParkedCaseEvents(ctx, "sandbox", "case-9")
				if err != nil || len(got) != 2 || string(got[0]) != `{"a":1}` || string(got[1]) != `{"b":2}` {
					t.Errorf("TakeParkedCaseEvents = %q, %v", got, err)
				}
				again, err := tx.TakeParkedCaseEvents(ctx, "sandbox", "case-9")
				if err != nil || len(again) != 0 {
					t.Errorf("taken again = %q, %v", again, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := st.DeleteParkedBefore(ctx, t0.Add(time.Second)); err != nil || n != 1 {
				t.Errorf("DeleteParkedBefore = %d, %v; want case-10's", n, err)
			}
		})

		t.Run("one holder at a time takes a bank's event lease, and the position stays", func(t *testing.T) {
			pos, ok, err := st.AcquireLease(ctx, "sandbox", "r1", t0, t0.Add(15*time.Second))
			if err != nil || !ok || pos != (app.EventPosition{Since: t0}) {
				t.Fatalf("r1 acquires = %+v, %v, %v; want no cursor, since the lease was first taken", pos, ok, err)
			}
			if _, ok, err := st.AcquireLease(ctx, "sandbox", "r2", t0.Add(time.Second), t0.Add(16*time.Second)); err != nil || ok {
				t.Errorf("r2 acquires a held lease = %v, %v", ok, err)
			}
			// Taken again before any event: the stream still starts when
			// the lease was first taken.
			if pos, ok, err := st.AcquireLease(ctx, "sandbox", "r1", t0.Add(2*time.Second), t0.Add(17*time.Second)); err != nil || !ok || pos != (app.EventPosition{Since: t0}) {
				t.Errorf("r1 acquires again = %+v, %v, %v; want the first time kept", pos, ok, err)
			}
			applied := app.EventPosition{Cursor: "cur-7", Since: t0.Add(5 * time.Second)}
			if err := st.Tx(ctx, func(tx app.Tx) error { return tx.SetCursor(ctx, "sandbox", "r1", applied) }); err != nil {
				t.Fatal(err)
			}
			if err := st.Tx(ctx, func(tx app.Tx) error {
				return tx.SetCursor(ctx, "sandbox", "r2", app.EventPosition{Cursor: "cur-8", Since: t0.Add(6 * time.Second)})
			}); !errors.Is(err, app.ErrLeaseLost) {
				t.Errorf("r2 stores a cursor = %v, want ErrLeaseLost", err)
			}
			if ok, err := st.RenewLease(ctx, "sandbox", "r1", t0.Add(20*time.Second)); err != nil || !ok {
				t.Errorf("r1 renews = %v, %v", ok, err)
			}
			// Lapsed: r2 takes it, with the position r1 stored.
			pos, ok, err = st.AcquireLease(ctx, "sandbox", "r2", t0.Add(21*time.Second), t0.Add(36*time.Second))
			if err != nil || !ok || pos != applied {
				t.Errorf("r2 takes the lapsed lease = %+v, %v, %v; want %+v", pos, ok, err, applied)
			}
			if ok, err := st.RenewLease(ctx, "sandbox", "r1", t0.Add(40*time.Second)); err != nil || ok {
				t.Errorf("r1 renews a lease r2 holds = %v, %v", ok, err)
			}
			if err := st.ReleaseLease(ctx, "sandbox", "r2"); err != nil {
				t.Fatal(err)
			}
			pos, ok, err = st.AcquireLease(ctx, "sandbox", "r1", t0.Add(22*time.Second), t0.Add(37*time.Second))
			if err != nil || !ok || pos != applied {
				t.Errorf("r1 after r2 released = %+v, %v, %v; want %+v", pos, ok, err, applied)
			}
		})

		// The fraud files' cases (fraud_test.go).
		t.Run("fraud reports, alerts and cards", func(t *testing.T) { testFraud(t, st, db) })
	})
}
