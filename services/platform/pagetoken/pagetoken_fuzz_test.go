package pagetoken

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The fuzz targets' key, clock and list. The tests live inside the package
// so that FuzzDecodeSigned can sign bodies as only a key holder can.
var (
	fuzzSecret = []byte("0123456789abcdef0123456789abcdef")
	fuzzNow    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	fuzzList   = List{
		Method:  "bankbridge.balance.v1.BalanceService/ListTransactions",
		Parent:  "users/alice/accounts/sandbox~a",
		Filters: []string{"BOOKED", "0", "0"},
	}
)

func fuzzTokens(t testing.TB) *Tokens {
	t.Helper()
	tok, err := New(fuzzSecret, WithClock(func() time.Time { return fuzzNow }))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// requirePageTokenInvalid: every refusal is what the caller is promised,
// INVALID_ARGUMENT with reason PAGE_TOKEN_INVALID.
func requirePageTokenInvalid(t *testing.T, token string, err error) {
	t.Helper()
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID) {
		t.Fatalf("Decode(%q) = %v, want PAGE_TOKEN_INVALID", token, err)
	}
}

// FuzzDecode reads any string as a page token. Decode must not panic, must
// refuse with PAGE_TOKEN_INVALID, and must accept only a token this
// process minted: the seeds are real tokens, and the fuzzer's mutations of
// them (a byte changed, cut, doubled) are forgeries. Only the tokens minted
// here, recomputed in every run, may verify.
func FuzzDecode(f *testing.F) {
	tok := fuzzTokens(f)
	minted := map[string]Position{}
	for _, p := range []Position{
		{Offset: 25},
		{Offset: 1},
		{Time: time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC), ID: "rcpt_01J8ZK", Seq: 42},
		{Time: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: "tx-9"},
		{Seq: 7},
	} {
		token := tok.Encode(fuzzList, p)
		minted[token] = p
		f.Add(token)
	}
	f.Add("")
	f.Add("not a token")
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, sha256.Size)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"e":9999999999,"o":5}`)))
	f.Fuzz(func(t *testing.T, token string) {
		p, ok, err := tok.Decode(fuzzList, token)
		if token == "" {
			if err != nil || ok {
				t.Fatalf("the empty token = %v, %v; want the first page", ok, err)
			}
			return
		}
		want, wasMinted := minted[token]
		switch {
		case err != nil:
			requirePageTokenInvalid(t, token, err)
			if wasMinted {
				t.Fatalf("a token minted here was refused: %v", err)
			}
		case !ok:
			t.Fatalf("Decode(%q): no error, no position", token)
		case !wasMinted:
			t.Fatalf("Decode accepted %q, which was never minted, as %+v", token, p)
		case p != want:
			t.Fatalf("Decode(%q) = %+v, minted as %+v", token, p, want)
		}
	})
}

// FuzzRoundTrip mints a token for any position and reads it back: the
// position comes back unchanged, for the list it was minted for and for
// no other list, however close (another parent, other filters, the same
// parts joined differently).
func FuzzRoundTrip(f *testing.F) {
	f.Add(25, int64(0), "", int64(0), "users/alice/accounts/sandbox~a", "BOOKED")
	f.Add(0, int64(1772600767000008), "rcpt_01J8ZK", int64(42), "users/alice", "")
	f.Add(0, int64(-62135596800000000), "tx:9|x", int64(-1), "users/alice/accounts/sandbox~a", "BOOKED0")
	f.Fuzz(func(t *testing.T, offset int, micros int64, id string, seq int64, parent, filter string) {
		if offset < 0 || !utf8.ValidString(id) {
			// Lists never encode a negative offset, and ids are text:
			// JSON would carry an invalid byte as U+FFFD.
			t.Skip()
		}
		tok := fuzzTokens(t)
		want := Position{Offset: offset, ID: id, Seq: seq}
		if micros != 0 {
			want.Time = time.UnixMicro(micros).UTC()
		}
		token := tok.Encode(fuzzList, want)
		got, ok, err := tok.Decode(fuzzList, token)
		if err != nil || !ok || got != want {
			t.Fatalf("Decode(Encode(%+v)) = %+v, %v, %v", want, got, ok, err)
		}

		other := List{Method: fuzzList.Method, Parent: parent, Filters: append(slices.Clone(fuzzList.Filters[:2]), filter)}
		_, _, err = tok.Decode(other, token)
		if same := parent == fuzzList.Parent && filter == fuzzList.Filters[2]; same != (err == nil) {
			t.Fatalf("the token of %+v read for %+v: %v", fuzzList, other, err)
		}
		if err != nil {
			requirePageTokenInvalid(t, token, err)
		}
		// The same text split otherwise between parent and filters is
		// another list.
		moved := List{Method: fuzzList.Method, Parent: fuzzList.Parent + strings.Join(fuzzList.Filters, "") + filter}
		if _, _, err := tok.Decode(moved, token); err == nil {
			t.Fatalf("the token of %+v was accepted for %+v", fuzzList, moved)
		}

		expiredTok, err := New(fuzzSecret, WithClock(func() time.Time { return fuzzNow.Add(TTL) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := expiredTok.Decode(fuzzList, token); err == nil {
			t.Fatalf("a token an hour old was accepted")
		}
	})
}

// FuzzDecodeSigned signs any body with the key, as a bug in Encode or a
// leaked key could, and decodes it: what verifies but is no payload of
// this version is still refused with PAGE_TOKEN_INVALID, nothing panics,
// and an accepted position is one a list can use (offset not negative).
func FuzzDecodeSigned(f *testing.F) {
	f.Add([]byte(`{"v":1,"e":1772604367,"o":25}`))
	f.Add([]byte(`{"v":1,"e":1772604367,"t":1772600767000008,"i":"rcpt_01J8ZK","s":42}`))
	f.Add([]byte(`{"v":1,"e":1772604367,"o":-1}`))
	f.Add([]byte(`{"v":2,"e":1772604367}`))
	f.Add([]byte(`{"v":1,"e":1772604367,"x":1}`))
	f.Add([]byte(`{"v":1,"e":1772604367}{"v":1}`))
	f.Add([]byte(`{"v":1,"e":1772604367,"t":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok := fuzzTokens(t)
		raw := append(append([]byte(nil), body...), mac(tok.keys[0], fuzzList.digest(), body)...)
		token := base64.RawURLEncoding.EncodeToString(raw)
		p, ok, err := tok.Decode(fuzzList, token)
		if err != nil {
			requirePageTokenInvalid(t, token, err)
			return
		}
		if !ok || p.Offset < 0 {
			t.Fatalf("signed body %q decoded as %+v, %v", body, p, ok)
		}
	})
}
