package app_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
)

// noBalances is a balance service the lease test never asks.
type noBalances struct{}

var errNoBalances = errors.New("no balance service in this test")

func (noBalances) Accounts(context.Context, string, string) ([]app.Account, error) {
	return nil, errNoBalances
}

func (noBalances) Balances(context.Context, names.Account) ([]app.Balance, error) {
	return nil, errNoBalances
}

func (noBalances) Transactions(context.Context, names.Account, int) ([]app.Transaction, error) {
	return nil, errNoBalances
}

// replica is one support replica reading the sandbox's event stream
// through a registry of its own, which counts the streams it opens.
type replica struct {
	svc     *app.Service
	opened  atomic.Int32
	open    atomic.Int32
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newReplica(t *testing.T, holder string, st *store.Store, sb *sandbox.Bank) *replica {
	t.Helper()
	r := &replica{stopped: make(chan struct{})}
	count := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err == nil && method == adapterv1.BankAdapterService_StreamEvents_FullMethodName {
			r.opened.Add(1)
			r.open.Add(1)
			context.AfterFunc(ctx, func() { r.open.Add(-1) })
		}
		return s, err
	}
	reg, err := runtime.NewRegistry([]runtime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox"}},
		runtime.WithInProcess("sandbox", sb), runtime.WithDialOptions(grpc.WithChainStreamInterceptor(count)),
		runtime.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	r.svc, err = app.New(app.Config{
		Store: st, Consent: consenttest.New(), Banks: reg, Balances: noBalances{}, Pages: pagetoken.Random(),
		Holder: holder, LeaseTTL: 600 * time.Millisecond, ReconnectBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.stopped); r.svc.RunBank(ctx, "sandbox") }()
	t.Cleanup(r.stop)
	return r
}

// stop shuts the replica down, as a deploy does, and waits for it.
func (r *replica) stop() {
	r.cancel()
	<-r.stopped
}

// agentMessages counts the agent's messages stored for the conversation.
func agentMessages(t *testing.T, db *storage.DB, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND role = 'BANK_AGENT'`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOneReplicaStreamsEachBank runs two replicas on one database: only
// the lease holder reads the bank's stream; when it stops, the other takes
// over and resumes from the stored cursor, so the events the bank sent
// meanwhile are applied, each once.
func TestOneReplicaStreamsEachBank(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := t.Context()
		if err := events.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		st, err := store.New(ctx, db, events.NewOutbox(db))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := sandbox.New(sandbox.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sb.Close)
		bankConsent := linkSandbox(t, sb)

		a := newReplica(t, "replica-a", st, sb)
		b := newReplica(t, "replica-b", st, sb)
		// Probe with fraud alerts until one has been applied: a replica
		// holds the lease and reads the stream.
		testkit.Eventually(t, func() bool {
			if _, err := sb.TriggerFraudAlert("alice"); err != nil {
				t.Fatal(err)
			}
			return leaseCursor(t, db) != ""
		}, 10*time.Second)

		g := app.Grant{User: "alice", Client: "chat-app", BankID: "sandbox", Link: "users/alice/links/l1", BankConsentID: bankConsent}
		c, err := a.svc.CreateConversation(ctx, g, app.CreateInput{BankID: "sandbox", IdempotencyKey: "key-00000001", RequestHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		c, err = a.svc.Handover(ctx, g, c.ConversationKey, app.ControllerBankAgent, "")
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, func() bool { return agentMessages(t, db, c.ID) == 1 }, 10*time.Second) // Anna's greeting

		holder, other := a, b
		if b.opened.Load() > 0 {
			holder, other = b, a
		}
		if holder.open.Load() != 1 || other.opened.Load() != 0 {
			t.Fatalf("streams: holder %d open, the other opened %d; want exactly one reader", holder.open.Load(), other.opened.Load())
		}

		holder.stop()
		for i := range 3 {
			if _, err := sb.SendSupportMessage(ctx, &adapterv1.SendSupportMessageRequest{
				BankConsentId: bankConsent, CaseId: c.CaseID, Text: "still there?", ClientMessageId: "client-msg-" + string(rune('a'+i)) + "0000",
			}); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Eventually(t, func() bool { return agentMessages(t, db, c.ID) == 4 }, 10*time.Second)
		if other.open.Load() != 1 {
			t.Errorf("the other replica's open streams = %d, want it reading now", other.open.Load())
		}
		time.Sleep(100 * time.Millisecond)
		if n := agentMessages(t, db, c.ID); n != 4 {
			t.Errorf("agent messages = %d, want 4: each event once", n)
		}
	})
}

// leaseCursor is the sandbox's stored cursor.
func leaseCursor(t *testing.T, db *storage.DB) string {
	t.Helper()
	var c string
	if err := db.QueryRowContext(t.Context(), `SELECT event_cursor FROM bank_event_leases WHERE bank_id = 'sandbox'`).Scan(&c); err != nil {
		return ""
	}
	return c
}

// linkSandbox gives alice a consent at the sandbox for support and fraud
// alerts, and returns its id.
func linkSandbox(t *testing.T, sb *sandbox.Bank) string {
	t.Helper()
	ch, err := sb.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference: "u-alice", LoginHint: "alice", IdempotencyKey: "key-00000001",
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_SUPPORT, commonv1.Scope_SCOPE_FRAUD_ALERTS},
		ValidUntil: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sb.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: ch.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "key-00000002"})
	if err != nil {
		t.Fatal(err)
	}
	return v.GetBankConsentId()
}
