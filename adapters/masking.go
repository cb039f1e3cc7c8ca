package adapters

import (
	"strings"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// maskRune stands for each hidden character of a masked number.
const maskRune = "•"

// MaskNumber returns the display form of an account number, card number or
// IBAN that shows only what bankbridge may show: the last four characters,
// and an IBAN's country code. Spaces and hyphens in number are ignored.
//
//	adapters.MaskNumber("4111 1111 1111 1111")    // "•••• 1111"
//	adapters.MaskNumber("DE89370400440532013000") // "DE•• •••• 3000"
//	adapters.MaskNumber("123")                    // "••••": too short to show any of it
//
// The result passes the conformance kit's and bankbridge's masking rule
// ([FindLeaks]) whatever number is given.
func MaskNumber(number string) string {
	chars := numberChars(number)
	if len(chars) <= 4 {
		return strings.Repeat(maskRune, 4)
	}
	last4 := string(chars[len(chars)-4:])
	if isIBAN(chars) {
		return string(chars[:2]) + strings.Repeat(maskRune, 2) + " " + strings.Repeat(maskRune, 4) + " " + last4
	}
	return strings.Repeat(maskRune, 4) + " " + last4
}

// MaskedAccountNumber returns number as the protocol's
// MaskedAccountNumber: its last four characters, upper case, and
// [MaskNumber]'s display. A number of four characters or fewer cannot be
// shown in part: last4 is then empty, which the protocol refuses, so give
// the bank's longer number.
func MaskedAccountNumber(number string) *commonv1.MaskedAccountNumber {
	chars := numberChars(number)
	m := &commonv1.MaskedAccountNumber{Display: MaskNumber(number)}
	if len(chars) > 4 {
		m.Last4 = string(chars[len(chars)-4:])
	}
	return m
}

// numberChars is number's letters (in upper case) and digits.
func numberChars(number string) []rune {
	var chars []rune
	for _, r := range number {
		if isAlnum(r) {
			chars = append(chars, upper(r))
		}
	}
	return chars
}

// isIBAN reports whether chars (upper case letters and digits) are one
// valid IBAN.
func isIBAN(chars []rune) bool {
	if len(chars) < 4 || isDigit(chars[0]) || isDigit(chars[1]) {
		return false
	}
	n, ok := ibanLengths[string(chars[:2])]
	return ok && n == len(chars) && ibanValid(chars)
}

// ScrubNumbers returns text with every full IBAN and card number in it
// masked as [MaskNumber] masks them, found as [UnmaskedNumber] finds them:
// an IBAN in any case with single spaces between its characters and a
// valid mod-97 check; a card number of 13 to 19 digits passing the Luhn
// check, together or in the groups cards are printed in. Use it on free
// text from the bank before it goes into a response (a transaction's
// description, a support agent's message), where refusing the whole
// answer would cost the customer more than the number:
//
//	desc := adapters.ScrubNumbers(tx.RemittanceInfo) // "Transfer to DE•• •••• 3000"
//
// It is safe for production: text without such numbers comes back
// unchanged, and UnmaskedNumber finds nothing in the result.
func ScrubNumbers(text string) string {
	// A masked number keeps its last four digits, and those can begin
	// another number with the digits after them ("4111 1111 1111 1111
	// 000000 0111" holds two overlapping cards), so mask until nothing is
	// left. Each round turns at least 13 digits into 4, so it ends.
	for {
		scrubbed := replaceSpans(replaceSpans(text, findIBANs), findCardNumbers)
		if scrubbed == text {
			return text
		}
		text = scrubbed
	}
}

// replaceSpans masks what find finds in text.
func replaceSpans(text string, find func([]rune) []span) string {
	rs := []rune(text)
	spans := find(rs)
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		b.WriteString(string(rs[at:sp.start]))
		b.WriteString(MaskNumber(string(rs[sp.start:sp.end])))
		at = sp.end
	}
	b.WriteString(string(rs[at:]))
	return b.String()
}
