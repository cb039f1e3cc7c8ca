package events_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// BenchmarkOutboxToStream measures the whole path an event takes: written
// in its own transaction through the outbox, relayed to JetStream (the
// embedded server), delivered to one stream subscriber. It reports
// events/s end to end, and the latency from each transaction's commit to
// the event's delivery (p50, p99). Events are spread over 1,000 users by 4
// concurrent writers.
//
//	make bench, or: go test -run '^$' -bench OutboxToStream -benchtime 20000x ./platform/events/
//
// The PostgreSQL half runs when BANKBRIDGE_TEST_POSTGRES_URL is set.
func BenchmarkOutboxToStream(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchOutboxToStream(b, storagetest.OpenSQLite(b)) })
	b.Run("postgres", func(b *testing.B) {
		url := os.Getenv(storagetest.PostgresURLEnv)
		if url == "" {
			b.Skipf("%s is not set, so the PostgreSQL half did NOT run", storagetest.PostgresURLEnv)
		}
		benchOutboxToStream(b, storagetest.OpenPostgres(b, url))
	})
}

func benchOutboxToStream(b *testing.B, db *storage.DB) {
	const users, writers = 1000, 4
	migrated(b, db)
	bus := connect(b, embedded(b, b.TempDir()).URL(), uniqueStream())
	o := events.NewOutbox(db)
	relayRun(b, events.NewRelay(o, bus, events.RelayConfig{BatchSize: 1024}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := bus.Subscribe(ctx, events.Filter{}, "")
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	committed := make([]atomic.Int64, n)
	delivered := make([]int64, n)
	received := make(chan error, 1)
	go func() {
		for got := 0; got < n; got++ {
			d, ok := <-ch
			if !ok {
				received <- fmt.Errorf("subscription closed after %d of %d", got, n)
				return
			}
			i, err := strconv.Atoi(strings.TrimPrefix(d.ID, "bench-"))
			if err != nil || i >= n || delivered[i] != 0 {
				received <- fmt.Errorf("unexpected or duplicate event %q", d.ID)
				return
			}
			delivered[i] = time.Now().UnixNano()
		}
		received <- nil
	}()

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				e := events.Event{
					ID: "bench-" + strconv.Itoa(i), Type: "bench.event.created", Source: "bench",
					User: "user-" + strconv.Itoa(i%users), Resource: "users/u/things/" + strconv.Itoa(i),
					Data: []byte(`{"n":` + strconv.Itoa(i) + `}`),
				}
				if err := db.InTx(ctx, func(tx *sql.Tx) error { return o.Add(ctx, tx, e) }); err != nil {
					b.Error(err)
					return
				}
				committed[i].Store(time.Now().UnixNano())
			}
		})
	}
	wg.Wait()
	select {
	case err := <-received:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		b.Fatal("not every event was delivered")
	}
	elapsed := time.Since(start)
	b.StopTimer()

	latencies := make([]time.Duration, n)
	for i := range n {
		// Delivered before Commit returned to the writer: count it as 0.
		latencies[i] = max(time.Duration(delivered[i]-committed[i].Load()), 0)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99_ms")
}
