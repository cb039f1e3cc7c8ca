package telemetry

import (
	"regexp"
	"strings"
)

// Free text (an error's text, a panic, a stack) is the one kind of value
// that leaves a process unvetted, because on-call needs the cause of an
// incident. bankbridge's own code never writes personal data into error
// text; Scrub is the second line, for the text of code we do not control
// (a driver quoting a value, a library echoing a header): whatever has the
// shape of a credential, an IBAN, an e-mail address, an amount or a long
// number (account, card, phone, a one-time code) is replaced by Redacted.
// Short numbers stay (ports, status codes, line numbers), so "dial tcp
// 127.0.0.1:5432: connection refused" reads as it did.

// scrubber replaces submatch group of every match of re (0: all of it).
type scrubber struct {
	re    *regexp.Regexp
	group int
}

// currencies are the ISO 4217 codes an amount is most often written with.
const currencies = `EUR|USD|GBP|CHF|SEK|NOK|DKK|ISK|PLN|CZK|HUF|RON|BGN|TRY|JPY|CNY|HKD|SGD|INR|AUD|NZD|CAD|MXN|BRL|ZAR`

var scrubbers = []scrubber{
	// Credentials first, whole, before their digits are taken apart: JWTs,
	// bearer and basic credentials, key=value secrets and codes, and the
	// password in a URL's user info.
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){0,2}`), 0},
	{regexp.MustCompile(`(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]+)`), 1},
	{regexp.MustCompile(`(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*([^\s,;&]+)`), 1},
	// A one-time code or PIN has digits; gRPC's "code = Unavailable" has not.
	{regexp.MustCompile(`(?i)\b(?:code|otp|pin)\s*[=:]\s*([^\s,;&]*\d[^\s,;&]*)`), 1},
	{regexp.MustCompile(`://[^/\s:@]*:([^/\s@]+)@`), 1},
	// IBANs, compact or printed in groups of four, and e-mail addresses.
	{regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`), 0},
	{regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`), 0},
	// Amounts: a number next to a currency code or sign, a number under a
	// key that names money, or a number with two decimals (12.50,
	// 1.234,56) that is not part of a dotted address or version.
	{regexp.MustCompile(`(?:\b(?:` + currencies + `)|[€$£¥])\s?-?\d[\d.,']*`), 0},
	{regexp.MustCompile(`-?\d[\d.,']*\s?(?:(?:` + currencies + `)\b|[€$£¥])`), 0},
	{regexp.MustCompile(`(?i)\b(?:amount|balance|units|nanos|total|price|cost)\s*[=:]\s*(-?[\d.,']+)`), 1},
	{regexp.MustCompile(`(?:^|[^\d.])(-?(?:\d{1,3}(?:[.,' ]\d{3})+|\d+)[.,]\d{2})(?:$|[^\d.])`), 1},
	// Long numbers: six digits or more, with or without separators.
	{regexp.MustCompile(`\d(?:[ -]?\d){5,}`), 0},
}

// Scrub returns s with everything shaped like personal data or a
// credential replaced by Redacted.
func Scrub(s string) string {
	for _, sc := range scrubbers {
		s = sc.replace(s)
	}
	return s
}

func (sc scrubber) replace(s string) string {
	matches := sc.re.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[2*sc.group], m[2*sc.group+1]
		if start < 0 {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}
