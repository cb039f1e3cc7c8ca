package app

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var aliceA = names.Account{User: "alice", BankID: "sandbox", BankAccountID: "a"}

func TestLastKnownBalanceIsStaleAndExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 12, 0, 0, time.UTC)
	l := newLastKnown(24*time.Hour, 10, func() time.Time { return now })
	b := AccountBalance{Account: aliceA, AsOf: now, Balances: []Balance{{Type: BalanceInterimAvailable, Amount: Money{CurrencyCode: "EUR", Units: 10}}}}
	l.put(b)
	b.Balances[0].Amount.Units = 99 // the caller's copy, changed after put

	now = now.Add(3 * time.Hour)
	got, ok := l.get(aliceA.Balance())
	if !ok || !got.Stale || !got.AsOf.Equal(now.Add(-3*time.Hour)) {
		t.Fatalf("3 h later: %+v, %v; want stale with as_of at the read", got, ok)
	}
	if got.Balances[0].Amount.Units != 10 {
		t.Error("the kept balance shares memory with the caller's")
	}
	now = now.Add(22 * time.Hour)
	if _, ok := l.get(aliceA.Balance()); ok {
		t.Error("a balance 25 h old was served")
	}
}

func TestAccountCacheIsPerLink(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	c := newAccountCache(time.Minute, time.Hour, 10, func() time.Time { return now })
	c.put("alice", "sandbox", "users/alice/links/l1", []BankAccount{{ID: "a"}})
	if _, fresh, ok := c.get("alice", "sandbox", "users/alice/links/l1"); !ok || !fresh {
		t.Fatalf("just read: fresh %v, ok %v", fresh, ok)
	}
	if _, _, ok := c.get("alice", "sandbox", "users/alice/links/l2"); ok {
		t.Error("a list read under another link was served: relinking must read the bank again")
	}
	now = now.Add(2 * time.Minute)
	if _, fresh, ok := c.get("alice", "sandbox", "users/alice/links/l1"); !ok || fresh {
		t.Errorf("2 min later: fresh %v, ok %v; want kept but not fresh", fresh, ok)
	}
	now = now.Add(time.Hour)
	if _, _, ok := c.get("alice", "sandbox", "users/alice/links/l1"); ok {
		t.Error("a list older than keep was served")
	}
}

func TestCursorBelongsToItsAccount(t *testing.T) {
	t.Parallel()
	c := encodeCursor(aliceA, "bank-cursor-7")
	if got, err := decodeCursor(aliceA, c); err != nil || got != "bank-cursor-7" {
		t.Fatalf("decode = %q, %v", got, err)
	}
	other := aliceA
	other.BankAccountID = "b"
	for _, bad := range []struct{ name, cursor string }{
		{"another account's", c},
		{"not base64", "!!"},
		{"without a bank cursor", encodeCursor(other, "x")[:4]},
	} {
		_, err := decodeCursor(other, bad.cursor)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
		testkit.RequireFieldViolation(t, err, "cursor")
	}
}

// heapAfter is the live heap, after a collection, once fill has run; fill's
// result stays reachable until then.
func heapAfter(fill func() any) uint64 {
	var m runtime.MemStats
	kept := fill()
	runtime.GC()
	runtime.ReadMemStats(&m)
	runtime.KeepAlive(kept)
	return m.HeapAlloc
}

// TestCachesStayWithinTheirBound fills each cache with far more users than
// it may hold: it keeps its bound, the newest entries, and the memory of
// about its bound. Not parallel: it measures the heap.
func TestCachesStayWithinTheirBound(t *testing.T) {
	const (
		bound = 1_000
		users = 20 * bound
		// perEntry is a generous ceiling for one entry (a balance of two
		// amounts; a list of two accounts) with the cache's own bookkeeping;
		// the users' entries unbounded would take about 20 times the total.
		perEntry = 1 << 10
	)
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	account := func(i int) names.Account {
		return names.Account{User: fmt.Sprintf("user-%06d", i), BankID: "sandbox", BankAccountID: "acc-0001"}
	}
	tests := []struct {
		name string
		fill func() (cache any, size func() int, has func(i int) bool)
	}{
		{"last known balances", func() (any, func() int, func(int) bool) {
			l := newLastKnown(24*time.Hour, bound, clock)
			for i := range users {
				l.put(AccountBalance{Account: account(i), AsOf: now, Balances: []Balance{
					{Type: BalanceInterimAvailable, Amount: Money{CurrencyCode: "EUR", Units: int64(i)}, AsOf: now},
					{Type: BalanceInterimBooked, Amount: Money{CurrencyCode: "EUR", Units: int64(i)}, AsOf: now},
				}})
			}
			return l, l.len, func(i int) bool { _, ok := l.get(account(i).Balance()); return ok }
		}},
		{"account lists", func() (any, func() int, func(int) bool) {
			c := newAccountCache(time.Minute, 24*time.Hour, bound, clock)
			for i := range users {
				a := account(i)
				c.put(a.User, a.BankID, "users/"+a.User+"/links/l1", []BankAccount{
					{ID: "acc-0001", DisplayName: "Current account", MaskedNumber: MaskedNumber{Last4: "1234", Display: "****1234"}, CurrencyCode: "EUR"},
					{ID: "acc-0002", DisplayName: "Savings account", MaskedNumber: MaskedNumber{Last4: "5678", Display: "****5678"}, CurrencyCode: "EUR"},
				})
			}
			return c, c.len, func(i int) bool {
				a := account(i)
				_, _, ok := c.get(a.User, a.BankID, "users/"+a.User+"/links/l1")
				return ok
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := heapAfter(func() any { return nil })
			var size func() int
			var has func(int) bool
			after := heapAfter(func() any {
				var cache any
				cache, size, has = tt.fill()
				return cache
			})
			if got := size(); got != bound {
				t.Errorf("%d entries after %d users, want the bound %d", got, users, bound)
			}
			if !has(users-1) || has(0) {
				t.Errorf("newest kept %v, oldest kept %v: want the newest in, the oldest out", has(users-1), has(0))
			}
			held := int64(after) - int64(before)
			t.Logf("%d entries hold %d KiB", size(), held>>10)
			if held > bound*perEntry {
				t.Errorf("the cache holds %d KiB, want at most %d KiB for %d entries", held>>10, bound*perEntry>>10, bound)
			}
		})
	}
}

func TestAPutDropsWhatHasExpired(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	l := newLastKnown(time.Hour, 100, func() time.Time { return now })
	c := newAccountCache(time.Minute, time.Hour, 100, func() time.Time { return now })
	for i := range 10 {
		a := names.Account{User: fmt.Sprintf("user-%d", i), BankID: "sandbox", BankAccountID: "a"}
		l.put(AccountBalance{Account: a, AsOf: now})
		c.put(a.User, "sandbox", "l1", nil)
	}
	now = now.Add(2 * time.Hour)
	l.put(AccountBalance{Account: aliceA, AsOf: now})
	c.put("alice", "sandbox", "l1", nil)
	if l.len() != 1 || c.len() != 1 {
		t.Errorf("after expiry and one put: %d balances, %d lists kept; want 1 each", l.len(), c.len())
	}
}
