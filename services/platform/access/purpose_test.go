package access_test

import (
	"context"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

func TestParseClients(t *testing.T) {
	t.Parallel()
	c, err := access.ParseClients("chat-app=ACCOUNT_INFORMATION, PURPOSE_CUSTOMER_SUPPORT; partner=PURCHASE_HISTORY")
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
		if _, err := access.ParseClients(bad); err == nil {
			t.Errorf("ParseClients(%q) accepted", bad)
		}
	}
}

func TestCheckPurpose(t *testing.T) {
	t.Parallel()
	c := access.Clients{"chat-app": {commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}}
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
	sneaky := access.Clients{"ads": {commonv1.Purpose_PURPOSE_ADVERTISING}}
	if !apierr.Is(sneaky.CheckPurpose("ads", commonv1.Purpose_PURPOSE_ADVERTISING), commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED) {
		t.Error("advertising allowed for a client configured for it")
	}
}

func TestResourceOf(t *testing.T) {
	t.Parallel()
	req := &balancev1.GetBalanceRequest{Name: "users/alice/accounts/a1/balance"}
	if res, ok := access.ResourceOf(req); !ok || res != req.GetName() {
		t.Errorf("ResourceOf = %q, %v", res, ok)
	}
	list := &balancev1.ListAccountsRequest{Parent: "users/alice"}
	if res, ok := access.ResourceOf(list); !ok || res != "users/alice" {
		t.Errorf("ResourceOf(list) = %q, %v", res, ok)
	}
}

func TestPurposeFromContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		want   commonv1.Purpose
		rule   string
	}{
		{"short name", []string{"ACCOUNT_INFORMATION"}, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, ""},
		{"prefixed name", []string{"PURPOSE_CUSTOMER_SUPPORT"}, commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT, ""},
		{"lower case", []string{"order_tracking"}, commonv1.Purpose_PURPOSE_ORDER_TRACKING, ""},
		{"advertising is a known purpose (refused later, by policy)", []string{"ADVERTISING"}, commonv1.Purpose_PURPOSE_ADVERTISING, ""},
		{"missing", nil, 0, "purpose.missing"},
		{"empty", []string{" "}, 0, "purpose.missing"},
		{"twice", []string{"ACCOUNT_INFORMATION", "MARKETING"}, 0, "purpose.missing"},
		{"unknown", []string{"CURIOSITY"}, 0, "purpose.unknown"},
		{"unspecified", []string{"UNSPECIFIED"}, 0, "purpose.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := metadata.MD{}
			for _, v := range tt.values {
				md.Append(access.PurposeHeader, v)
			}
			got, err := access.PurposeFromContext(metadata.NewIncomingContext(context.Background(), md))
			if tt.rule == "" {
				if err != nil || got != tt.want {
					t.Fatalf("= %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("code = %v, want INVALID_ARGUMENT", st.Code())
			}
			var br *errdetails.BadRequest
			for _, d := range st.Details() {
				if b, ok := d.(*errdetails.BadRequest); ok {
					br = b
				}
			}
			if v := br.GetFieldViolations(); len(v) != 1 || v[0].GetField() != "bankbridge-purpose" || v[0].GetReason() != tt.rule {
				t.Errorf("violations = %v, want bankbridge-purpose (%s)", v, tt.rule)
			}
		})
	}
}
