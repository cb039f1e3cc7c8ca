package server_test

import (
	"testing"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	tests := []struct {
		name      string
		req       *balancev1.ListAccountsRequest
		wantField string
		wantRule  string
	}{
		{
			name:      "page size above 100",
			req:       &balancev1.ListAccountsRequest{Parent: "users/alice", PageSize: 1000},
			wantField: "page_size",
			wantRule:  "int32.gte_lte",
		},
		{
			name:      "malformed parent",
			req:       &balancev1.ListAccountsRequest{Parent: "people/alice"},
			wantField: "parent",
			wantRule:  "string.pattern",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.balance.ListAccounts(ctx, tt.req)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			v := testkit.FieldViolations(err)
			if len(v) != 1 || v[0].GetField() != tt.wantField || v[0].GetReason() != tt.wantRule {
				t.Fatalf("field violations = %v, want one on %s (%s)", v, tt.wantField, tt.wantRule)
			}
		})
	}
}

func TestValidationOnStreams(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice/shipments"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	if v := testkit.FieldViolations(err); len(v) != 1 || v[0].GetField() != "parent" {
		t.Fatalf("field violations = %v, want one on parent", v)
	}
}
