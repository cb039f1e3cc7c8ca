package events_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// TestOutboxLagIsExposed: bankbridge_events_outbox_lag_seconds, on the
// process's real Prometheus exposition, is 0 while nothing waits, the age
// of the oldest unpublished row while rows wait (not the newest's, not a
// published one's), and 0 again once they are published — on SQLite and
// PostgreSQL.
func TestOutboxLagIsExposed(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)
		tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "events-test", LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		o := events.NewOutbox(db)
		start := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
		var now atomic.Pointer[time.Time]
		set := func(t time.Time) { now.Store(&t) }
		set(start)
		events.SetOutboxClock(o, func() time.Time { return *now.Load() })
		if err := o.ObserveLag(tel.MeterProvider); err != nil {
			t.Fatal(err)
		}
		lag := func() string {
			rec := httptest.NewRecorder()
			tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			for line := range strings.Lines(rec.Body.String()) {
				name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
				if ok && name == "bankbridge_events_outbox_lag_seconds" {
					_, v, _ := strings.Cut(rest, "} ")
					return v
				}
			}
			return "absent"
		}

		if got := lag(); got != "0" {
			t.Fatalf("empty outbox: lag %s, want 0", got)
		}
		add(t, db, o, event("alice", "consent.link.expiring", 1)) // at start
		set(start.Add(30 * time.Second))
		add(t, db, o, event("bob", "consent.link.expiring", 2)) // 30 s later
		set(start.Add(90 * time.Second))
		if got := lag(); got != "90" {
			t.Errorf("two rows waiting, the oldest for 90 s: lag %s, want 90", got)
		}
		if _, err := db.ExecContext(t.Context(), `UPDATE events_outbox SET publish_time = $1 WHERE user_id = 'alice'`, storage.Micros(start.Add(90*time.Second))); err != nil {
			t.Fatal(err)
		}
		if got := lag(); got != "60" {
			t.Errorf("alice's row published, bob's waiting for 60 s: lag %s, want 60", got)
		}
		if _, err := db.ExecContext(t.Context(), `UPDATE events_outbox SET publish_time = $1`, storage.Micros(start.Add(90*time.Second))); err != nil {
			t.Fatal(err)
		}
		if got := lag(); got != "0" {
			t.Errorf("every row published: lag %s, want 0", got)
		}
	})
}
