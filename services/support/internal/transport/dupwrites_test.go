package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for the support service's keyed writes at a bank, through its gRPC
// server on SQLite and PostgreSQL: calls made at once with one key get
// one answer.

import (
	"os"
	"testing"

	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestCardCallsAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	dbs := map[string]func(t *testing.T) *storage.DB{
		"sqlite": func(t *testing.T) *storage.DB { return storagetest.OpenSQLite(t) },
		"postgres": func(t *testing.T) *storage.DB {
			url := os.Getenv(storagetest.PostgresURLEnv)
			if url == "" {
				t.Skipf("%s is not set: no PostgreSQL to run on", storagetest.PostgresURLEnv)
			}
			return storagetest.OpenPostgres(t, url)
		},
	}
	for name, open := range dbs {
		t.Run(name, func(t *testing.T) {
			e := startFraudOn(t, open(t), 0)
			alice := e.as(t, "alice")
			const n = 8
			blockKey := newKey()
			if _, err := testkit.SameAnswers(t, "BlockCard", n, func() (*supportv1.BlockCardResponse, error) {
				return e.support.BlockCard(alice, &supportv1.BlockCardRequest{
					Name: debitCard, Reason: supportv1.CardBlockReason_CARD_BLOCK_REASON_LOST, IdempotencyKey: blockKey,
				})
			}); err != nil {
				t.Errorf("BlockCard: %v", err)
			}
			startKey := newKey()
			if _, err := testkit.SameAnswers(t, "StartCardUnblock", n, func() (*supportv1.StartCardUnblockResponse, error) {
				return e.support.StartCardUnblock(alice, &supportv1.StartCardUnblockRequest{Name: debitCard, IdempotencyKey: startKey})
			}); err != nil {
				t.Errorf("StartCardUnblock: %v", err)
			}
			verifyKey := newKey()
			if _, err := testkit.SameAnswers(t, "VerifyCardUnblock with a wrong code", n, func() (*supportv1.VerifyCardUnblockResponse, error) {
				return e.support.VerifyCardUnblock(alice, &supportv1.VerifyCardUnblockRequest{Name: debitCard, Code: "000000", IdempotencyKey: verifyKey})
			}); err == nil {
				t.Errorf("VerifyCardUnblock with a wrong code: no refusal")
			}
		})
	}
}

func TestConversationCallsAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		e := start(t, options{noBankEvents: true, db: db})
		const n = 8
		create := &supportv1.CreateConversationRequest{Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox"}, IdempotencyKey: newKey()}
		if _, err := testkit.SameAnswers(t, "CreateConversation", n, func() (*supportv1.CreateConversationResponse, error) {
			return e.support.CreateConversation(e.as(t, "alice"), create)
		}); err != nil {
			t.Errorf("CreateConversation: %v", err)
		}
		c := e.create(t)
		send := &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{ClientMessageId: "cm-dup-0001", Text: "What's my balance?"}}
		if _, err := testkit.SameAnswers(t, "SendMessage", n, func() (*supportv1.SendMessageResponse, error) {
			return e.support.SendMessage(e.as(t, "alice"), send)
		}); err != nil {
			t.Errorf("SendMessage: %v", err)
		}
		if ms := e.messages(t, c.GetName()); len(ms) != 3 {
			t.Errorf("%d messages, want the greeting, the message once and its answer", len(ms))
		}
	})
}
