package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/gen/apierr"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

// BenchmarkShipmentFanout opens one watch stream per user on the one
// shipping instance of the dev stack — 10,000 users by default
// (BANKBRIDGE_BENCH_WATCHERS), each with a VALID link covering shipping
// and the same parcel registered — then has the carrier push one event for
// that parcel through the signed endpoint, and reports how long each
// stream took to receive it (p50, p99, from just before the push), how
// many received it, and the shipping process's resident memory with every
// stream open. Run it with `make bench`.
func BenchmarkShipmentFanout(b *testing.B) {
	watchers := 10_000
	if v, err := strconv.Atoi(os.Getenv("BANKBRIDGE_BENCH_WATCHERS")); err == nil && v > 0 {
		watchers = v
	}
	number := sandbox.TrackingFailedThenDelivered
	const workers, conns = 16, 32
	// Every user links the sandbox bank and registers the parcel.
	tokens := make([]string, watchers)
	var wg sync.WaitGroup
	var next int
	var mu sync.Mutex
	pool := make([]*grpc.ClientConn, conns)
	for i := range pool {
		pool[i] = dial(b, shared.stack.Addr("shipping"))
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= watchers {
					return
				}
				user := fmt.Sprintf("fan%05d", i)
				tok := devToken(b, user)
				linkFor(b, tok, user, "alice", []string{"SCOPE_ACCOUNTS", "SCOPE_SHIPPING"}, []string{"PURPOSE_ORDER_TRACKING"})
				c := shippingv1.NewShippingServiceClient(pool[i%conns])
				if _, err := c.CreateShipment(grpcCtx(tok, "ORDER_TRACKING"), &shippingv1.CreateShipmentRequest{
					Parent: "users/" + user, Shipment: &shippingv1.Shipment{TrackingNumber: number}, IdempotencyKey: randomKey(),
				}); err != nil {
					b.Error(err)
					return
				}
				tokens[i] = tok
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	for b.Loop() {
		// Open every stream, and wait until each is subscribed (headers).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var sent time.Time
		start := make(chan struct{})
		got := make(chan time.Duration, watchers)
		var opened sync.WaitGroup
		var refusedMu sync.Mutex
		refused := map[string]int{} // streams the server ended before the event, by status
		var retried atomic.Int64
		// At most a few hundred opens in flight, as users come and go: the
		// streams are concurrent, not their openings.
		opening := make(chan struct{}, 256)
		for i, tok := range tokens {
			c := shippingv1.NewShippingServiceClient(pool[i%conns])
			opened.Add(1)
			opening <- struct{}{}
			go func() {
				// Open as a client does: a refusal that says to retry
				// (UNAVAILABLE, with RetryInfo) is retried after its delay.
				var st grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]
				for attempt := 1; ; attempt++ {
					var err error
					st, err = c.WatchShipments(grpcCtx(tok, "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/" + fmt.Sprintf("fan%05d", i)})
					if err == nil {
						// Header hides a refusal (nil, nil); Recv reports it.
						var md metadata.MD
						if md, err = st.Header(); err == nil && md == nil {
							_, err = st.Recv()
						}
					}
					if err == nil {
						break
					}
					if status.Code(err) != codes.Unavailable || attempt == 5 {
						<-opening
						opened.Done()
						refusedMu.Lock()
						refused[status.Code(err).String()+" "+apierr.ReasonString(apierr.Reason(err))]++
						refusedMu.Unlock()
						return
					}
					retried.Add(1)
					time.Sleep(cmp.Or(apierr.RetryDelay(err), 100*time.Millisecond))
				}
				<-opening
				opened.Done()
				<-start
				for {
					resp, err := st.Recv()
					if err != nil {
						refusedMu.Lock()
						refused[status.Code(err).String()+" "+apierr.ReasonString(apierr.Reason(err))]++
						refusedMu.Unlock()
						return
					}
					if resp.GetEvent().GetType() == shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED {
						got <- time.Since(sent)
						return
					}
				}
			}()
		}
		opened.Wait()
		rss := residentMiB(b, "shipping")

		sent = time.Now()
		close(start)
		pushTrackingEvent(b, number, "SHIPMENT_STATUS_IN_TRANSIT")
		var latencies []time.Duration
		timeout := time.After(60 * time.Second)
	collect:
		for len(latencies) < watchers {
			select {
			case d := <-got:
				latencies = append(latencies, d)
			case <-timeout:
				break collect
			}
		}
		cancel()
		_ = ctx
		refusedMu.Lock()
		for why, n := range refused {
			if !strings.HasPrefix(why, "Canceled") {
				b.Logf("%d streams ended before the event: %s", n, why)
				for _, line := range logErrors(shared.logs.String(), 5) {
					b.Log(line)
				}
			}
		}
		refusedMu.Unlock()
		if len(latencies) == 0 {
			b.Fatal("no stream received the event")
		}
		slices.Sort(latencies)
		b.ReportMetric(float64(watchers), "streams")
		b.ReportMetric(float64(len(latencies)), "delivered")
		b.ReportMetric(float64(retried.Load()), "open-retries")
		b.ReportMetric(float64(latencies[len(latencies)*50/100].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(rss, "rss-MiB")
	}
}

// pushTrackingEvent pushes one event for number as the sandbox carrier, signed
// with its secret.
func pushTrackingEvent(tb testing.TB, number, status string) {
	tb.Helper()
	secret, err := os.ReadFile(filepath.Join(shared.stack.DataDir(), "sandbox-carrier-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`{"events":[{"event_id":"bench-%d","tracking_number":%q,"checkpoint":{"time":%q,"status":%q}}]}`,
		time.Now().UnixNano(), number, time.Now().UTC().Format(time.RFC3339Nano), status))
	req, _ := http.NewRequest(http.MethodPost, shared.stack.GatewayURL+"/v1/carriers/sandbox/trackingEvents", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := stdwebhook.SetHeaders(req.Header, []string{strings.TrimSpace(string(secret))}, randomKey(), time.Now(), body); err != nil {
		tb.Fatal(err)
	}
	resp, err := shared.http.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("carrier push: %d", resp.StatusCode)
	}
}

// residentMiB is the resident memory of the stack's process name (VmRSS).
func residentMiB(tb testing.TB, name string) float64 {
	tb.Helper()
	pid := shared.stack.PID(name)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// logErrors are up to n distinct messages of the stack's ERROR log lines.
func logErrors(logs string, n int) []string {
	seen := map[string]bool{}
	var out []string
	for line := range strings.SplitSeq(logs, "\n") {
		if !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		msg := line
		if i := strings.Index(line, `"msg":`); i >= 0 {
			msg = line[i:min(len(line), i+200)]
		}
		if !seen[msg] && len(out) < n {
			seen[msg] = true
			out = append(out, line[:min(len(line), 600)])
		}
	}
	return out
}
