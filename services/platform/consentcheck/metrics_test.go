package consentcheck_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// TestDecisionLatencyIsExposed: every decision lands in the
// bankbridge_consentcheck_duration_seconds histogram of the process's real
// Prometheus exposition, under the outcome on-call reads it by — the
// consent service's allowed and denied answers, a cached decision, and a
// consent service that cannot be reached.
func TestDecisionLatencyIsExposed(t *testing.T) {
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "consentcheck-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	fake, c := startWith(t, consentcheck.Options{CacheTTL: time.Hour, MeterProvider: tel.MeterProvider}, time.Now().AddDate(1, 0, 0), "alice")
	waitWatching(t, fake)
	waitCached(t, c, fake) // alice asked (allowed), then served from the cache
	if _, err := c.Decide(t.Context(), "mallory", need, purpose); err == nil {
		t.Fatal("mallory has no consent, yet was allowed")
	}

	// A consent service that is not there: nothing listens on the port.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	gone := consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{MeterProvider: tel.MeterProvider})
	if _, err := gone.Decide(t.Context(), "alice", need, purpose); err == nil {
		t.Fatal("decided without a consent service")
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, outcome := range []string{"allowed", "cached", "denied", "unavailable"} {
		if got := sampleValue(rec.Body.String(), "bankbridge_consentcheck_duration_seconds_count", `outcome="`+outcome+`"`); got == "" || got == "0" {
			t.Errorf("bankbridge_consentcheck_duration_seconds_count{outcome=%q} = %q, want at least 1", outcome, got)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", rec.Body.String())
	}
}

// sampleValue is the value of the first sample of metric in a Prometheus
// text exposition whose labels include label, "" when there is none.
func sampleValue(exposition, metric, label string) string {
	for line := range strings.Lines(exposition) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
		if !ok || name != metric {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if ok && strings.Contains(labels, label) {
			return value
		}
	}
	return ""
}
