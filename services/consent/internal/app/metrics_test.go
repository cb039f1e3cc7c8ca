package app_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestAccessLogBacklogIsExposed: bankbridge_accesslog_pending, on the
// process's real Prometheus exposition, counts the entries whose callers
// wait — the one in the batch held at the store, and those queued behind
// it — and is 0 once the batch is written and the queue drained.
func TestAccessLogBacklogIsExposed(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "consent-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	st := newBatchStore(t)
	st.hold, st.entered = make(chan struct{}), make(chan struct{}, 4)
	svc := newAccessService(t, st, app.Config{MeterProvider: tel.MeterProvider})
	release := sync.OnceFunc(func() { close(st.hold) })
	t.Cleanup(release) // before the service closes, whatever failed
	pending := func() string {
		rec := httptest.NewRecorder()
		tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for line := range strings.Lines(rec.Body.String()) {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
			if ok && name == "bankbridge_accesslog_pending" {
				_, v, _ := strings.Cut(rest, "} ")
				return v
			}
		}
		return "absent"
	}
	if got := pending(); got != "0" {
		t.Fatalf("idle: backlog %s, want 0", got)
	}

	done := make(chan error, 4)
	record := func(i int) {
		_, err := svc.RecordAccess(t.Context(), access("alice", i))
		done <- err
	}
	go record(1)
	<-st.entered // the first batch, alice's entry 1, waits at the store
	for i := 2; i <= 4; i++ {
		go record(i)
	}
	if !testkit.Within(10*time.Second, func() bool { return pending() == "4" }) {
		t.Fatalf("one entry being written, three queued: backlog %s, want 4", pending())
	}
	release()
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := pending(); got != "0" {
		t.Errorf("every entry appended: backlog %s, want 0", got)
	}
}
