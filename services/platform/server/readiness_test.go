package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/server"
)

// TestReadyzChecksItsProbesAtMostOnceASecond: however often /readyz is
// polled, a dependency is asked once per probe round, and its failure
// names it without its cause.
func TestReadyzChecksItsProbesAtMostOnceASecond(t *testing.T) {
	t.Parallel()
	var checks atomic.Int32
	var down atomic.Bool
	h := server.Readyz(func() bool { return true }, server.Probe{Name: "database", Check: func(context.Context) error {
		checks.Add(1)
		if down.Load() {
			return errors.New("dial tcp 10.0.0.7:5432: connection refused")
		}
		return nil
	}})
	for range 50 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("/readyz = %d, want 200", rec.Code)
		}
	}
	if n := checks.Load(); n != 1 {
		t.Errorf("50 polls within a second checked the database %d times, want once", n)
	}

	down.Store(true)
	h = server.Readyz(func() bool { return true }, server.Probe{Name: "database", Check: func(context.Context) error {
		return errors.New("dial tcp 10.0.0.7:5432: connection refused")
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if body := rec.Body.String(); rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "database") || strings.Contains(body, "10.0.0.7") {
		t.Errorf("/readyz with the database down = %d %q, want 503 naming the database and not its address", rec.Code, body)
	}
}
