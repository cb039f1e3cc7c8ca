package e2e

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

// BenchmarkGetBalance measures alice's GetBalance against the running dev
// stack — over gRPC straight to the balance service, and over REST through
// the gateway — with 8 concurrent callers, and reports throughput and
// latency percentiles. Every call goes the whole way: token check, consent
// check, audit append, Vault-backed credential, the sandbox bank over gRPC.
// Run it with `make bench`.
func BenchmarkGetBalance(b *testing.B) {
	alice := devToken(b, "alice")
	link(b, alice, "alice")
	const callers = 8

	b.Run("gRPC", func(b *testing.B) {
		conn := dial(b, shared.balance)
		c := balancev1.NewBalanceServiceClient(conn)
		ctx := grpcCtx(alice, "ACCOUNT_INFORMATION")
		req := &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"}
		measure(b, callers, func() error {
			_, err := c.GetBalance(ctx, req)
			return err
		})
	})
	b.Run("REST", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
		url := shared.stack.GatewayURL + "/v1/" + aliceChecking + "/balance"
		measure(b, callers, func() error {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+alice)
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
