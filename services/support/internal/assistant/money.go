package assistant

import (
	"strconv"
	"strings"
)

// Money is an exact amount, as bankbridge.common.v1.Money: Units and
// Nanos (billionths) have the same sign.
type Money struct {
	Currency string
	Units    int64
	Nanos    int32
}

// FormatMoney writes an amount exactly, from its units and nanos: at
// least two decimals, more only when the amount has them, and the
// currency code after it, e.g. "-3.50 EUR", "1234.005 EUR", "0.00 JPY".
func FormatMoney(m Money) string {
	neg := m.Units < 0 || m.Nanos < 0
	units, nanos := m.Units, int64(m.Nanos)
	if neg {
		units, nanos = -units, -nanos
	}
	frac := strconv.FormatInt(nanos, 10)
	frac = strings.Repeat("0", 9-len(frac)) + frac
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := strconv.FormatUint(uint64(units), 10) + "." + frac
	if neg {
		s = "-" + s
	}
	if m.Currency != "" {
		s += " " + m.Currency
	}
	return s
}
