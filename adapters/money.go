package adapters

import (
	"errors"
	"fmt"
	"math"
	"strings"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// minorUnitExceptions are the ISO 4217 currencies whose minor unit is not
// two decimals (ISO 4217 list one, the "minor unit" column); every other
// code of three letters has two. Codes without a minor unit (precious
// metals, SDR, testing and fund codes: "N.A." in the list) are refused.
var minorUnitExceptions = map[string]int{
	// No decimals.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// Three decimals.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Four decimals.
	"CLF": 4, "UYW": 4,
	// No minor unit at all: not money an account holds.
	"XAG": -1, "XAU": -1, "XBA": -1, "XBB": -1, "XBC": -1, "XBD": -1, "XDR": -1,
	"XPD": -1, "XPT": -1, "XSU": -1, "XTS": -1, "XUA": -1, "XXX": -1,
}

// MinorUnits returns how many decimals currency (an ISO 4217 code such as
// "EUR") has: 2 for most, 0 for JPY, 3 for KWD; false for a code that is
// not three capital letters or has no minor unit.
func MinorUnits(currency string) (int, bool) {
	if len(currency) != 3 || strings.IndexFunc(currency, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return 0, false
	}
	n, ok := minorUnitExceptions[currency]
	if !ok {
		return 2, true
	}
	return n, n >= 0
}

// ParseMoney reads a bank's decimal amount, such as "-86.40" or "1250",
// into Money exactly (no float on the way): an optional sign, digits, and
// optionally a point and at most the currency's minor unit of decimals
// (2 for EUR, 0 for JPY, 3 for KWD). Zeros beyond the minor unit are
// accepted ("12.500" EUR is 12.50); any other digit there is refused
// rather than rounded, as is anything else: thousands separators, a
// decimal comma, exponents, spaces, a missing digit on either side of
// the point, an amount beyond int64 units. Convert a comma-decimal or
// minor-unit integer API first ("8640" cents is "86.40"). Errors name the
// rule broken, never the amount.
//
//	m, err := adapters.ParseMoney("EUR", "-86.40") // units -86, nanos -400000000
func ParseMoney(currency, decimal string) (*commonv1.Money, error) {
	exp, ok := MinorUnits(currency)
	if !ok {
		return nil, fmt.Errorf("parse money: currency %q is not an ISO 4217 code with a minor unit", currency)
	}
	s := decimal
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, hasPoint := strings.Cut(s, ".")
	switch {
	case whole == "":
		return nil, errors.New("parse money: the amount needs a digit before any decimal point")
	case !allDigits(whole) || !allDigits(frac):
		return nil, errors.New("parse money: the amount may hold only a sign, digits and one decimal point")
	case hasPoint && frac == "":
		return nil, errors.New("parse money: the amount needs a digit after its decimal point")
	}
	significant := strings.TrimRight(frac, "0")
	if len(significant) > exp {
		return nil, fmt.Errorf("parse money: %s has %d decimals, the amount more", currency, exp)
	}
	var units int64
	for _, d := range strings.TrimLeft(whole, "0") {
		if units > (math.MaxInt64-int64(d-'0'))/10 {
			return nil, errors.New("parse money: the amount is too large")
		}
		units = units*10 + int64(d-'0')
	}
	var nanos int32
	for i := range 9 {
		nanos *= 10
		if i < len(significant) {
			nanos += int32(significant[i] - '0')
		}
	}
	if neg {
		units, nanos = -units, -nanos
	}
	return &commonv1.Money{CurrencyCode: currency, Units: units, Nanos: nanos}, nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
