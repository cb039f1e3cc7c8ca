package telemetry

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBuildInfoMetric checks that /metrics says which build runs, as a
// dashboard reads it during a rolling upgrade.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	tel, err := Setup(t.Context(), Config{ServiceName: "balance", ServiceVersion: "v1.0.0", ServiceCommit: "a9b92367d311"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(t.Context()) })
	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	const want = `bankbridge_build_info{commit="a9b92367d311",version="v1.0.0"} 1`
	if !strings.Contains(rec.Body.String(), want+"\n") {
		t.Errorf("/metrics lacks %s:\n%s", want, rec.Body.String())
	}
}
