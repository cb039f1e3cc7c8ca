package testkit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// recorder is a testing.TB whose Fatalf and Errorf record instead of failing the
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

func (r *recorder) Errorf(format string, args ...any) {
	r.failed.Store(true)
	r.msg = fmt.Sprintf(format, args...)
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
	if testkit.Within(30*time.Millisecond, func() bool { return false }) {
		t.Error("Within reported a condition that never held")
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
	if ri := testkit.RetryInfo(err); ri != nil {
		t.Errorf("RetryInfo = %v on an error without one", ri)
	}
	if ri := testkit.RetryInfo(apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down", apierr.WithRetryAfter(time.Second))); ri.GetRetryDelay().AsDuration() != time.Second {
		t.Errorf("RetryInfo = %v, want a delay of 1s", ri)
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

func TestGetStatus(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	if got := testkit.GetStatus(t, srv.URL); got != http.StatusTeapot {
		t.Errorf("GetStatus = %d, want 418", got)
	}
	r := &recorder{TB: t}
	if got := testkit.GetStatus(errorRecorder{r}, "http://127.0.0.1:1/"); got != 0 || !r.failed.Load() {
		t.Errorf("no server: %d, failed %v; want 0 and a failed test", got, r.failed.Load())
	}
}

// errorRecorder records Error as a failure without stopping.
type errorRecorder struct{ *recorder }

func (r errorRecorder) Error(args ...any) { r.failed.Store(true) }

func TestSandboxRegistry(t *testing.T) {
	t.Parallel()
	c, err := testkit.SandboxRegistry(t).Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
	if err != nil || info.GetBankId() != "sandbox" {
		t.Fatalf("GetAdapterInfo = %v, %v", info, err)
	}
}

func TestWithoutRandomFields(t *testing.T) {
	t.Parallel()
	line := `{"time":"2026-11-27T12:22:32.111951608Z","level":"INFO","trace_id":"4821aa","span_id":"19516000","duration_ms":48.21,"bankbridge.incident_id":"48214821","msg":"account 4821"}`
	got := testkit.WithoutRandomFields(line)
	if strings.Count(got, "4821") != 1 || strings.Contains(got, "195160") || !strings.Contains(got, `"msg":"account 4821"`) {
		t.Errorf("WithoutRandomFields(%s) = %s; want only the message's 4821 left", line, got)
	}
}

func TestSameAnswers(t *testing.T) {
	t.Parallel()
	one := wrapperspb.String("one")
	got, err := testkit.SameAnswers(t, "steady", 4, func() (*wrapperspb.StringValue, error) { return one, nil })
	if err != nil || !proto.Equal(got, one) {
		t.Errorf("SameAnswers = %v, %v; want the first answer", got, err)
	}
	refused := status.Error(codes.FailedPrecondition, "no")
	if _, err := testkit.SameAnswers(t, "refused", 4, func() (*wrapperspb.StringValue, error) { return nil, refused }); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("SameAnswers err = %v, want the first refusal", err)
	}
	var n atomic.Int32
	differ := func() (*wrapperspb.StringValue, error) {
		if n.Add(1) == 2 {
			return wrapperspb.String("other"), nil
		}
		return one, nil
	}
	if failed := run(t, func(tb testing.TB) { testkit.SameAnswers(tb, "differ", 4, differ) }); !failed {
		t.Error("SameAnswers passed when one caller got another answer")
	}
	n.Store(0)
	oneFails := func() (*wrapperspb.StringValue, error) {
		if n.Add(1) == 3 {
			return nil, refused
		}
		return one, nil
	}
	if failed := run(t, func(tb testing.TB) { testkit.SameAnswers(tb, "one fails", 4, oneFails) }); !failed {
		t.Error("SameAnswers passed when one caller got a refusal and the others an answer")
	}
}
