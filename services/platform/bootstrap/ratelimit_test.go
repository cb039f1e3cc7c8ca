package bootstrap

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// TestEveryServiceTakesTheRateLimitFlags: the limits come through the
// server kit's config, so every service has them (flag or BANKBRIDGE_*),
// and the gateway, which limits nothing, does not. It sets environment
// variables, so it does not run in parallel.
func TestEveryServiceTakesTheRateLimitFlags(t *testing.T) {
	t.Setenv("BANKBRIDGE_REDIS_URL", "redis://redis:6379/2")
	t.Setenv("BANKBRIDGE_RATE_LIMIT_PARTNER_CLIENT", "50/1m")
	spec, c := newSpec(KindService, Needs{})
	if _, err := Parse(spec, []string{"--rate-limit-read-user=3/1s:5"}); err != nil {
		t.Fatal(err)
	}
	want := limits.Defaults()
	want.ReadUser = limits.Rate{Count: 3, Per: time.Second, Burst: 5}
	want.PartnerClient = limits.Rate{Count: 50, Per: time.Minute, Burst: 50}
	want.RedisURL = "redis://redis:6379/2"
	if c.Server.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Server.Limits, want)
	}
	spec, _ = newSpec(KindService, Needs{})
	if _, err := Parse(spec, []string{"--rate-limit-write-client=5/250ms"}); err == nil || !strings.Contains(err.Error(), "rate-limit-write-client") {
		t.Errorf("a window under a second: %v", err)
	}
	spec, _ = newSpec(KindGateway, Needs{})
	if _, err := Parse(spec, []string{"--rate-limit-read-user=3/1s"}); err == nil {
		t.Error("the gateway took a rate-limit flag")
	}
}
