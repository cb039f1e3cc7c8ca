package app_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/fakes"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
)

// The benchmarks run the service's logic on each database, with the fake
// consent service and banks (in memory, so what is measured is the
// service and its database).

// databases are the benchmarks' databases: SQLite always, PostgreSQL when
// BANKBRIDGE_TEST_POSTGRES_URL names a server.
func databases(b *testing.B, run func(b *testing.B, db *storage.DB)) {
	b.Run("sqlite", func(b *testing.B) { run(b, storagetest.OpenSQLite(b)) })
	b.Run("postgres", func(b *testing.B) {
		url := os.Getenv(storagetest.PostgresURLEnv)
		if url == "" {
			b.Skipf("%s is not set", storagetest.PostgresURLEnv)
		}
		run(b, storagetest.OpenPostgres(b, url))
	})
}

func benchService(b *testing.B, db *storage.DB, consent *consenttest.Consent) (*app.Service, *store.Store) {
	b.Helper()
	if err := events.Migrate(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	st, err := store.New(context.Background(), db, events.NewOutbox(db))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := app.New(app.Config{Store: st, Consent: consent, Banks: fakes.NewBanks(), Pages: pagetoken.Random()})
	if err != nil {
		b.Fatal(err)
	}
	return svc, st
}

// BenchmarkIngest ingests receipts for 1,000 users from parallel partner
// requests, each one checked, resolved, recorded and stored with its match
// job, idempotency key and event; it reports receipts/s.
func BenchmarkIngest(b *testing.B) {
	databases(b, func(b *testing.B, db *storage.DB) {
		const users = 1000
		consent := consenttest.New(fakes.Scopes...)
		for u := range users {
			user := fmt.Sprintf("user%04d", u)
			consent.AddLink(user, "sandbox")
			consent.OptIn(user, "shop", "puid-"+user)
		}
		svc, _ := benchService(b, db, consent)
		paid := time.Now().Add(-time.Hour)
		var n atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				user := fmt.Sprintf("user%04d", i%users)
				_, err := svc.Ingest(context.Background(), app.IngestInput{
					Partner: "shop", PartnerUserID: "puid-" + user, ReceiptID: fmt.Sprintf("ORD-%d", i),
					IdempotencyKey: fmt.Sprintf("key-%08d", i), RequestHash: fmt.Sprint(i),
					Content: receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "receipts/s")
	})
}

// BenchmarkListPage reads pages of 25 of one user's 10,000 receipts, newest
// first, from wherever the previous page ended; it reports the p50 and
// p99 latency of a page in µs.
func BenchmarkListPage(b *testing.B) {
	databases(b, func(b *testing.B, db *storage.DB) {
		svc, st := benchService(b, db, consenttest.New(fakes.Scopes...))
		const total, batch = 10_000, 500
		for start := 0; start < total; start += batch {
			err := st.Tx(context.Background(), func(tx app.Tx) error {
				for i := start; i < start+batch; i++ {
					id := fmt.Sprintf("%032x", i)
					c := receipt("Nordic Outdoor Online", now.Add(-time.Duration(i)*time.Minute), 59_99, "1043")
					r := app.Receipt{User: "heavy", ID: id, ChainID: id, Version: 1, Partner: "shop", PartnerUserID: "puid-heavy",
						PartnerReceiptID: fmt.Sprintf("ORD-%d", i), Client: "chat-app", Content: c, ContentHash: "h", CreateTime: now}
					if err := tx.Insert(context.Background(), r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if db.Dialect() == storage.Postgres {
			if _, err := db.ExecContext(context.Background(), "ANALYZE receipts"); err != nil {
				b.Fatal(err)
			}
		}
		lat := make([]time.Duration, 0, b.N)
		token := ""
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			page, next, err := svc.ListReceipts(context.Background(), app.ListInput{User: "heavy", PageSize: 25, PageToken: token})
			lat = append(lat, time.Since(t0))
			if err != nil || len(page) == 0 {
				b.Fatalf("page = %d receipts, %v", len(page), err)
			}
			token = next // from the first page again after the last
		}
		b.StopTimer()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
		b.ReportMetric(pct(0.50), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	})
}
