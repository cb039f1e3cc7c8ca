package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// TestTheDevStackLiftsTheRateLimits: every service of the stack gets every
// limit far above what the end-to-end tests and benchmarks send (10,000
// streams from one client, a hundred calls a second from one user), and
// flags of the table's entry still win.
func TestTheDevStackLiftsTheRateLimits(t *testing.T) {
	t.Parallel()
	r, err := limits.ParseRate(DevRateLimit)
	if err != nil || r.Burst < 20_000 || r.Count < 10_000 {
		t.Fatalf("DevRateLimit %q = %+v, %v", DevRateLimit, r, err)
	}
	s := &Stack{table: Table(), addrs: map[string]string{}}
	for _, p := range Table() {
		if p.Kind != Service {
			continue
		}
		p.Flags = []string{"--rate-limit-read-user=1/1s"}
		args := s.args(p)
		for _, b := range limits.Buckets() {
			if !slices.Contains(args, "--"+b.Flag()+"="+DevRateLimit) {
				t.Errorf("%s lacks --%s=%s", p.Name, b.Flag(), DevRateLimit)
			}
		}
		if last := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--rate-limit-read-user=1/") }); last < slices.Index(args, "--rate-limit-read-user="+DevRateLimit) {
			t.Errorf("%s: the entry's own flag comes before the stack's: %q", p.Name, args)
		}
	}
}
