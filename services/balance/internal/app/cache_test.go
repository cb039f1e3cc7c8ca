package app

import (
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
	l := newLastKnown(24*time.Hour, func() time.Time { return now })
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
	c := newAccountCache(time.Minute, time.Hour, func() time.Time { return now })
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
