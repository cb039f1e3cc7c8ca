package testkit

import (
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// RedisURLEnv names the Redis the rate-limit suites also run against. CI
// sets it (.ci/run starts redis-server), which makes that half required;
// locally it defaults to redis://127.0.0.1:6379, and the half is skipped,
// saying so, when nothing answers there.
const RedisURLEnv = "BANKBRIDGE_TEST_REDIS_URL"

// RealRedis is the URL of the real Redis, or skips the test (fails it when
// RedisURLEnv is set and nothing answers). Tests share it: each keeps to a
// key prefix of its own.
func RealRedis(t testing.TB) string {
	t.Helper()
	raw, required := os.LookupEnv(RedisURLEnv)
	if !required || raw == "" {
		raw, required = "redis://127.0.0.1:6379", false
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: not a URL", RedisURLEnv)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		if required {
			t.Fatalf("%s=%s is set but nothing answers: %v", RedisURLEnv, raw, err)
		}
		t.Skipf("no Redis at %s, so this did NOT run against a real Redis; "+
			"start one (redis-server) or set %s", raw, RedisURLEnv)
	}
	_ = c.Close()
	return raw
}
