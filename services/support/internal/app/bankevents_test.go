package app_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
)

// restartableBank is a sandbox bank's event stream that can be replaced by
// another sandbox's, as when the sandbox restarts and its events (kept in
// memory) are gone.
type restartableBank struct {
	mu   sync.Mutex
	bank *sandbox.Bank
}

func (b *restartableBank) current() *sandbox.Bank {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bank
}

func (b *restartableBank) restart(sb *sandbox.Bank) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bank = sb
}

func (b *restartableBank) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := b.current().Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(b)
	return info, nil
}

func (b *restartableBank) CheckHealth(ctx context.Context, req *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return b.current().CheckHealth(ctx, req)
}

func (b *restartableBank) StreamEvents(ctx context.Context, req *adapterv1.StreamEventsRequest, send func(*adapterv1.StreamEventsResponse) error) error {
	return b.current().StreamEvents(ctx, req, send)
}

// streamBreaker cuts the bank's event streams, over the registry's gRPC
// connection, while down: the open one ends and new ones fail as a bank
// that does not answer does.
type streamBreaker struct {
	down atomic.Bool
	open atomic.Int32

	mu      sync.Mutex
	cancels []context.CancelFunc
}

func (b *streamBreaker) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method != adapterv1.BankAdapterService_StreamEvents_FullMethodName {
		return streamer(ctx, desc, cc, method, opts...)
	}
	if b.down.Load() {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank's event source is down")
	}
	ctx, cancel := context.WithCancel(ctx)
	b.mu.Lock()
	b.cancels = append(b.cancels, cancel)
	b.mu.Unlock()
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	b.open.Add(1)
	context.AfterFunc(ctx, func() { b.open.Add(-1) })
	return s, nil
}

// cut ends the open stream and fails the next ones until mend.
func (b *streamBreaker) cut(t *testing.T) {
	t.Helper()
	b.down.Store(true)
	b.mu.Lock()
	for _, cancel := range b.cancels {
		cancel()
	}
	b.cancels = nil
	b.mu.Unlock()
	testkit.Eventually(t, func() bool { return b.open.Load() == 0 }, 5*time.Second)
}

func (b *streamBreaker) mend() { b.down.Store(false) }

// streamEnv is one support replica reading the sandbox's event stream,
// through a registry whose stream the test can cut, with alice's fraud
// alerts covered by her consent at the sandbox.
type streamEnv struct {
	db      *storage.DB
	bank    *restartableBank
	breaker *streamBreaker
	consent *consenttest.Consent
}

func startStreamEnv(t *testing.T, db *storage.DB) *streamEnv {
	t.Helper()
	ctx := t.Context()
	if err := events.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, db, events.NewOutbox(db))
	if err != nil {
		t.Fatal(err)
	}
	e := &streamEnv{db: db, bank: &restartableBank{}, breaker: &streamBreaker{}, consent: consenttest.New()}
	e.restartBank(t)
	// The stream is cut on purpose: no breaker may stand in for the bank.
	reg, err := runtime.NewRegistry([]runtime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox",
		Breaker: runtime.Breaker{MinRequests: 1 << 20, OpenFor: time.Millisecond}}},
		runtime.WithInProcess("sandbox", e.bank), runtime.WithDialOptions(grpc.WithChainStreamInterceptor(e.breaker.intercept)),
		runtime.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	svc, err := app.New(app.Config{
		Store: st, Consent: e.consent, Banks: reg, Balances: noBalances{}, Pages: pagetoken.Random(),
		Holder: "stream-test", LeaseTTL: 3 * time.Second, ReconnectBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.RunBank(rctx, "sandbox") }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(t, func() bool { return e.breaker.open.Load() == 1 }, 10*time.Second)
	return e
}

// restartBank starts a new sandbox in the old one's place, with none of
// its events, where alice links again for fraud alerts.
func (e *streamEnv) restartBank(t *testing.T) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	e.consent.AddBankLink("alice", "sandbox", linkSandbox(t, sb), commonv1.Scope_SCOPE_FRAUD_ALERTS)
	e.bank.restart(sb)
}

// raise has the sandbox raise n fraud alerts for alice.
func (e *streamEnv) raise(t *testing.T, n int) {
	t.Helper()
	for range n {
		if ids, err := e.bank.current().TriggerFraudAlert("alice"); err != nil || len(ids) != 1 {
			t.Fatalf("TriggerFraudAlert = %v, %v", ids, err)
		}
	}
}

// alerts counts alice's stored alerts.
func (e *streamEnv) alerts(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM fraud_alerts WHERE user_id = 'alice'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// requireAlerts waits until want alerts are stored, then checks that no
// more come: each event applied once.
func (e *streamEnv) requireAlerts(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.alerts(t) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.alerts(t); got != want {
		t.Fatalf("%d alerts stored, want %d: the bank's events while the stream was down are lost", got, want)
	}
}

// TestBankEventsWhileTheStreamIsDown: the bank's events sent while its
// stream is down are applied after the reconnect, each once, whether the
// consumer had stored a cursor or not yet, and when the bank lost its
// history (the sandbox restarted) and refuses the stored cursor: the
// stream never resumes "from now on".
func TestBankEventsWhileTheStreamIsDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, e *streamEnv)
	}{
		{"before the first event", func(t *testing.T, e *streamEnv) {
			if c := leaseCursor(t, e.db); c != "" {
				t.Fatalf("cursor %q before any event", c)
			}
			e.breaker.cut(t)
			e.raise(t, 3)
			e.breaker.mend()
			e.requireAlerts(t, 3)
		}},
		{"after some events", func(t *testing.T, e *streamEnv) {
			e.raise(t, 2)
			e.requireAlerts(t, 2)
			e.breaker.cut(t)
			e.raise(t, 3)
			e.breaker.mend()
			e.requireAlerts(t, 5)
		}},
		{"the bank lost its history", func(t *testing.T, e *streamEnv) {
			e.raise(t, 1)
			e.requireAlerts(t, 1)
			e.breaker.cut(t)
			e.restartBank(t)
			e.raise(t, 2)
			e.breaker.mend()
			e.requireAlerts(t, 3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *storage.DB) { tt.run(t, startStreamEnv(t, db)) })
		})
	}
}
