package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

var aliceBalance = &balancev1.GetBalanceRequest{Name: "users/alice/accounts/a1/balance"}

func TestPurposes(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	tests := []struct {
		name    string
		purpose string
		code    codes.Code
		reason  string
	}{
		{"advertising is never allowed", "ADVERTISING", codes.PermissionDenied, "PURPOSE_NOT_ALLOWED"},
		{"marketing is never allowed", "PURPOSE_MARKETING", codes.PermissionDenied, "PURPOSE_NOT_ALLOWED"},
		{"a purpose the client is not configured for", "CUSTOMER_SUPPORT", codes.PermissionDenied, "CLIENT_PURPOSE_NOT_ALLOWED"},
		{"no purpose", "", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"an unknown purpose", "CURIOSITY", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"an allowed purpose", "ACCOUNT_INFORMATION", codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.balance.GetBalance(e.asFor(t, "alice", tt.purpose), aliceBalance)
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			st := wantError(t, err, tt.code, tt.reason)
			if tt.code == codes.InvalidArgument {
				if v := badRequest(st).GetFieldViolations(); len(v) != 1 || v[0].GetField() != "bankbridge-purpose" {
					t.Errorf("field violations = %v, want one on bankbridge-purpose", v)
				}
			}
		})
	}
	// The consent hook only ever saw the allowed purpose: refusals come first.
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(e.hooks.checked) != 1 || e.hooks.checked[0].Purpose != commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION {
		t.Errorf("consent hook saw %v, want one ACCOUNT_INFORMATION check", e.hooks.checked)
	}
}

func TestPurposeOnStreams(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ADVERTISING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantError(t, err, codes.PermissionDenied, "PURPOSE_NOT_ALLOWED")
}

func TestConsentHookDecidesAndEveryAccessIsAudited(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	e.hooks.mu.Lock()
	e.hooks.refuse = apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent for this bank")
	e.hooks.mu.Unlock()
	_, err := e.balance.GetBalance(ctx, aliceBalance)
	wantError(t, err, codes.PermissionDenied, "CONSENT_REQUIRED")

	e.hooks.mu.Lock()
	e.hooks.refuse = nil
	e.hooks.mu.Unlock()
	if _, err := e.balance.GetBalance(ctx, aliceBalance); err != nil {
		t.Fatal(err)
	}
	_, err = e.balance.GetBalance(e.as(t, "bob"), aliceBalance)
	wantError(t, err, codes.PermissionDenied, "USER_MISMATCH")

	audits := e.hooks.audits()
	if len(audits) != 3 {
		t.Fatalf("audited %d calls, want 3 (refused, allowed, refused)", len(audits))
	}
	tests := []struct {
		reason commonv1.ErrorReason
		caller string
	}{
		{commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "alice"},
		{commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "alice"},
		{commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, "bob"},
	}
	for i, tt := range tests {
		a := audits[i]
		if got := apierr.Reason(a.err); got != tt.reason {
			t.Errorf("audit %d: reason %v, want %v", i, got, tt.reason)
		}
		if a.access.User != "alice" || a.access.Principal.User != tt.caller || a.access.Principal.Client != testClient {
			t.Errorf("audit %d: access %+v, want user alice called by %s via %s", i, a.access, tt.caller, testClient)
		}
		if a.access.Method != "/bankbridge.balance.v1.BalanceService/GetBalance" {
			t.Errorf("audit %d: method %q", i, a.access.Method)
		}
	}
}
