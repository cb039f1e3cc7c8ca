package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// slow is 3 calls per 10 s, bursts of 3: a bucket stays empty for the
// length of a test once used up.
var slow = Rate{Count: 3, Per: 10 * time.Second, Burst: 3}

// slowConfig limits every user to slow, and clients hardly.
func slowConfig(redisURL string) Config {
	c := Defaults()
	for _, b := range Buckets() {
		*c.rate(b) = Rate{Count: 1000, Per: time.Second, Burst: 1000}
		if b.Scope == ScopeUser {
			*c.rate(b) = slow
		}
	}
	c.RedisURL = redisURL
	return c
}

// redisEnv is one test's view of Redis: a key prefix of its own, its
// metrics and logs.
type redisEnv struct {
	url, prefix string
	reader      *sdkmetric.ManualReader
	meters      *sdkmetric.MeterProvider
	logs        *testkit.SyncBuffer
}

func newRedisEnv(t *testing.T, url string) *redisEnv {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	e := &redisEnv{url: url, prefix: "bbtest-" + hex.EncodeToString(raw[:]) + ":", reader: sdkmetric.NewManualReader(), logs: &testkit.SyncBuffer{}}
	e.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	return e
}

// limiter is one replica of service "svc".
func (e *redisEnv) limiter(t *testing.T, redisURL string) *Limiter {
	t.Helper()
	l, err := New(slowConfig(redisURL), Options{
		Service: "svc", KeyPrefix: e.prefix, Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), UserKey: pseudonym,
		MeterProvider: e.meters,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// failures sums bankbridge.ratelimit.redis.failures.
func (e *redisEnv) failures(t *testing.T) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "bankbridge.ratelimit.redis.failures" {
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// pseudonym stands for the server kit's keyed hash of a user id.
func pseudonym(user string) string { return "p-" + user }

func allow(l *Limiter, user string) *Refusal {
	return l.Allow(context.Background(), ClassRead, "app", user)
}

func TestRedisSharesTheLimitsAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := testkit.RealRedis(t)
	e := newRedisEnv(t, url)
	a, b := e.limiter(t, url), e.limiter(t, url)
	for i, l := range []*Limiter{a, a, b} {
		if r := allow(l, "alice"); r != nil {
			t.Fatalf("call %d: %+v", i, r)
		}
	}
	for name, l := range map[string]*Limiter{"a": a, "b": b} {
		r := allow(l, "alice")
		if r == nil || r.Scope != ScopeUser {
			t.Fatalf("replica %s, alice's fourth call in all: %+v, want her refusal", name, r)
		}
		if r.RetryAfter <= 0 || r.RetryAfter > slow.Per/time.Duration(slow.Count) {
			t.Errorf("retry after %s, want (0, %s]", r.RetryAfter, slow.Per/time.Duration(slow.Count))
		}
	}
	if r := allow(b, "bob"); r != nil {
		t.Errorf("bob: %+v", r)
	}
	if e.failures(t) != 0 {
		t.Errorf("%d Redis failures", e.failures(t))
	}

	// The keys: redis_rate's, under the prefix and the service, naming the
	// user by UserKey only, and they expire (Redis keeps active callers
	// only).
	rdb := redisClient(t, url)
	keys, err := rdb.Keys(context.Background(), "rate:"+e.prefix+"*").Result()
	slices.Sort(keys)
	want := []string{"rate:" + e.prefix + "svc:read:client:app", "rate:" + e.prefix + "svc:read:user:p-alice", "rate:" + e.prefix + "svc:read:user:p-bob"}
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("keys = %q, %v; want %q", keys, err, want)
	}
	for _, key := range keys {
		if ttl, err := rdb.PTTL(context.Background(), key).Result(); err != nil || ttl <= 0 || ttl > slow.Per {
			t.Errorf("PTTL %s = %s, %v; want an expiry within the window", key, ttl, err)
		}
	}
	t.Run("Redis without a UserKey", func(t *testing.T) {
		if _, err := New(slowConfig(url), Options{Service: "svc"}); err == nil {
			t.Error("New with Redis and no UserKey, which would put user ids in Redis, succeeded")
		}
	})
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestRedisUnreachableFailsOpenToMemory(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "redis://" + lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	e := newRedisEnv(t, closed)
	l := e.limiter(t, closed)

	// Fail open: no call is refused because Redis is out...
	for i := range slow.Burst {
		if r := allow(l, "alice"); r != nil {
			t.Fatalf("call %d with Redis out: %+v", i, r)
		}
	}
	// ...but the replica still enforces the limits on its own.
	if r := allow(l, "alice"); r == nil || r.Scope != ScopeUser || r.RetryAfter <= 0 {
		t.Errorf("alice over her limit with Redis out: %+v, want her refusal from memory", r)
	}
	if got := e.failures(t); got < int64(slow.Burst)+1 {
		t.Errorf("bankbridge.ratelimit.redis.failures = %d, want every decision counted", got)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "fail open"); n != 1 || !strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("want one warning, however many decisions; logs:\n%s", logs)
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	t.Parallel()
	url := testkit.RealRedis(t)
	p := startProxy(t, strings.TrimPrefix(url, "redis://"))
	e := newRedisEnv(t, url)
	viaProxy, direct := e.limiter(t, "redis://"+p.addr), e.limiter(t, url)

	// Through Redis: carol's bucket is shared, and used up.
	for i, l := range []*Limiter{viaProxy, viaProxy, direct} {
		if r := allow(l, "carol"); r != nil {
			t.Fatalf("call %d: %+v", i, r)
		}
	}
	p.stop()
	// Redis out: the replica decides alone, from a fresh bucket of its own.
	if r := allow(viaProxy, "carol"); r != nil {
		t.Fatalf("with Redis out: %+v, want the call allowed (fail open)", r)
	}
	if e.failures(t) == 0 {
		t.Error("the failure was not counted")
	}
	p.start(t)
	// A second later it asks Redis again, whose bucket for carol is still
	// empty: the limit is shared again.
	time.Sleep(retryRedisAfter + 100*time.Millisecond)
	if r := allow(viaProxy, "carol"); r == nil {
		t.Error("after Redis came back: allowed, want Redis's refusal (carol's shared bucket is empty)")
	}
	if !strings.Contains(e.logs.String(), "Redis answers again") {
		t.Errorf("no log of the recovery:\n%s", e.logs.String())
	}
}

// proxy is a TCP relay to Redis that a test can cut and restore.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	lis          net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{addr: "127.0.0.1:0", target: target}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.lis, p.addr = lis, lis.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// stop closes the listener and every relayed connection.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		_ = p.lis.Close()
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
