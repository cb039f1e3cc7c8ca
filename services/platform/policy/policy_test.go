package policy_test

import (
	"testing"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/apierr"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

func TestParseClients(t *testing.T) {
	t.Parallel()
	c, err := policy.ParseClients("chat-app=ACCOUNT_INFORMATION, PURPOSE_CUSTOMER_SUPPORT; partner=PURCHASE_HISTORY")
	if err != nil {
		t.Fatal(err)
	}
	if len(c["chat-app"]) != 2 || len(c["partner"]) != 1 {
		t.Fatalf("parsed %v", c)
	}
	for _, bad := range []string{
		"chat-app=ADVERTISING",
		"chat-app=PURPOSE_MARKETING",
		"chat-app=FLYING",
		"=ACCOUNT_INFORMATION",
		"chat-app",
	} {
		if _, err := policy.ParseClients(bad); err == nil {
			t.Errorf("ParseClients(%q) accepted", bad)
		}
	}
}

func TestCheckPurpose(t *testing.T) {
	t.Parallel()
	c := policy.Clients{"chat-app": {commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}}
	tests := []struct {
		name    string
		client  string
		purpose commonv1.Purpose
		want    commonv1.ErrorReason
	}{
		{"configured", "chat-app", commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"not configured", "chat-app", commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED},
		{"unknown client", "other", commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED},
		{"advertising", "chat-app", commonv1.Purpose_PURPOSE_ADVERTISING, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"marketing", "chat-app", commonv1.Purpose_PURPOSE_MARKETING, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apierr.Reason(c.CheckPurpose(tt.client, tt.purpose)); got != tt.want {
				t.Errorf("reason = %v, want %v", got, tt.want)
			}
		})
	}
	// Even a client configured (by hand, bypassing ParseClients) for
	// advertising is refused.
	sneaky := policy.Clients{"ads": {commonv1.Purpose_PURPOSE_ADVERTISING}}
	if !apierr.Is(sneaky.CheckPurpose("ads", commonv1.Purpose_PURPOSE_ADVERTISING), commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED) {
		t.Error("advertising allowed for a client configured for it")
	}
}

func TestResourceAndPurposeOf(t *testing.T) {
	t.Parallel()
	req := &balancev1.GetBalanceRequest{Name: "users/alice/accounts/a1/balance", Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}
	if res, ok := policy.ResourceOf(req); !ok || res != req.GetName() {
		t.Errorf("ResourceOf = %q, %v", res, ok)
	}
	if p, ok := policy.PurposeOf(req); !ok || p != commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION {
		t.Errorf("PurposeOf = %v, %v", p, ok)
	}
	list := &balancev1.ListAccountsRequest{Parent: "users/alice"}
	if res, ok := policy.ResourceOf(list); !ok || res != "users/alice" {
		t.Errorf("ResourceOf(list) = %q, %v", res, ok)
	}
}
