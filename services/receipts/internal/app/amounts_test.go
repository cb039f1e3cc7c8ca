package app_test

import (
	"testing"

	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// TestCheckAmounts names the field whose amount breaks the sums, by the
// path a caller sees; exact, whatever the amounts.
func TestCheckAmounts(t *testing.T) {
	t.Parallel()
	item := func(q int32, cents int64) app.LineItem {
		return app.LineItem{Title: "x", Quantity: q, UnitPrice: eur(cents)}
	}
	base := func() app.Content {
		return app.Content{
			MerchantName: "Shop",
			LineItems:    []app.LineItem{item(2, 12_50), item(1, 29_99)},
			Summary:      app.Summary{Subtotal: ptr(eur(54_99)), ShippingCost: ptr(eur(5_00)), TotalCost: eur(59_99)},
			PurchaseTime: now,
		}
	}
	tests := []struct {
		name  string
		edit  func(c *app.Content)
		field string // "" when it adds up
		rule  string
	}{
		{"adds up", func(*app.Content) {}, "", ""},
		{"with tax and an adjustment", func(c *app.Content) {
			c.Summary.TotalTax = ptr(eur(3_00))
			c.Adjustments = []app.Adjustment{{Name: "Member", Amount: eur(2_00)}}
			c.Summary.TotalCost = eur(60_99)
		}, "", ""},
		{"no subtotal: the items stand in", func(c *app.Content) { c.Summary.Subtotal = nil }, "", ""},
		{"no line items: the subtotal alone", func(c *app.Content) { c.LineItems = nil }, "", ""},
		{"nothing to add up to the total", func(c *app.Content) { c.LineItems, c.Summary.Subtotal = nil, nil }, "receipt.summary.total_cost", "receipt.total_adds_up"},
		{"total off by a nano", func(c *app.Content) { c.Summary.TotalCost.Nanos++ }, "receipt.summary.total_cost", "receipt.total_adds_up"},
		{"subtotal is not the items", func(c *app.Content) {
			c.Summary.Subtotal = ptr(eur(50_00))
			c.Summary.TotalCost = eur(55_00)
		}, "receipt.summary.subtotal", "receipt.subtotal_adds_up"},
		{"a negative shipping cost", func(c *app.Content) { c.Summary.ShippingCost = ptr(eur(-5_00)) }, "receipt.summary.shipping_cost", "receipt.amount_not_negative"},
		{"a negative unit price", func(c *app.Content) { c.LineItems[1].UnitPrice = eur(-29_99) }, "receipt.line_items[1].unit_price", "receipt.amount_not_negative"},
		{"a negative adjustment", func(c *app.Content) {
			c.Adjustments = []app.Adjustment{{Name: "Fee", Amount: eur(-1_00)}}
		}, "receipt.adjustments[0].amount", "receipt.amount_not_negative"},
		{"adjustments above the total", func(c *app.Content) {
			c.Adjustments = []app.Adjustment{{Name: "Voucher", Amount: eur(70_00)}}
		}, "receipt.summary.total_cost", "receipt.total_adds_up"},
		{"an amount too large to add", func(c *app.Content) {
			c.Summary.ShippingCost = &app.Money{CurrencyCode: "EUR", Units: 9_000_000_000_000_000_000}
		}, "receipt.summary.shipping_cost", "receipt.amount_max"},
		{"another currency", func(c *app.Content) { c.Summary.ShippingCost.CurrencyCode = "USD" }, "receipt.summary.shipping_cost", "receipt.single_currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := base()
			tt.edit(&c)
			vs := app.CheckAmounts(c, "receipt.")
			switch {
			case tt.field == "" && len(vs) > 0:
				t.Fatalf("violations %+v, want none", vs)
			case tt.field == "":
				return
			case len(vs) != 1 || vs[0].Field != tt.field || vs[0].Reason != tt.rule:
				t.Fatalf("violations %+v, want one on %s (%s)", vs, tt.field, tt.rule)
			}
		})
	}

	t.Run("large sums are exact", func(t *testing.T) {
		// 100,000 × 999,999,999,999.999999999 would overflow int64 nanos
		// many times over; the sum is checked exactly all the same.
		price := app.Money{CurrencyCode: "EUR", Units: app.MaxUnits - 1, Nanos: 999_999_999}
		c := app.Content{LineItems: []app.LineItem{{Title: "x", Quantity: 100_000, UnitPrice: price}},
			Summary: app.Summary{TotalCost: app.Money{CurrencyCode: "EUR", Units: 1}}}
		if vs := app.CheckAmounts(c, "receipt."); len(vs) != 1 || vs[0].Field != "receipt.summary.total_cost" {
			t.Errorf("violations %+v", vs)
		}
	})
}

// TestMerchantNames compares merchant names as matching and the merchant
// filter do.
func TestMerchantNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b  string
		agree bool
	}{
		{"Nordic Outdoor Online", "NORDIC OUTDOOR", true},
		{"Nordic Outdoor", "nordic-outdoor.com", true},
		{"Corner Grocery GmbH", "CORNER GROCERY", true},
		{"Corner Grocery", "Corner Grocery Store Berlin", true},
		{"Café Lumière", "CAFE LUMIERE", true},
		{"Müller & Söhne AG", "MULLER AND SOHNE", true},
		{"Nordic Outdoor", "Nordic Bakery", false},
		{"Blue Door Coffee", "Red Door Coffee", false},
		{"Online Shop GmbH", "Online Shop GmbH", false}, // nothing left to compare
	}
	for _, tt := range tests {
		if got := app.MerchantsAgree(tt.a, tt.b); got != tt.agree {
			t.Errorf("MerchantsAgree(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.agree)
		}
	}
	if app.MerchantKey("Nordic Outdoor Online") != app.MerchantKey("NORDIC OUTDOOR") || app.MerchantKey("Corner Grocery GmbH") != "corner grocery" {
		t.Errorf("keys: %q %q %q", app.MerchantKey("Nordic Outdoor Online"), app.MerchantKey("NORDIC OUTDOOR"), app.MerchantKey("Corner Grocery GmbH"))
	}
}
