package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/apierr"
)

func balanceFor(p commonv1.Purpose) *balancev1.GetBalanceRequest {
	return &balancev1.GetBalanceRequest{Name: "users/alice/accounts/a1/balance", Purpose: p}
}

func TestPurposes(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	tests := []struct {
		name    string
		purpose commonv1.Purpose
		code    codes.Code
		reason  string
	}{
		{"advertising is never allowed", commonv1.Purpose_PURPOSE_ADVERTISING, codes.PermissionDenied, "PURPOSE_NOT_ALLOWED"},
		{"marketing is never allowed", commonv1.Purpose_PURPOSE_MARKETING, codes.PermissionDenied, "PURPOSE_NOT_ALLOWED"},
		{"a purpose the client is not configured for", commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT, codes.PermissionDenied, "CLIENT_PURPOSE_NOT_ALLOWED"},
		{"an allowed purpose", commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.balance.GetBalance(ctx, balanceFor(tt.purpose))
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantError(t, err, tt.code, tt.reason)
		})
	}
	// The consent hook only ever saw the allowed purpose: refusals come first.
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(e.hooks.checked) != 1 || e.hooks.checked[0].Purpose != commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION {
		t.Errorf("consent hook saw %v, want one ACCOUNT_INFORMATION check", e.hooks.checked)
	}
}

func TestConsentHookDecidesAndEveryAccessIsAudited(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	e.hooks.mu.Lock()
	e.hooks.refuse = apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent for this bank")
	e.hooks.mu.Unlock()
	_, err := e.balance.GetBalance(ctx, balanceFor(commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION))
	wantError(t, err, codes.PermissionDenied, "CONSENT_REQUIRED")

	e.hooks.mu.Lock()
	e.hooks.refuse = nil
	e.hooks.mu.Unlock()
	if _, err := e.balance.GetBalance(ctx, balanceFor(commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION)); err != nil {
		t.Fatal(err)
	}
	_, err = e.balance.GetBalance(e.as(t, "bob"), balanceFor(commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION))
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
