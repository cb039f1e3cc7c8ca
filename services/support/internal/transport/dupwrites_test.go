package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for the support service's keyed writes at a bank, through its gRPC
// server on SQLite and PostgreSQL: calls made at once with one key get
// one answer.

import (
	"os"
	"sync"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// sameAnswers makes n calls of call at once and fails the test unless
// every caller got the first's answer: the same response, or the same
// status.
func sameAnswers[R proto.Message](t *testing.T, what string, n int, call func() (R, error)) {
	t.Helper()
	resps := make([]R, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			resps[i], errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	for i := 1; i < n; i++ {
		if !proto.Equal(status.Convert(errs[i]).Proto(), status.Convert(errs[0]).Proto()) ||
			(errs[i] == nil && !proto.Equal(resps[i], resps[0])) {
			t.Errorf("%s: call %d got %v, %v; call 0 got %v, %v", what, i, resps[i], errs[i], resps[0], errs[0])
		}
	}
}

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
			sameAnswers(t, "BlockCard", n, func() (*supportv1.BlockCardResponse, error) {
				return e.support.BlockCard(alice, &supportv1.BlockCardRequest{
					Name: debitCard, Reason: supportv1.CardBlockReason_CARD_BLOCK_REASON_LOST, IdempotencyKey: blockKey,
				})
			})
			startKey := newKey()
			sameAnswers(t, "StartCardUnblock", n, func() (*supportv1.StartCardUnblockResponse, error) {
				return e.support.StartCardUnblock(alice, &supportv1.StartCardUnblockRequest{Name: debitCard, IdempotencyKey: startKey})
			})
			verifyKey := newKey()
			sameAnswers(t, "VerifyCardUnblock with a wrong code", n, func() (*supportv1.VerifyCardUnblockResponse, error) {
				return e.support.VerifyCardUnblock(alice, &supportv1.VerifyCardUnblockRequest{Name: debitCard, Code: "000000", IdempotencyKey: verifyKey})
			})
		})
	}
}

func TestConversationCallsAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		e := start(t, options{noBankEvents: true, db: db})
		const n = 8
		create := &supportv1.CreateConversationRequest{Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox"}, IdempotencyKey: newKey()}
		sameAnswers(t, "CreateConversation", n, func() (*supportv1.CreateConversationResponse, error) {
			return e.support.CreateConversation(e.as(t, "alice"), create)
		})
		c := e.create(t)
		send := &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{ClientMessageId: "cm-dup-0001", Text: "What's my balance?"}}
		sameAnswers(t, "SendMessage", n, func() (*supportv1.SendMessageResponse, error) {
			return e.support.SendMessage(e.as(t, "alice"), send)
		})
		if ms := e.messages(t, c.GetName()); len(ms) != 3 {
			t.Errorf("%d messages, want the greeting, the message once and its answer", len(ms))
		}
	})
}
