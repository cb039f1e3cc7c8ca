package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// batchStore is the SQLite store, counting the transactions of access log
// appends; hold, when set, keeps each one from starting until it is
// closed, and entered hears of each one that waits; fail, when set, fails
// each one.
type batchStore struct {
	*store.Store
	batches atomic.Int64
	hold    chan struct{}
	entered chan struct{}
	fail    error
}

func (s *batchStore) AppendAccess(ctx context.Context, users []string, build func(map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error)) error {
	s.batches.Add(1)
	if s.hold != nil {
		s.entered <- struct{}{}
		<-s.hold
	}
	if s.fail != nil {
		return s.fail
	}
	return s.Store.AppendAccess(ctx, users, build)
}

func newBatchStore(t *testing.T) *batchStore {
	t.Helper()
	st, err := store.New(t.Context(), storagetest.OpenSQLite(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &batchStore{Store: st}
}

func newAccessService(t *testing.T, st app.Store, cfg app.Config) *app.Service {
	t.Helper()
	svc, err := app.New(st, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func access(user string, i int) app.AccessEntry {
	return app.AccessEntry{
		User: user, ClientID: "chat-app", SubjectID: fmt.Sprintf("%032x", i),
		Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: "users/" + user + "/accounts/a1/balance",
		Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
		Outcome: app.OutcomeAllowed, TraceID: fmt.Sprintf("%032x", i+1),
	}
}

func TestRecordAccessGroupCommit(t *testing.T) {
	t.Parallel()
	st := newBatchStore(t)
	svc := newAccessService(t, st, app.Config{AccessBatchSize: 16, AccessBatchWait: 5 * time.Millisecond})
	const callers, users = 64, 5
	var g errgroup.Group
	for i := range callers {
		g.Go(func() error {
			e, err := svc.RecordAccess(t.Context(), access(fmt.Sprintf("u%d", i%users), i))
			if err == nil && (e.Sequence == 0 || e.Hash == "" || e.SubjectID == "") {
				err = fmt.Errorf("answered before it was appended: %+v", e)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// 64 appends in batches of at most 16: at least 4 transactions, and
	// far fewer than 64.
	if n := st.batches.Load(); n < 4 || n > callers/2 {
		t.Errorf("%d transactions for %d appends, want between 4 and %d", n, callers, callers/2)
	}
	total := 0
	for u := range users {
		user := fmt.Sprintf("u%d", u)
		if err := svc.VerifyChain(t.Context(), user); err != nil {
			t.Error(err)
		}
		head, err := st.AccessHead(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		total += int(head.Sequence)
	}
	if total != callers {
		t.Errorf("chains hold %d entries, want %d", total, callers)
	}
}

func TestRecordAccessLeavesOutCallersThatGaveUp(t *testing.T) {
	t.Parallel()
	st := newBatchStore(t)
	st.hold, st.entered = make(chan struct{}), make(chan struct{}, 4)
	svc := newAccessService(t, st, app.Config{})

	type result struct {
		e   app.AccessEntry
		err error
	}
	call := func(ctx context.Context, i int) chan result {
		ch := make(chan result, 1)
		go func() {
			e, err := svc.RecordAccess(ctx, access("alice", i))
			ch <- result{e, err}
		}()
		return ch
	}

	// The first batch takes A and waits at the store; A's caller gives up
	// before the batch writes anything: A is left out.
	ctxA, cancelA := context.WithCancel(t.Context())
	a := call(ctxA, 1)
	<-st.entered
	cancelA()
	// B queues behind the first batch and gives up there: it is withdrawn
	// at once, without waiting for the store.
	ctxB, cancelB := context.WithCancel(t.Context())
	b := call(ctxB, 2)
	time.Sleep(20 * time.Millisecond) // let B queue
	cancelB()
	select {
	case r := <-b:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("B: %+v, %v; want context.Canceled", r.e, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B waited for a batch it was not in")
	}
	// C queues too and stays: it is the chain's first entry.
	c := call(t.Context(), 3)
	time.Sleep(20 * time.Millisecond)
	close(st.hold)

	if r := <-a; !errors.Is(r.err, context.Canceled) {
		t.Errorf("A: %+v, %v; want context.Canceled", r.e, r.err)
	}
	r := <-c
	if r.err != nil || r.e.Sequence != 1 || r.e.PreviousHash != app.GenesisHash {
		t.Fatalf("C: %+v, %v; want the first entry of alice's chain", r.e, r.err)
	}
	chain, err := st.AccessChain(t.Context(), "alice", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 1 || chain[0].TraceID != access("alice", 3).TraceID {
		t.Errorf("alice's chain holds %d entries (%+v), want only C's", len(chain), chain)
	}
	if err := svc.VerifyChain(t.Context(), "alice"); err != nil {
		t.Error(err)
	}
}

func TestRecordAccessFailsEveryCallerOfAFailedBatch(t *testing.T) {
	t.Parallel()
	st := newBatchStore(t)
	st.fail = errors.New("disk full")
	svc := newAccessService(t, st, app.Config{AccessBatchWait: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_, err := svc.RecordAccess(t.Context(), access("bob", i))
			if err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Errorf("RecordAccess = %v, want the batch's error", err)
			}
			if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				t.Errorf("RecordAccess = %v: an internal failure, not an answer for the caller", err)
			}
		})
	}
	wg.Wait()
}

func TestRecordAccessRefusesWhatTheLogMustNotHold(t *testing.T) {
	t.Parallel()
	svc := newAccessService(t, newBatchStore(t), app.Config{})
	tests := []struct {
		name  string
		edit  func(*app.AccessEntry)
		field string
	}{
		{"a resource over 256 bytes", func(e *app.AccessEntry) { e.Resource = "users/alice/accounts/" + strings.Repeat("a", 240) }, "entry.resource"},
		{"a method over 256 bytes", func(e *app.AccessEntry) { e.Method = "/" + strings.Repeat("m", 256) }, "entry.method"},
		{"a client id over 256 bytes", func(e *app.AccessEntry) { e.ClientID = strings.Repeat("c", 257) }, "entry.client_id"},
		{"a subject id over 128 bytes", func(e *app.AccessEntry) { e.SubjectID = strings.Repeat("s", 129) }, "entry.subject_id"},
		{"a trace id that is not one", func(e *app.AccessEntry) { e.TraceID = "not-a-trace-id" }, "entry.trace_id"},
		{"no outcome", func(e *app.AccessEntry) { e.Outcome = app.OutcomeUnspecified }, "entry.outcome"},
		{"a reason on an allowed access", func(e *app.AccessEntry) { e.Reason = "CONSENT_REVOKED" }, "entry.reason"},
		{"a denial without a known reason", func(e *app.AccessEntry) {
			e.Outcome, e.Reason = app.OutcomeDenied, "IBAN DE89370400440532013000 was closed"
		}, "entry.reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := access("carol", 1)
			tt.edit(&e)
			_, err := svc.RecordAccess(t.Context(), e)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			if !strings.Contains(status.Convert(err).Message(), tt.field) {
				t.Errorf("error %q does not name %s", status.Convert(err).Message(), tt.field)
			}
		})
	}
	ok := access("carol", 2)
	ok.Resource = "users/carol/accounts/" + strings.Repeat("a", app.MaxResourceLen-len("users/carol/accounts/"))
	ok.Outcome, ok.Reason = app.OutcomeDenied, "CONSENT_REVOKED_BY_BANK"
	if _, err := svc.RecordAccess(t.Context(), ok); err != nil {
		t.Errorf("a denial with a resource of exactly %d bytes: %v", app.MaxResourceLen, err)
	}
}
