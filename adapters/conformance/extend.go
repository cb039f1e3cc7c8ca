package conformance

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testExtension (extend/extend-consent) extends the consent the kit linked: the answer keeps the
// protocol's rules whichever way the bank goes (extended, or a challenge
// that VerifySca with the good code completes), never grants more than
// asked, and leaves the consent serving.
func (k *kit) testExtension(c *C) {
	if !k.linked {
		c.Skip("no consent the kit linked itself (sca/link did not pass); the kit extends only its own")
	}
	requested := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	req := &adapterv1.ExtendConsentRequest{BankConsentId: k.consentID, ValidUntil: timestamppb.New(requested), IdempotencyKey: k.key("extend")}
	first, err := k.client.ExtendConsent(k.ctx(c), req)
	if !ok(c, "ExtendConsent", err) {
		return
	}
	k.check(c, "ExtendConsent", first)
	k.extendReq, k.extended = req, first
	var until time.Time
	switch o := first.GetOutcome().(type) {
	case *adapterv1.ExtendConsentResponse_Extended:
		until = o.Extended.GetValidUntil().AsTime()
	case *adapterv1.ExtendConsentResponse_ScaRequired:
		if o.ScaRequired.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
			c.Skipf("the bank chose %s for the extension; the kit completes OTP challenges only", o.ScaRequired.GetMethod())
		}
		resp, err := k.client.VerifySca(k.ctx(c), &adapterv1.VerifyScaRequest{
			BankConsentId: k.consentID, Code: k.fx.GoodCode, IdempotencyKey: k.key("verify-extension"),
		})
		if !ok(c, "VerifySca of the extension's challenge", err) {
			return
		}
		k.check(c, "VerifySca of the extension's challenge", resp)
		if resp.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			c.Fatalf("VerifySca of the extension's challenge with the good code: status %s, want FINALISED", resp.GetStatus())
		}
		until = resp.GetValidUntil().AsTime()
		k.consentID = resp.GetBankConsentId()
	}
	if until.After(requested) {
		c.Errorf("the extension grants until %s, after the %s asked for", until.Format(time.RFC3339), requested.Format(time.RFC3339))
	}
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		_, err := k.client.ListAccounts(k.ctx(c), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
		ok(c, "ListAccounts on the extended consent", err)
	}
}

// testExtensionIdempotent is extend/idempotent.
func (k *kit) testExtensionIdempotent(c *C) {
	if k.extended == nil {
		c.Skip("extend/extend-consent did not pass")
	}
	retry, err := k.client.ExtendConsent(k.ctx(c), k.extendReq)
	if ok(c, "ExtendConsent retried with the same key", err) && !proto.Equal(k.extended, retry) {
		c.Error("ExtendConsent retried with the same key: answer differs from the first")
	}
	other := proto.CloneOf(k.extendReq)
	other.ValidUntil = timestamppb.New(k.extendReq.GetValidUntil().AsTime().Add(time.Hour))
	_, err = k.client.ExtendConsent(k.ctx(c), other)
	wantError(c, "ExtendConsent with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
}
