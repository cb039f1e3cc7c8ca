package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestParseAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want accountRef
		ok   bool
	}{
		{"users/alice/accounts/sandbox~acc-1", accountRef{"alice", "sandbox", "acc-1"}, true},
		{"users/alice/accounts/sandbox~acc~x/balance", accountRef{"alice", "sandbox", "acc~x"}, true},
		{"users/alice/accounts/acc-1", accountRef{}, false},
		{"users/alice/accounts/~acc", accountRef{}, false},
		{"users/alice/links/l1", accountRef{}, false},
	}
	for _, tt := range tests {
		got, err := parseAccount(tt.name)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseAccount(%q) = %+v, %v", tt.name, got, err)
		}
		if !tt.ok && !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
			t.Errorf("parseAccount(%q) error %v, want NOT_FOUND", tt.name, err)
		}
	}
}

func TestPaginate(t *testing.T) {
	t.Parallel()
	items := []int{1, 2, 3, 4, 5}
	page, next, err := paginate(items, 2, "", "q")
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first page = %v, %q, %v", page, next, err)
	}
	var all []int
	all = append(all, page...)
	for next != "" {
		page, next, err = paginate(items, 2, next, "q")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
	}
	if len(all) != 5 {
		t.Errorf("paged through %v, want every item once", all)
	}
	_, tok, _ := paginate(items, 2, "", "q")
	for _, bad := range []struct{ token, query string }{{tok, "other query"}, {"garbage!", "q"}} {
		if _, _, err := paginate(items, 0, bad.token, bad.query); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID) {
			t.Errorf("token %q for %q: err %v, want PAGE_TOKEN_INVALID", bad.token, bad.query, err)
		}
	}
}

func TestCursorBelongsToItsAccount(t *testing.T) {
	t.Parallel()
	c := encodeCursor("users/alice/accounts/sandbox~a", "bank-cursor-7")
	if got, err := decodeCursor("users/alice/accounts/sandbox~a", c); err != nil || got != "bank-cursor-7" {
		t.Fatalf("decode = %q, %v", got, err)
	}
	if _, err := decodeCursor("users/alice/accounts/sandbox~b", c); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID) {
		t.Errorf("another account's cursor: %v, want CURSOR_INVALID", err)
	}
}

func TestLastKnownBalanceIsStaleAndExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 12, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := newLastKnown(24*time.Hour, clock)
	b := &balancev1.AccountBalance{Name: "users/alice/accounts/sandbox~a/balance", AsOf: timestamppb.New(now),
		Balances: []*balancev1.Balance{{Amount: &commonv1.Money{CurrencyCode: "EUR", Units: 10}}}}
	l.put(b)
	now = now.Add(3 * time.Hour)
	got, ok := l.get(b.GetName())
	if !ok || !got.GetStale() || !got.GetAsOf().AsTime().Equal(now.Add(-3*time.Hour)) {
		t.Fatalf("3 h later: %v, %v; want stale with as_of at the read", got, ok)
	}
	if b.GetStale() {
		t.Error("marking the copy stale changed the stored balance")
	}
	now = now.Add(22 * time.Hour)
	if _, ok := l.get(b.GetName()); ok {
		t.Error("a balance 25 h old was served")
	}
}
