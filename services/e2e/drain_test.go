package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

const erinChecking = "users/erin/accounts/sandbox~acc-erin-checking" // the sandbox answers erin after ~3s

// TestSIGTERMKeepsServingThroughTheDrain sends SIGTERM to balance while 16
// callers read balances, 4 of them erin's slow ones. The callers keep
// starting calls for a while after the signal, as callers behind a load
// balancer do until it has seen NOT_SERVING. Every call succeeds — those
// started during the drain (they need Vault's bank credential, the consent
// service and its service token) and those still in flight when the
// graceful stop begins — and balance exits within drain + grace.
//
// It restarts balance with a drain delay first, and as the other tests
// expect it afterwards. It links erin, so it must run after the tests that
// use erin as a user without a link (file order).
func TestSIGTERMKeepsServingThroughTheDrain(t *testing.T) {
	const (
		drain, grace = 2 * time.Second, 6 * time.Second
		lbReaction   = 1500 * time.Millisecond // how long callers keep coming after the signal
		callers      = 16
		slowCallers  = 4
	)
	s := shared.stack
	if err := s.StopProcess("balance"); err != nil {
		t.Fatal(err)
	}
	restarted := true
	t.Cleanup(func() {
		if restarted {
			_ = s.StopProcess("balance")
		}
		if err := s.Restart(context.Background(), "balance"); err != nil {
			t.Errorf("balance did not come back for the next tests: %v", err)
		}
	})
	if err := s.Restart(t.Context(), "balance", "--drain-delay="+drain.String(), "--shutdown-grace="+grace.String()); err != nil {
		t.Fatal(err)
	}
	alice, erin := devToken(t, "alice"), devToken(t, "erin")
	link(t, alice, "alice")
	link(t, erin, "erin")
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))

	type result struct {
		start, end time.Time
		slow       bool
		err        error
	}
	var (
		mu       sync.Mutex
		results  []result
		stopping = make(chan struct{}) // callers start no more calls
		wg       sync.WaitGroup
	)
	for i := range callers {
		slow := i < slowCallers
		ctx, name := grpcCtx(alice, "ACCOUNT_INFORMATION"), aliceChecking
		if slow {
			ctx, name = grpcCtx(erin, "ACCOUNT_INFORMATION"), erinChecking
		}
		wg.Go(func() {
			if slow { // stagger erin's calls, so one is always about to start
				time.Sleep(time.Duration(i) * 750 * time.Millisecond)
			}
			for {
				select {
				case <-stopping:
					return
				default:
				}
				r := result{start: time.Now(), slow: slow}
				_, r.err = c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: name + "/balance"})
				r.end = time.Now()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	time.Sleep(3500 * time.Millisecond) // every slow caller has a call in flight
	sent := time.Now()
	var exited atomic.Int64
	stopErr := make(chan error, 1)
	go func() {
		err := s.StopProcess("balance") // SIGTERM, then waits for the exit
		exited.Store(int64(time.Since(sent)))
		stopErr <- err
	}()
	restarted = false
	time.Sleep(lbReaction)
	close(stopping)
	wg.Wait()
	if err := <-stopErr; err != nil {
		t.Errorf("balance after SIGTERM: %v", err)
	}
	if took := time.Duration(exited.Load()); took > drain+grace+time.Second {
		t.Errorf("balance exited %s after SIGTERM, want within drain + grace (%s)", took, drain+grace)
	}

	var failed, duringDrain, acrossStop int
	gracefulStop := sent.Add(drain)
	for _, r := range results {
		if r.err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("call started %s after SIGTERM (slow %v) failed: %v", r.start.Sub(sent).Round(time.Millisecond), r.slow, r.err)
			}
		}
		if r.start.After(sent) {
			duringDrain++
		}
		if r.slow && r.start.Before(gracefulStop) && r.end.After(gracefulStop) {
			acrossStop++
		}
	}
	t.Logf("%d calls, %d started during the drain, %d slow ones in flight when the graceful stop began, %d failed",
		len(results), duringDrain, acrossStop, failed)
	if duringDrain == 0 || acrossStop == 0 {
		t.Errorf("the test did not exercise the drain: %d calls started after SIGTERM, %d in flight across the graceful stop",
			duringDrain, acrossStop)
	}
}
