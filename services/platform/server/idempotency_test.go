package server_test

import (
	"testing"

	"google.golang.org/grpc/metadata"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestIdempotencyKeyFromMetadata(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	req := func(key string) *shippingv1.CreateShipmentRequest {
		return &shippingv1.CreateShipmentRequest{Parent: "users/alice", IdempotencyKey: key,
			Shipment: &shippingv1.Shipment{TrackingNumber: "1Z999AA10123456784"}}
	}
	tests := []struct {
		name     string
		header   string
		field    string
		wantKey  string
		wantFail bool
	}{
		{"header fills the field", "key-from-header-1", "", "key-from-header-1", false},
		{"field alone", "", "key-from-field-1", "key-from-field-1", false},
		{"both, the same", "same-key-123", "same-key-123", "same-key-123", false},
		{"both, different", "key-one-1234", "key-two-1234", "", true},
		{"neither", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := e.asFor(t, "alice", "ORDER_TRACKING")
			if tt.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", tt.header)
			}
			resp, err := e.shipping.CreateShipment(ctx, req(tt.field))
			if tt.wantFail {
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
				if v := testkit.FieldViolations(err); len(v) != 1 || v[0].GetField() != "idempotency_key" {
					t.Errorf("violations = %v, want one on idempotency_key", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetShipment().GetTrackingNumber(); got != tt.wantKey {
				t.Errorf("handler saw key %q, want %q", got, tt.wantKey)
			}
		})
	}
}
