package app

import (
	"math/big"
	"strconv"

	"github.com/bankbridge/bankbridge/gen/apierr"
)

// MaxUnits bounds every amount of a receipt, in whole units of its
// currency: far above any purchase, far below what could make a sum of a
// receipt's amounts misbehave anywhere it is read.
const MaxUnits = 1_000_000_000_000

const nanosPerUnit = 1_000_000_000

// The rule ids of the checks that run in Go, after the contract's own.
const (
	ruleNotNegative    = "receipt.amount_not_negative"
	ruleMax            = "receipt.amount_max"
	ruleSingleCurrency = "receipt.single_currency"
	ruleSubtotal       = "receipt.subtotal_adds_up"
	ruleTotal          = "receipt.total_adds_up"
)

// nanos is m in billionths of its currency, exactly.
func (m Money) nanos() *big.Int {
	n := big.NewInt(m.Units)
	n.Mul(n, big.NewInt(nanosPerUnit))
	return n.Add(n, big.NewInt(int64(m.Nanos)))
}

// Negated is -m.
func (m Money) Negated() Money {
	return Money{CurrencyCode: m.CurrencyCode, Units: -m.Units, Nanos: -m.Nanos}
}

// Equal reports the same amount in the same currency.
func (m Money) Equal(o Money) bool {
	return m.CurrencyCode == o.CurrencyCode && m.Units == o.Units && m.Nanos == o.Nanos
}

// CheckAmounts reports what keeps c's amounts from adding up, each as a
// field violation whose path starts with prefix (e.g. "receipt."): an
// amount that is negative, too large, malformed or in another currency
// than summary.total_cost; a subtotal that is not Σ quantity × unit_price
// when line items are given; a total_cost that is not subtotal +
// shipping_cost + total_tax − Σ adjustments (an unset shipping_cost or
// total_tax counts as 0; an unset subtotal as Σ of the line items, 0 when
// there are none). Arithmetic is exact. It returns nil when they add up.
func CheckAmounts(c Content, prefix string) []apierr.FieldViolation {
	var vs []apierr.FieldViolation
	currency := c.Summary.TotalCost.CurrencyCode
	check := func(path string, m Money) {
		path = prefix + path
		switch {
		case m.Nanos <= -nanosPerUnit || m.Nanos >= nanosPerUnit || (m.Units > 0 && m.Nanos < 0) || (m.Units < 0 && m.Nanos > 0):
			vs = append(vs, apierr.FieldViolation{Field: path, Description: "units and nanos must have the same sign, nanos within ±999,999,999", Reason: "money.sign_consistent"})
		case m.Units < 0 || m.Nanos < 0:
			vs = append(vs, apierr.FieldViolation{Field: path, Description: "must not be negative", Reason: ruleNotNegative})
		case m.Units >= MaxUnits:
			vs = append(vs, apierr.FieldViolation{Field: path, Description: "must be less than " + strconv.Itoa(MaxUnits) + " units", Reason: ruleMax})
		case m.CurrencyCode != currency:
			vs = append(vs, apierr.FieldViolation{Field: path, Description: "must be in the currency of summary.total_cost", Reason: ruleSingleCurrency})
		}
	}
	s := c.Summary
	check("summary.total_cost", s.TotalCost)
	for path, m := range map[string]*Money{"summary.subtotal": s.Subtotal, "summary.shipping_cost": s.ShippingCost, "summary.total_tax": s.TotalTax} {
		if m != nil {
			check(path, *m)
		}
	}
	for i, li := range c.LineItems {
		check("line_items["+strconv.Itoa(i)+"].unit_price", li.UnitPrice)
		if li.Quantity <= 0 || li.Quantity > 100_000 {
			vs = append(vs, apierr.FieldViolation{Field: prefix + "line_items[" + strconv.Itoa(i) + "].quantity", Description: "must be 1 to 100000", Reason: "int32.gt"})
		}
	}
	for i, a := range c.Adjustments {
		check("adjustments["+strconv.Itoa(i)+"].amount", a.Amount)
	}
	if len(vs) > 0 {
		// Sums of amounts that are wrong themselves say nothing more.
		sortViolations(vs)
		return vs
	}

	items := new(big.Int)
	for _, li := range c.LineItems {
		items.Add(items, new(big.Int).Mul(li.UnitPrice.nanos(), big.NewInt(int64(li.Quantity))))
	}
	subtotal := items
	if s.Subtotal != nil {
		subtotal = s.Subtotal.nanos()
		if len(c.LineItems) > 0 && subtotal.Cmp(items) != 0 {
			vs = append(vs, apierr.FieldViolation{Field: prefix + "summary.subtotal",
				Description: "must be the sum of quantity × unit_price of the line items", Reason: ruleSubtotal})
		}
	}
	want := new(big.Int).Set(subtotal)
	for _, m := range []*Money{s.ShippingCost, s.TotalTax} {
		if m != nil {
			want.Add(want, m.nanos())
		}
	}
	for _, a := range c.Adjustments {
		want.Sub(want, a.Amount.nanos())
	}
	if want.Cmp(s.TotalCost.nanos()) != 0 {
		vs = append(vs, apierr.FieldViolation{Field: prefix + "summary.total_cost",
			Description: "must be subtotal + shipping_cost + total_tax − the adjustments", Reason: ruleTotal})
	}
	return vs
}

// sortViolations orders violations by field path, so an answer does not
// depend on map order.
func sortViolations(vs []apierr.FieldViolation) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].Field < vs[j-1].Field; j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}
