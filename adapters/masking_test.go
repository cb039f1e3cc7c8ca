package adapters_test

import (
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestMaskNumber(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, number, want, last4 string }{
		{"card", "4111 1111 1111 1111", "•••• 1111", "1111"},
		{"card with hyphens", "5500-0000-0000-0004", "•••• 0004", "0004"},
		{"IBAN", "DE89370400440532013000", "DE•• •••• 3000", "3000"},
		{"IBAN printed in lower case", "gb82 west 1234 5698 7654 32", "GB•• •••• 5432", "5432"},
		{"account number", "0532013000", "•••• 3000", "3000"},
		{"short", "123", "••••", ""},
		{"four characters", "1234", "••••", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := adapters.MaskNumber(tt.number); got != tt.want {
				t.Errorf("MaskNumber(%q) = %q; want %q", tt.number, got, tt.want)
			}
			m := adapters.MaskedAccountNumber(tt.number)
			if m.GetLast4() != tt.last4 || m.GetDisplay() != tt.want {
				t.Errorf("MaskedAccountNumber(%q) = %v; want last4 %q, display %q", tt.number, m, tt.last4, tt.want)
			}
			// What the SDK masks passes the masking rule bankbridge and the
			// kit apply.
			acc := &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{{MaskedNumber: m, DisplayName: adapters.MaskNumber(tt.number)}}}
			if leaks := adapters.FindLeaks(acc); len(leaks) != 0 {
				t.Errorf("masked %q still leaks: %v", tt.number, leaks)
			}
		})
	}
}

func TestScrubNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, text, want string }{
		{"IBAN in a transfer", "Transfer to DE89 3704 0044 0532 0130 00 for rent", "Transfer to DE•• •••• 3000 for rent"},
		{"IBAN glued", "to:DE89370400440532013000.", "to:DE•• •••• 3000."},
		{"card in groups", "Card 4111 1111 1111 1111 was declined", "Card •••• 1111 was declined"},
		{"card together", "PAN=4111111111111111", "PAN=•••• 1111"},
		{"card 4-6-5", "Amex 3782 822463 10005 ok", "Amex •••• 0005 ok"},
		{"two numbers", "from NL91ABNA0417164300 to 5500-0000-0000-0004", "from NL•• •••• 4300 to •••• 0004"},
		{"phone number stays", "Call +4111111111111111 now", "Call +4111111111111111 now"},
		{"reference failing Luhn stays", "Ref 4111111111111112", "Ref 4111111111111112"},
		{"invalid IBAN stays", "DE00370400440532013000", "DE00370400440532013000"},
		{"amount stays", "Paid 1234.56 EUR on 2026-01-01", "Paid 1234.56 EUR on 2026-01-01"},
		{"overlapping cards", "4111 1111 1111 1111 000000 0111", "•••• •••• 0111"},
		{"non-ASCII text around", "Überweisung an DE89370400440532013000 – danke", "Überweisung an DE•• •••• 3000 – danke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := adapters.ScrubNumbers(tt.text)
			if got != tt.want {
				t.Errorf("ScrubNumbers(%q) = %q; want %q", tt.text, got, tt.want)
			}
			if kind, found := adapters.UnmaskedNumber(got); found {
				t.Errorf("ScrubNumbers(%q) = %q still shows a %s", tt.text, got, kind)
			}
		})
	}
}

// FuzzScrubNumbers: whatever the text, nothing UnmaskedNumber would find
// survives the scrubber, and text without numbers comes back unchanged.
func FuzzScrubNumbers(f *testing.F) {
	for _, s := range []string{"DE89 3704 0044 0532 0130 00", "4111 1111 1111 1111 1111", "a 4111-1111-1111-1111 b", "GB82WEST12345698765432x", "4111 1111 1111 1111 000000 0111"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := adapters.ScrubNumbers(s)
		if kind, found := adapters.UnmaskedNumber(got); found {
			t.Fatalf("ScrubNumbers(%q) = %q still shows a %s", s, got, kind)
		}
		if _, found := adapters.UnmaskedNumber(s); !found && got != s {
			t.Fatalf("ScrubNumbers(%q) = %q changed text without a number", s, got)
		}
	})
}

func TestCursorCodec(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", adapters.CursorKeySize))
	oldKey := []byte(strings.Repeat("o", adapters.CursorKeySize))
	codec, err := adapters.NewCursorCodec(key, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		BankPage string `json:"p"`
		Seen     int    `json:"n"`
	}
	in := state{BankPage: "bank-page-token-7", Seen: 42}
	cursor, err := codec.Encode("acc-1", in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cursor, "bank-page") || strings.ContainsAny(cursor, "+/=") {
		t.Errorf("cursor %q is readable or not URL-safe", cursor)
	}
	var out state
	if err := codec.Decode("acc-1", cursor, &out); err != nil || out != in {
		t.Fatalf("Decode = %v, %v; want %v", out, err, in)
	}

	oldCodec, _ := adapters.NewCursorCodec(oldKey)
	fromOldKey, _ := oldCodec.Encode("acc-1", in)
	otherCodec, _ := adapters.NewCursorCodec([]byte(strings.Repeat("x", adapters.CursorKeySize)))
	fromOtherKey, _ := otherCodec.Encode("acc-1", in)
	altered := []byte(cursor)
	altered[len(altered)/2] ^= 1
	if altered[len(altered)/2] == '_' || altered[len(altered)/2] == '-' {
		altered[len(altered)/2] = 'A'
	}

	if err := codec.Decode("acc-1", fromOldKey, &out); err != nil {
		t.Errorf("cursor sealed with the old key: %v; want it opened during a rotation", err)
	}
	for name, c := range map[string]struct{ scope, cursor string }{
		"another account": {"acc-2", cursor},
		"altered":         {"acc-1", string(altered)},
		"unknown key":     {"acc-1", fromOtherKey},
		"not base64":      {"acc-1", "!!!"},
		"empty":           {"acc-1", ""},
		"truncated":       {"acc-1", cursor[:10]},
	} {
		t.Run(name, func(t *testing.T) {
			var out state
			err := codec.Decode(c.scope, c.cursor, &out)
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
		})
	}

	if _, err := adapters.NewCursorCodec([]byte("short")); err == nil {
		t.Error("NewCursorCodec accepted a 5-byte key")
	}
	if _, err := codec.Encode("acc-1", strings.Repeat("x", 1000)); err == nil {
		t.Error("Encode made a cursor longer than the protocol's 1024 characters")
	}
}
