package adapters_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestParseMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, currency, decimal string
		units                   int64
		nanos                   int32
	}{
		{"negative cents", "EUR", "-86.40", -86, -400000000},
		{"whole", "EUR", "1250", 1250, 0},
		{"one decimal", "EUR", "0.5", 0, 500000000},
		{"plus sign", "USD", "+3.07", 3, 70000000},
		{"trailing zeros beyond the minor unit", "EUR", "12.500", 12, 500000000},
		{"leading zeros", "EUR", "007.01", 7, 10000000},
		{"negative zero", "EUR", "-0.00", 0, 0},
		{"yen has no decimals", "JPY", "1500", 1500, 0},
		{"dinar has three", "KWD", "1.234", 1, 234000000},
		{"four decimals", "CLF", "-0.0001", 0, -100000},
		{"largest", "EUR", "9223372036854775807.99", 9223372036854775807, 990000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := adapters.ParseMoney(tt.currency, tt.decimal)
			want := &commonv1.Money{CurrencyCode: tt.currency, Units: tt.units, Nanos: tt.nanos}
			if err != nil || !proto.Equal(got, want) {
				t.Fatalf("ParseMoney(%q, %q) = %v, %v; want %v", tt.currency, tt.decimal, got, err, want)
			}
		})
	}
}

func TestParseMoneyRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, currency, decimal, wantErr string
	}{
		{"too many decimals", "EUR", "1.001", "EUR has 2 decimals"},
		{"decimals on yen", "JPY", "10.5", "JPY has 0 decimals"},
		{"decimal comma", "EUR", "86,40", "only a sign, digits"},
		{"thousands separator", "USD", "1,250.00", "only a sign, digits"},
		{"exponent", "EUR", "1e3", "only a sign, digits"},
		{"space", "EUR", " 1.00", "only a sign, digits"},
		{"two points", "EUR", "1.0.0", "only a sign, digits"},
		{"two signs", "EUR", "--1", "only a sign, digits"},
		{"empty", "EUR", "", "a digit before"},
		{"sign only", "EUR", "-", "a digit before"},
		{"no whole part", "EUR", ".50", "a digit before"},
		{"no decimals after the point", "EUR", "1.", "a digit after"},
		{"too large", "EUR", "9223372036854775808", "too large"},
		{"lower-case currency", "eur", "1", "not an ISO 4217 code"},
		{"no minor unit", "XAU", "1", "not an ISO 4217 code"},
		{"long currency", "EURO", "1", "not an ISO 4217 code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := adapters.ParseMoney(tt.currency, tt.decimal)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseMoney(%q, %q) = %v, %v; want an error saying %q", tt.currency, tt.decimal, got, err, tt.wantErr)
			}
			if len(tt.decimal) > 2 && strings.Contains(err.Error(), tt.decimal) {
				t.Errorf("error %q repeats the amount", err)
			}
		})
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"-86.40", "1250", "0.5", "1.001", "12.500", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := adapters.ParseMoney("EUR", s)
		if err != nil {
			return
		}
		// Exact: the amount reads back as the same number of cents.
		if m.GetNanos()%10000000 != 0 || (m.GetUnits() > 0 && m.GetNanos() < 0) || (m.GetUnits() < 0 && m.GetNanos() > 0) {
			t.Fatalf("ParseMoney(%q) = %v: not whole cents of one sign", s, m)
		}
	})
}
