package testkit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// recorder is a testing.TB whose Fatalf records instead of stopping the
// real test, so the helpers' failures can be checked.
type recorder struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed.Store(true)
	r.msg = fmt.Sprintf(format, args...)
	panic(r) // Fatalf does not return
}

// run calls f with a recorder and reports whether f failed it.
func run(t *testing.T, f func(tb testing.TB)) (failed bool) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failed = r.failed.Load()
	}()
	f(r)
	return false
}

func TestEventually(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	testkit.Eventually(t, func() bool { return n.Add(1) >= 3 }, time.Second)
	if failed := run(t, func(tb testing.TB) { testkit.Eventually(tb, func() bool { return false }, 30*time.Millisecond) }); !failed {
		t.Error("Eventually passed on a condition that never held")
	}
}

func TestRequireReason(t *testing.T) {
	t.Parallel()
	err := apierr.New(commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "bad token",
		apierr.WithMetadata("k", "v"),
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "page_token", Description: "bad", Reason: "page_token.invalid"}))
	if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID); md["k"] != "v" {
		t.Errorf("metadata = %v", md)
	}
	if v := testkit.RequireFieldViolation(t, err, "page_token"); v.GetReason() != "page_token.invalid" {
		t.Errorf("violation = %v", v)
	}
	tests := []struct {
		name string
		f    func(tb testing.TB)
	}{
		{"no error", func(tb testing.TB) { testkit.RequireReason(tb, nil, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) }},
		{"another reason", func(tb testing.TB) { testkit.RequireReason(tb, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID) }},
		{"a plain error", func(tb testing.TB) {
			testkit.RequireReason(tb, fmt.Errorf("x"), commonv1.ErrorReason_ERROR_REASON_INTERNAL)
		}},
		{"another field", func(tb testing.TB) { testkit.RequireFieldViolation(tb, err, "page_size") }},
	}
	for _, tt := range tests {
		if !run(t, tt.f) {
			t.Errorf("%s: passed, want a failure", tt.name)
		}
	}
}

func TestSyncBuffer(t *testing.T) {
	t.Parallel()
	var b testkit.SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Errorf("wrote %d bytes, want 800", got)
	}
	b.Reset()
	if b.String() != "" {
		t.Error("Reset kept the contents")
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := testkit.NewClock(start)
	c.Add(time.Hour)
	if !c.Now().Equal(start.Add(time.Hour)) {
		t.Errorf("after Add: %s", c.Now())
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("after Set: %s", c.Now())
	}
}
