package limits

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// small is a config whose every bucket is 2 calls a second, bursts of 3.
func small() Config {
	c := Defaults()
	for _, b := range Buckets() {
		*c.rate(b) = Rate{Count: 2, Per: time.Second, Burst: 3}
	}
	return c
}

func newMemoryLimiter(t *testing.T, cfg Config, clock *testkit.Clock, maxKeys int) *Limiter {
	t.Helper()
	l, err := New(cfg, Options{Service: "test", Now: clock.Now, MaxKeys: maxKeys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// take calls Allow n times and returns how many were allowed and the
// last refusal.
func take(l *Limiter, n int, class Class, client, user string) (allowed int, last *Refusal) {
	for range n {
		if r := l.Allow(context.Background(), class, client, user); r != nil {
			last = r
		} else {
			allowed++
		}
	}
	return allowed, last
}

func TestMemoryBucket(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(epoch)
	cfg := small()
	cfg.ReadClient = Rate{Count: 100, Per: time.Second, Burst: 100}
	cfg.WriteClient = cfg.ReadClient
	l := newMemoryLimiter(t, cfg, clock, 0)

	allowed, refusal := take(l, 5, ClassRead, "app", "alice")
	if allowed != 3 || refusal == nil {
		t.Fatalf("5 calls at once: %d allowed, refusal %+v; want the burst of 3", allowed, refusal)
	}
	if refusal.Scope != ScopeUser || refusal.Class != ClassRead || refusal.RetryAfter != 500*time.Millisecond {
		t.Errorf("refusal = %+v, want alice's read bucket, retry after 500ms (2 a second)", refusal)
	}
	// A refused call takes nothing: after exactly the delay, one more.
	clock.Add(500 * time.Millisecond)
	if r := l.Allow(context.Background(), ClassRead, "app", "alice"); r != nil {
		t.Errorf("after the retry delay: %+v", r)
	}
	if r := l.Allow(context.Background(), ClassRead, "app", "alice"); r == nil {
		t.Error("a second call after one refill was allowed")
	}
	// Others are counted apart: another user, another class.
	if n, _ := take(l, 3, ClassRead, "app", "bob"); n != 3 {
		t.Errorf("bob, whose bucket is full: %d of 3 allowed", n)
	}
	if n, _ := take(l, 3, ClassWrite, "app", "alice"); n != 3 {
		t.Errorf("alice's writes, counted apart from her reads: %d of 3 allowed", n)
	}
}

func TestClientLimitCountsEveryUser(t *testing.T) {
	t.Parallel()
	cfg := small()
	cfg.StreamUser = Rate{Count: 100, Per: time.Second, Burst: 100}
	l := newMemoryLimiter(t, cfg, testkit.NewClock(epoch), 0)
	for i := range 3 {
		if r := l.Allow(context.Background(), ClassStream, "app", fmt.Sprint("user", i)); r != nil {
			t.Fatalf("stream %d: %+v", i, r)
		}
	}
	r := l.Allow(context.Background(), ClassStream, "app", "user9")
	if r == nil || r.Scope != ScopeClient {
		t.Fatalf("a fourth user's stream: %+v, want the client's refusal", r)
	}
	// A refusal by the user's own limit does not use up the client's:
	// greedy's 3 allowed calls leave the client one.
	cfg = small()
	cfg.ReadClient = Rate{Count: 1, Per: time.Second, Burst: 4}
	other := newMemoryLimiter(t, cfg, testkit.NewClock(epoch), 0)
	take(other, 10, ClassRead, "app", "greedy")
	if n, _ := take(other, 1, ClassRead, "app", "polite"); n != 1 {
		t.Error("a greedy user's refused calls used up the client's bucket")
	}
	// Client and partner calls name no user.
	if n, r := take(other, 4, ClassPartner, "shop", ""); n != 3 || r.Scope != ScopeClient {
		t.Errorf("partner pushes: %d allowed, refusal %+v", n, r)
	}
}

func TestRefusalErr(t *testing.T) {
	t.Parallel()
	r := &Refusal{Bucket: Bucket{ClassRead, ScopeUser}, Rate: Rate{Count: 20, Per: time.Minute, Burst: 40}, RetryAfter: 1500 * time.Millisecond}
	err := r.Err()
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("code = %s", status.Code(err))
	}
	md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED)
	want := map[string]string{MetaPolicy: "user", MetaClass: "read", MetaQuota: "20", MetaWindowSeconds: "60"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, md[k], v)
		}
	}
	if d := apierr.RetryDelay(err); d != 1500*time.Millisecond {
		t.Errorf("RetryInfo delay = %s", d)
	}
}

func TestMemoryStaysBounded(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(epoch)
	l := newMemoryLimiter(t, small(), clock, 100)
	mem := l.store.(*memory)
	for i := range 99 {
		l.Allow(context.Background(), ClassRead, "app", strconv.Itoa(i))
	}
	if mem.size() != 100 { // 99 users and their client
		t.Fatalf("%d buckets, want 100", mem.size())
	}
	// Full, the store forgets idle callers first: once a bucket is full
	// again, forgetting it changes nothing.
	clock.Add(2 * time.Second)
	l.Allow(context.Background(), ClassRead, "app", "new")
	if got := mem.size(); got != 2 {
		t.Errorf("%d buckets after the idle ones refilled, want the new user's and the client's", got)
	}
	// Busy callers in their thousands: still bounded.
	for i := range 5000 {
		l.Allow(context.Background(), ClassRead, "app", "busy"+strconv.Itoa(i))
	}
	if got := mem.size(); got > 100 {
		t.Errorf("%d buckets, want at most 100", got)
	}
	// And every minute it forgets idle ones, full or not.
	clock.Add(2 * sweepEvery)
	l.Allow(context.Background(), ClassRead, "app", "busy1")
	if got := mem.size(); got != 2 {
		t.Errorf("%d buckets after a sweep, want 2", got)
	}
}
