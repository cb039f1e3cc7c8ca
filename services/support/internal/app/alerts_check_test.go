package app

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestMaskDigits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no digits", "Card payment abroad. Was it you?", "Card payment abroad. Was it you?"},
		{"empty", "", ""},
		{"a card number in groups", "Card 4111 1111 1111 1111 was used", "Card •••• 1111 was used"},
		{"a card number in one run", "Card 4111111111111234 was used", "Card •••• 1234 was used"},
		{"dashes inside", "Account 1234-5678-9012 debited", "Account •••• 9012 debited"},
		{"an IBAN's digits after its letters", "To DE89 3704 0044 0532 0130 00 today", "To DE•••• 3000 today"},
		{"exactly six digits", "Ref 123456.", "Ref •••• 3456."},
		{"five digits stay", "Code 12345 stays", "Code 12345 stays"},
		{"an amount stays", "You paid 899.00 EUR", "You paid 899.00 EUR"},
		{"a date with dots stays", "On 04.03.2031 at 10:15", "On 04.03.2031 at 10:15"},
		// The rule cannot tell an ISO date from a number in dashed groups:
		// masking one too much is the safe side.
		{"a date with dashes is masked", "On 2031-03-04", "On •••• 0304"},
		{"two runs", "From 11112222 to 33334444", "From •••• 2222 to •••• 4444"},
		{"several spaces inside", "Card 4111  1111  1111", "Card •••• 1111"},
		{"a space after a run is kept", "4111111111111111 ", "•••• 1111 "},
		{"unicode around", "Karte ••••· 98765432 gesperrt ✓", "Karte ••••· •••• 5432 gesperrt ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MaskDigits(tt.in); got != tt.want {
				t.Errorf("MaskDigits(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// validAlert is an alert as the protocol wants it.
func validAlert() *adapterv1.FraudAlert {
	return &adapterv1.FraudAlert{
		AlertId: "alert-1", BankConsentId: "cns-1", BankAccountId: "acc-1", TransactionId: "tx-1", BankCardId: "card-1",
		Amount:       &commonv1.Money{CurrencyCode: "EUR", Units: -899, Nanos: -500_000_000},
		MerchantName: "Gadget Hub", ActivityTime: timestamppb.New(time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)),
		Severity: adapterv1.FraudSeverity_FRAUD_SEVERITY_HIGH, Description: "Card payment abroad",
	}
}

func TestCheckAlert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(a *adapterv1.FraudAlert)
		want string
	}{
		{"as the protocol wants it", func(*adapterv1.FraudAlert) {}, ""},
		{"no transaction, card nor amount", func(a *adapterv1.FraudAlert) { a.TransactionId, a.BankCardId, a.Amount = "", "", nil }, ""},
		{"an alert id the names cannot carry", func(a *adapterv1.FraudAlert) { a.AlertId = "alert~1" }, "alert_id"},
		{"no alert id", func(a *adapterv1.FraudAlert) { a.AlertId = "" }, "alert_id"},
		{"a consent id with a space", func(a *adapterv1.FraudAlert) { a.BankConsentId = "cns 1" }, "bank_consent_id"},
		{"no account", func(a *adapterv1.FraudAlert) { a.BankAccountId = "" }, "bank_account_id"},
		{"an account id with a slash", func(a *adapterv1.FraudAlert) { a.BankAccountId = "acc/1" }, "bank_account_id"},
		{"a transaction id too long", func(a *adapterv1.FraudAlert) { a.TransactionId = strings.Repeat("t", 129) }, "transaction_id"},
		{"a card id the names cannot carry", func(a *adapterv1.FraudAlert) { a.BankCardId = "card~1" }, "bank_card_id"},
		{"a lowercase currency", func(a *adapterv1.FraudAlert) { a.Amount.CurrencyCode = "eur" }, "amount"},
		{"no currency", func(a *adapterv1.FraudAlert) { a.Amount.CurrencyCode = "" }, "amount"},
		{"mixed signs", func(a *adapterv1.FraudAlert) { a.Amount.Nanos = 500_000_000 }, "amount"},
		{"nanos beyond a unit", func(a *adapterv1.FraudAlert) { a.Amount.Units, a.Amount.Nanos = 0, -1_000_000_000 }, "amount"},
		{"a merchant name too long", func(a *adapterv1.FraudAlert) { a.MerchantName = strings.Repeat("m", 141) }, "merchant_name"},
		{"a description too long", func(a *adapterv1.FraudAlert) { a.Description = strings.Repeat("d", 501) }, "description"},
		{"a description not UTF-8", func(a *adapterv1.FraudAlert) { a.Description = "\xff\xfe" }, "description"},
		{"no activity time", func(a *adapterv1.FraudAlert) { a.ActivityTime = nil }, "activity_time"},
		{"an activity time out of range", func(a *adapterv1.FraudAlert) { a.ActivityTime = &timestamppb.Timestamp{Seconds: -1 << 62} }, "activity_time"},
		{"no severity", func(a *adapterv1.FraudAlert) { a.Severity = adapterv1.FraudSeverity_FRAUD_SEVERITY_UNSPECIFIED }, "severity"},
		{"a severity not defined", func(a *adapterv1.FraudAlert) { a.Severity = 42 }, "severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := proto.Clone(validAlert()).(*adapterv1.FraudAlert)
			tt.mod(a)
			if got := checkAlert(a); got != tt.want {
				t.Errorf("checkAlert = %q, want %q", got, tt.want)
			}
		})
	}
	if got := checkAlert(nil); got == "" {
		t.Error("checkAlert(nil) passed")
	}
}
