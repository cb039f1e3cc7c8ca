package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

// BenchmarkGetBalance measures GetBalance against the running dev stack —
// over gRPC straight to the balance service, and over REST through the
// gateway — with 8 concurrent callers spread over 50 users, as production
// traffic is, and reports throughput and latency percentiles. Every call
// goes the whole way: token check, consent check, the access-log append
// (durable before the answer), Vault-backed credential, the sandbox bank
// over gRPC. Run it with `make bench`.
func BenchmarkGetBalance(b *testing.B) {
	const callers, users = 8, 50
	type user struct{ token, balance string }
	all := make([]user, users)
	for i := range all {
		id := fmt.Sprintf("bench%02d", i)
		tok := devToken(b, id)
		linkLogin(b, tok, id, "alice")
		all[i] = user{token: tok, balance: "users/" + id + "/accounts/sandbox~acc-alice-checking/balance"}
	}
	var turn atomic.Int64
	pick := func() user { return all[int(turn.Add(1))%users] }

	b.Run("gRPC", func(b *testing.B) {
		c := balancev1.NewBalanceServiceClient(dial(b, shared.balance))
		measure(b, callers, func() error {
			u := pick()
			_, err := c.GetBalance(grpcCtx(u.token, "ACCOUNT_INFORMATION"), &balancev1.GetBalanceRequest{Name: u.balance})
			return err
		})
	})
	b.Run("REST", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers, TLSClientConfig: shared.stack.ClientTLS()}}
		measure(b, callers, func() error {
			u := pick()
			req, _ := http.NewRequest(http.MethodGet, shared.stack.GatewayURL+"/v1/"+u.balance, nil)
			req.Header.Set("Authorization", "Bearer "+u.token)
			req.Header.Set("Bankbridge-Purpose", "ACCOUNT_INFORMATION")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &httpError{resp.StatusCode}
			}
			return nil
		})
	})
}

type httpError struct{ code int }

func (e *httpError) Error() string { return http.StatusText(e.code) }

// measure runs b.N calls spread over callers goroutines and reports req/s,
// p50 and p99 alongside Go's ns/op.
func measure(b *testing.B, callers int, call func() error) {
	latencies := make([]time.Duration, b.N)
	var next int
	var mu sync.Mutex
	var failed error
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := call(); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(latencies[len(latencies)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
