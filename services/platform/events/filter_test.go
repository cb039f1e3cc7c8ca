package events_test

import (
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

func TestMatchType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pattern, typ string
		want               bool
	}{
		{"same type", "shipping.shipment.updated", "shipping.shipment.updated", true},
		{"another type", "shipping.shipment.updated", "shipping.shipment.created", false},
		{"a longer type", "shipping.shipment", "shipping.shipment.created", false},
		{"one token", "shipping.*.created", "shipping.shipment.created", true},
		{"the rest", "shipping.>", "shipping.shipment.created", true},
		{"the rest is at least one token", "shipping.>", "shipping", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := events.MatchType(tt.pattern, tt.typ); got != tt.want {
				t.Errorf("MatchType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		types   []string
		wantErr bool
	}{
		{"every type", nil, false},
		{"types and patterns", []string{"shipping.shipment.created", "receipts.*.created", "consent.>"}, false},
		{"an empty type", []string{""}, true},
		{"a space", []string{"shipping shipment"}, true},
		{"'>' not last", []string{"shipping.>.created"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := (events.Filter{Types: tt.types}).Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate(%q) = %v, want an error: %v", tt.types, err, tt.wantErr)
			}
		})
	}
}
