// Package testkit holds the helpers bankbridge's tests share: waiting for
// a condition, asserting what a caller of an API sees (status code,
// ErrorInfo reason, field violations, retry advice, an HTTP status), a log
// sink safe for concurrent writers, a settable clock, and the sandbox bank
// behind the adapter registry. Import it from _test.go files only.
package testkit

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// pollInterval is how often Eventually and Within ask.
const pollInterval = 10 * time.Millisecond

// Eventually calls cond until it returns true, and fails the test when it
// has not within timeout.
func Eventually(t testing.TB, cond func() bool, timeout time.Duration) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("condition still false after %s", timeout)
	}
}

// Within calls cond until it returns true or timeout passes, and reports
// whether it did; for a test that says itself, with what it saw, what
// never happened.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// RequireReason fails the test unless err is a bankbridge error with the
// given reason and the status code the contract assigns to it, as a caller
// sees them. It returns the ErrorInfo metadata.
func RequireReason(t testing.TB, err error, reason commonv1.ErrorReason) map[string]string {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s (%s)", apierr.ReasonString(reason), apierr.Code(reason))
	}
	st, _ := status.FromError(err)
	if st.Code() != apierr.Code(reason) {
		t.Fatalf("code = %s (%v), want %s", st.Code(), err, apierr.Code(reason))
	}
	info := apierr.Info(err)
	if info.GetReason() != apierr.ReasonString(reason) || info.GetDomain() != apierr.Domain {
		t.Fatalf("ErrorInfo = %v (%v), want reason %s in domain %s", info, err, apierr.ReasonString(reason), apierr.Domain)
	}
	return info.GetMetadata()
}

// RequireFieldViolation fails the test unless err's google.rpc.BadRequest
// names field (a path as protovalidate reports it, e.g. "page_token" or
// "link.scopes[0]"). It returns that violation.
func RequireFieldViolation(t testing.TB, err error, field string) *errdetails.BadRequest_FieldViolation {
	t.Helper()
	vs := FieldViolations(err)
	i := slices.IndexFunc(vs, func(v *errdetails.BadRequest_FieldViolation) bool { return v.GetField() == field })
	if i < 0 {
		paths := make([]string, len(vs))
		for j, v := range vs {
			paths[j] = v.GetField()
		}
		t.Fatalf("field violations [%s] (%v), want one on %q", strings.Join(paths, ", "), err, field)
	}
	return vs[i]
}

// FieldViolations returns the field violations err carries, if any.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	st, _ := status.FromError(err)
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// RetryInfo returns the google.rpc.RetryInfo err carries, or nil.
func RetryInfo(err error) *errdetails.RetryInfo {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a log sink that a
// server writes while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets everything written so far.
func (b *SyncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// Clock is a clock a test sets; pass its Now where code takes a clock. It
// is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// GetStatus GETs url and returns the response's status code, the body
// read and closed. When there is no response it fails the test with Error,
// so it may run on another goroutine, and returns 0.
func GetStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// SandboxRegistry is the adapter SDK's registry with one bank, "sandbox",
// served in process by a fresh sandbox bank: the path a service's calls to
// a bank take, without a network. Both close with the test.
func SandboxRegistry(t testing.TB) *runtime.Registry {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	reg, err := runtime.NewRegistry([]runtime.Bank{{
		ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox",
	}}, runtime.WithInProcess("sandbox", sb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// randomLogFields are the JSON log fields whose values are random or
// clock digits (ids, timestamps, durations), which may spell a fixture's
// account number or amount by chance.
var randomLogFields = regexp.MustCompile(`"(trace_id|span_id|bankbridge\.incident_id)":"[0-9a-f]+"|"time":"[^"]+"|"(duration_ms|duration)":"?[0-9.a-zµ]+"?`)

// WithoutRandomFields returns JSON log lines without their ids, timestamps
// and durations, so a scan for personal data finds what code wrote, not
// what the clock did.
func WithoutRandomFields(logs string) string {
	return randomLogFields.ReplaceAllString(logs, "")
}

// NATSURLEnv names the NATS server (with JetStream) the event suites also
// run against. CI sets it (.ci/run starts nats-server), which makes that
// half required; locally it defaults to nats://127.0.0.1:4222, and the half
// is skipped, saying so, when nothing answers there.
const NATSURLEnv = "BANKBRIDGE_TEST_NATS_URL"

// RealNATS is the URL of the real nats-server, or skips the test (fails it
// when NATSURLEnv is set and nothing answers).
func RealNATS(t testing.TB) string {
	t.Helper()
	raw, required := os.LookupEnv(NATSURLEnv)
	if !required || raw == "" {
		raw, required = "nats://127.0.0.1:4222", false
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: not a URL", NATSURLEnv)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		if required {
			t.Fatalf("%s=%s is set but nothing answers: %v", NATSURLEnv, raw, err)
		}
		t.Skipf("no nats-server at %s, so this did NOT run against a real NATS server; "+
			"start one (nats-server -js) or set %s", raw, NATSURLEnv)
	}
	_ = c.Close()
	return raw
}
