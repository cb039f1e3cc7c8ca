package pagetoken_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var (
	secret    = []byte("0123456789abcdef0123456789abcdef")
	transacts = pagetoken.List{
		Method:  "bankbridge.balance.v1.BalanceService/ListTransactions",
		Parent:  "users/alice/accounts/sandbox~a",
		Filters: []string{"BOOKED", "0", "0"},
	}
)

func newTokens(t *testing.T, key []byte, opts ...pagetoken.Option) *pagetoken.Tokens {
	t.Helper()
	tok, err := pagetoken.New(key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func requireInvalid(t *testing.T, err error) {
	t.Helper()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
	testkit.RequireFieldViolation(t, err, "page_token")
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tok := newTokens(t, secret)
	if p, ok, err := tok.Decode(transacts, ""); err != nil || ok || p != (pagetoken.Position{}) {
		t.Fatalf("empty token = %+v, %v, %v; want the first page", p, ok, err)
	}
	want := pagetoken.Position{Offset: 7, Time: time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC), ID: "lnk-1", Seq: 42}
	got, ok, err := tok.Decode(transacts, tok.Encode(transacts, want))
	if err != nil || !ok || got != want {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v, %v", want, got, ok, err)
	}
}

// TestRefuses is the promise of the package: no token but a live one,
// minted for this very list, is accepted.
func TestRefuses(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	tok := newTokens(t, secret, pagetoken.WithClock(clk.Now))
	good := tok.Encode(transacts, pagetoken.Position{Offset: 25})

	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	// The payload is JSON before the 32-byte MAC; rewrite the offset as a
	// caller skipping ahead would.
	forged := strings.Replace(string(raw), `"o":25`, `"o":99`, 1)
	if forged == string(raw) {
		t.Fatalf("token payload %q holds no offset to forge", raw)
	}
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 1

	tests := []struct {
		name  string
		list  pagetoken.List
		token string
	}{
		{"forged offset", transacts, base64.RawURLEncoding.EncodeToString([]byte(forged))},
		{"one character changed", transacts, string(flipped)},
		{"made up", transacts, "bogus"},
		{"not base64", transacts, "!!!"},
		{"signature only", transacts, base64.RawURLEncoding.EncodeToString(raw[len(raw)-32:])},
		{"another key's", transacts, newTokens(t, []byte(strings.Repeat("k", 32))).Encode(transacts, pagetoken.Position{Offset: 25})},
		{"another method", pagetoken.List{Method: "bankbridge.balance.v1.BalanceService/ListAccounts", Parent: transacts.Parent, Filters: transacts.Filters}, good},
		{"another parent (another user's list)", pagetoken.List{Method: transacts.Method, Parent: "users/bob/accounts/sandbox~a", Filters: transacts.Filters}, good},
		{"other filters", pagetoken.List{Method: transacts.Method, Parent: transacts.Parent, Filters: []string{"PENDING", "0", "0"}}, good},
		{"filters shifted between fields", pagetoken.List{Method: transacts.Method, Parent: transacts.Parent, Filters: []string{"BOOKED0", "", "0"}}, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := tok.Decode(tt.list, tt.token)
			requireInvalid(t, err)
		})
	}

	t.Run("expired", func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
		tok := newTokens(t, secret, pagetoken.WithClock(clk.Now))
		token := tok.Encode(transacts, pagetoken.Position{Offset: 25})
		clk.Add(pagetoken.TTL - time.Second)
		if _, _, err := tok.Decode(transacts, token); err != nil {
			t.Fatalf("a token a second before its end: %v", err)
		}
		clk.Add(time.Second)
		_, _, err := tok.Decode(transacts, token)
		requireInvalid(t, err)
		if v := testkit.RequireFieldViolation(t, err, "page_token"); !strings.Contains(v.GetDescription(), "expired") {
			t.Errorf("violation %q does not say the token expired", v.GetDescription())
		}
	})
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := secret, []byte(strings.Repeat("n", 32))
	old := newTokens(t, oldKey)
	rotating := newTokens(t, newKey, pagetoken.WithPreviousSecrets(oldKey))
	if _, _, err := rotating.Decode(transacts, old.Encode(transacts, pagetoken.Position{Offset: 1})); err != nil {
		t.Errorf("a token of the previous key during rotation: %v", err)
	}
	_, _, err := old.Decode(transacts, rotating.Encode(transacts, pagetoken.Position{Offset: 1}))
	requireInvalid(t, err) // the new key signs
}

