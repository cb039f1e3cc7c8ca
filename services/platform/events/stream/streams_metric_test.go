package stream_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestOpenStreamsAreExposed: bankbridge_streams_open{method="WatchShipments"},
// on the process's real Prometheus exposition, counts the watches open
// now — those the hub serves and one resuming from a cursor on a
// subscription of its own — and drops as clients go.
func TestOpenStreamsAreExposed(t *testing.T) {
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "stream-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	bus := backends(t)[0].bus(t, events.StreamConfig{}).connect()
	r := newRun(t)
	other := "o" + r.id
	consent := newFakeConsent(r.user, other)
	hub := newHub(t, bus, stream.HubOptions{MeterProvider: tel.MeterProvider})
	rep := serveHub(t, bus, consent, hub)
	open := func() string {
		rec := httptest.NewRecorder()
		tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for line := range strings.Lines(rec.Body.String()) {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
			if ok && name == "bankbridge_streams_open" && strings.Contains(rest, `method="WatchShipments"`) {
				_, v, _ := strings.Cut(rest, "} ")
				return v
			}
		}
		return "absent"
	}

	_, cancelFirst := rep.watch(t, r.user, "")
	_, _ = rep.watch(t, r.user, "")
	_, _ = rep.watch(t, other, "")
	st, _ := rep.watch(t, r.user, "")
	publish(t, bus, r.shipment(1))
	// A resume reads the bus on its own, not through the hub: it counts too.
	_, _ = rep.watch(t, r.user, recv(t, st, 1)[0].GetCursor())
	// A watch is open for the client before its server-side handler has
	// counted it (the resume's had not, once under make test): wait.
	if !testkit.Within(10*time.Second, func() bool { return open() == "5" }) {
		t.Fatalf("five watches open: bankbridge_streams_open = %s, want 5", open())
	}
	cancelFirst()
	if !testkit.Within(10*time.Second, func() bool { return open() == "4" }) {
		t.Fatalf("one watch gone: bankbridge_streams_open = %s, want 4", open())
	}
}
