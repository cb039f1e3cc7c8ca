package app

import (
	"regexp"
	"strings"
	"unicode/utf8"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// digitRun is a run of digits that could be an account or card number: six
// or more digits, spaces and dashes allowed between them ("4111 1111 1111
// 1111", "DE89-3704-0044"), starting and ending with a digit.
var digitRun = regexp.MustCompile(`[0-9](?:[ -]*[0-9]){5,}`)

// MaskDigits masks every run of six or more digits in s (spaces and
// dashes inside a run count as part of it) as "•••• " and the run's last
// four digits, so that a number a bank put in a text shows as a masked
// number does. Shorter runs (amounts, dates, codes of a few digits) stay.
func MaskDigits(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, run)
		return "•••• " + digits[len(digits)-4:]
	})
}

// Limits of the adapter protocol's FraudAlert.
const (
	maxMerchantName = 140
	maxDescription  = 500
	maxNanos        = 999_999_999
)

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// checkAlert holds a bank's alert to the adapter protocol, as input rather
// than truth, before anything of it is stored: ids the names can carry,
// an exact amount, a defined severity, an activity time, texts within
// their bounds. It returns what is wrong, naming the field only (never
// its value), or "".
func checkAlert(a *adapterv1.FraudAlert) string {
	switch {
	case a == nil:
		return "no alert"
	case !publicIDPattern.MatchString(a.GetAlertId()):
		return "alert_id"
	case !adapterIDPattern.MatchString(a.GetBankConsentId()):
		return "bank_consent_id"
	case !adapterIDPattern.MatchString(a.GetBankAccountId()):
		return "bank_account_id"
	case a.GetTransactionId() != "" && !adapterIDPattern.MatchString(a.GetTransactionId()):
		return "transaction_id"
	case a.GetBankCardId() != "" && !publicIDPattern.MatchString(a.GetBankCardId()):
		return "bank_card_id"
	case a.Amount != nil && !validMoney(a.GetAmount()):
		return "amount"
	case !utf8.ValidString(a.GetMerchantName()) || utf8.RuneCountInString(a.GetMerchantName()) > maxMerchantName:
		return "merchant_name"
	case !utf8.ValidString(a.GetDescription()) || utf8.RuneCountInString(a.GetDescription()) > maxDescription:
		return "description"
	case a.GetActivityTime() == nil || a.GetActivityTime().CheckValid() != nil:
		return "activity_time"
	}
	switch a.GetSeverity() {
	case adapterv1.FraudSeverity_FRAUD_SEVERITY_LOW, adapterv1.FraudSeverity_FRAUD_SEVERITY_MEDIUM,
		adapterv1.FraudSeverity_FRAUD_SEVERITY_HIGH:
		return ""
	}
	return "severity"
}

// validMoney tells whether m is an exact amount: an ISO 4217 code, nanos
// within a unit, units and nanos of one sign.
func validMoney(m *commonv1.Money) bool {
	n := m.GetNanos()
	return currencyPattern.MatchString(m.GetCurrencyCode()) && n >= -maxNanos && n <= maxNanos &&
		((m.GetUnits() >= 0 && n >= 0) || (m.GetUnits() <= 0 && n <= 0))
}
