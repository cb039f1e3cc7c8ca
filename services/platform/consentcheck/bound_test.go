package consentcheck_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
)

// TestTheDecisionCacheStaysWithinItsBound caches decisions for twenty times
// as many users as the cache may hold: it keeps its bound, the users seen
// last, and the memory of about its bound. Not parallel: it measures the
// heap.
func TestTheDecisionCacheStaysWithinItsBound(t *testing.T) {
	const (
		bound = 1_000
		users = 20 * bound
		// perUser is a generous ceiling for one user's two decisions
		// (accounts and balances) with the cache's bookkeeping; the users'
		// decisions unbounded would take about 20 times the total.
		perUser = 2 << 10
	)
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc

	c := consentcheck.New(nil, consentcheck.Options{CacheTTL: time.Hour, CacheUsers: bound})
	expire := time.Now().Add(24 * time.Hour)
	user := func(i int) string { return fmt.Sprintf("user-%06d", i) }
	for i := range users {
		for _, scope := range []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES} {
			consentcheck.CacheAllowed(c, user(i), scope, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, expire)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m)
	held := int64(m.HeapAlloc) - int64(before)

	if got := consentcheck.CachedUsers(c); got != bound {
		t.Errorf("decisions of %d users cached after %d users, want the bound %d", got, users, bound)
	}
	// With no client to ask, only the cache can answer.
	need := access.Need{Scope: commonv1.Scope_SCOPE_BALANCES, BankID: "sandbox"}
	if _, err := c.Decide(t.Context(), user(users-1), need, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION); err != nil {
		t.Errorf("the last user's decision is not cached: %v", err)
	}
	t.Logf("decisions of %d users hold %d KiB", consentcheck.CachedUsers(c), held>>10)
	if held > bound*perUser {
		t.Errorf("the cache holds %d KiB, want at most %d KiB for %d users", held>>10, bound*perUser>>10, bound)
	}
	runtime.KeepAlive(c)
}
