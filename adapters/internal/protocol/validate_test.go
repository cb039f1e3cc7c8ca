package protocol_test

import (
	"errors"
	"testing"

	"buf.build/go/protovalidate"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestValidationViolationsMatchProtovalidate holds gen/apierr, which reads
// validation errors without linking protovalidate, to what protovalidate
// itself reports: the same paths, rule ids and messages, in order.
func TestValidationViolationsMatchProtovalidate(t *testing.T) {
	t.Parallel()
	resp := &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{
		{
			BankAccountId: "a1", DisplayName: "Everyday", CurrencyCode: "EUR",
			Type:         adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
			MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "4821"},
		},
		{
			BankAccountId: "a 2", CurrencyCode: "euro",
			MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "48"},
		},
	}}
	err := protovalidate.Validate(resp)
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate = %v, want a validation error", err)
	}
	got := apierr.ValidationViolations(err)
	if len(got) != len(verr.Violations) || len(got) < 4 {
		t.Fatalf("ValidationViolations = %v, want the %d of protovalidate (at least 4)", got, len(verr.Violations))
	}
	for i, v := range verr.Violations {
		want := apierr.FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		}
		if got[i] != want {
			t.Errorf("violation %d = %+v, want %+v", i, got[i], want)
		}
	}
	if got[0].Field != "accounts[1].bank_account_id" {
		t.Errorf("first field = %q, want accounts[1].bank_account_id", got[0].Field)
	}
}