func TestPaginate(t *testing.T) {
	t.Parallel()
	tok := newTokens(t, secret)
	items := make([]int, 53)
	for i := range items {
		items[i] = i
	}
	var got []int
	token, pages := "", 0
	for {
		page, next, err := pagetoken.Paginate(tok, transacts, items, 0, token)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if next == "" {
			break
		}
		token = next
	}
	if pages != 3 || len(got) != 53 || got[52] != 52 {
		t.Errorf("default page size: %d pages, %d items; want 3 pages of up to 25, every item once", pages, len(got))
	}
	many := make([]int, 250)
	page, next, err := pagetoken.Paginate(tok, transacts, many, 1000, "")
	if err != nil || len(page) != pagetoken.MaxPageSize || next == "" {
		t.Errorf("page_size 1000: %d items, next %q, %v; want at most %d", len(page), next, err, pagetoken.MaxPageSize)
	}
	// A list that shrank under a token serves an empty last page.
	_, next, _ = pagetoken.Paginate(tok, transacts, items, 50, "")
	if page, next, err := pagetoken.Paginate(tok, transacts, items[:10], 50, next); err != nil || len(page) != 0 || next != "" {
		t.Errorf("after shrinking: %v, %q, %v", page, next, err)
	}
	if _, _, err := pagetoken.Paginate(tok, transacts, items, 5, "bogus"); err == nil {
		t.Error("a made-up token was served")
	}
}

func TestReadPage(t *testing.T) {
	t.Parallel()
	tok := newTokens(t, secret)
	seqs := make([]int64, 7) // newest first: 7, 6, ..., 1
	for i := range seqs {
		seqs[i] = int64(len(seqs) - i)
	}
	read := func(after *pagetoken.Position, limit int) ([]int64, error) {
		var out []int64
		for _, s := range seqs {
			if (after == nil || s < after.Seq) && len(out) < limit {
				out = append(out, s)
			}
		}
		return out, nil
	}
	key := func(s int64) pagetoken.Position { return pagetoken.Position{Seq: s} }
	var got []int64
	token, pages := "", 0
	for {
		page, next, err := pagetoken.ReadPage(tok, transacts, 3, token, read, key)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if token = next; token == "" {
			break
		}
	}
	if pages != 3 || len(got) != 7 || got[0] != 7 || got[6] != 1 {
		t.Errorf("%d pages of %v, want 3 pages of 7..1", pages, got)
	}
	// Exactly a page's worth: no empty page after it.
	seqs = seqs[:3]
	if _, next, err := pagetoken.ReadPage(tok, transacts, 3, "", read, key); err != nil || next != "" {
		t.Errorf("a full last page gave next %q, %v", next, err)
	}
	_, _, err := pagetoken.ReadPage(tok, transacts, 3, "bogus", read, key)
	requireInvalid(t, err)
}

func TestSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{-1: 25, 0: 25, 1: 1, 100: 100, 101: 100} {
		if got := pagetoken.Size(in); got != want {
			t.Errorf("Size(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestFromKeys(t *testing.T) {
	t.Parallel()
	tok, err := pagetoken.FromKeys(string(secret) + "," + strings.Repeat("o", 32))
	if err != nil {
		t.Fatal(err)
	}
	// Same key, same tokens: what replicas rely on.
	if _, _, err := newTokens(t, secret).Decode(transacts, tok.Encode(transacts, pagetoken.Position{Offset: 3})); err != nil {
		t.Errorf("a replica with the same key refused the token: %v", err)
	}
	// The previous key still verifies while a rotation settles.
	old, err := pagetoken.FromKeys(strings.Repeat("o", 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tok.Decode(transacts, old.Encode(transacts, pagetoken.Position{Offset: 3})); err != nil {
		t.Errorf("a token of the previous key was refused: %v", err)
	}
	for _, keys := range []string{"short", string(secret) + ",short"} {
		if _, err := pagetoken.FromKeys(keys); err == nil {
			t.Errorf("FromKeys(%q) accepted a key under 32 bytes", keys)
		}
	}
}
