package berlingroup

import "testing"

func TestAmountMoney(t *testing.T) {
	tests := []struct {
		in    amount
		units int64
		nanos int32
		bad   bool
	}{
		{in: amount{"EUR", "1520.35"}, units: 1520, nanos: 350_000_000},
		{in: amount{"EUR", "-3.40"}, units: -3, nanos: -400_000_000},
		{in: amount{"EUR", "-0.5"}, units: 0, nanos: -500_000_000},
		{in: amount{"JPY", "1200"}, units: 1200},
		{in: amount{"BHD", "1.005"}, units: 1, nanos: 5_000_000},
		{in: amount{"EUR", "1.0001"}, bad: true},
		{in: amount{"EUR", "1.005"}, bad: true}, // EUR has two decimals
		{in: amount{"EUR", "1.500"}, units: 1, nanos: 500_000_000},
		{in: amount{"EUR", "1e3"}, bad: true},
		{in: amount{"EUR", "+1.00"}, bad: true},
		{in: amount{"eur", "1.00"}, bad: true},
		{in: amount{"EUR", ""}, bad: true},
	}
	for _, tt := range tests {
		m, err := tt.in.money()
		if tt.bad {
			if err == nil {
				t.Errorf("%v: got %v, want refused", tt.in, m)
			}
			continue
		}
		if err != nil || m.GetUnits() != tt.units || m.GetNanos() != tt.nanos || m.GetCurrencyCode() != tt.in.Currency {
			t.Errorf("%v: got %v, %v; want %d units %d nanos", tt.in, m, err, tt.units, tt.nanos)
		}
	}
}

func TestTextMasksNumbers(t *testing.T) {
	tests := map[string]string{
		"Coffee":                           "Coffee",
		"Rent DE89 3704 0044 0532 0130 00": "Rent DE•• •••• 3000",
		"Card 4111-1111-1111-1111":         "Card •••• 1111",
		"Order 1234567 of 2026":            "Order 1234567 of 2026",
		"  padded  ":                       "padded",
	}
	for in, want := range tests {
		if got := text(in, 140); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := text("äöü", 2); got != "äö" {
		t.Errorf("cut to 2 runes: %q", got)
	}
}
