package conformance

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// scopes are what the kit asks StartSca for.
func (k *kit) scopes() []commonv1.Scope {
	if len(k.fx.Scopes) > 0 {
		return k.fx.Scopes
	}
	var s []commonv1.Scope
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		s = append(s, commonv1.Scope_SCOPE_ACCOUNTS)
	}
	if k.has(adapterv1.Capability_CAPABILITY_BALANCES) {
		s = append(s, commonv1.Scope_SCOPE_BALANCES)
	}
	if k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
		s = append(s, commonv1.Scope_SCOPE_TRANSACTIONS)
	}
	if k.has(adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF) || k.has(adapterv1.Capability_CAPABILITY_FRAUD) || k.has(adapterv1.Capability_CAPABILITY_CARDS) {
		s = append(s, commonv1.Scope_SCOPE_SUPPORT)
	}
	if k.has(adapterv1.Capability_CAPABILITY_FRAUD) {
		s = append(s, commonv1.Scope_SCOPE_FRAUD_ALERTS)
	}
	if len(s) == 0 {
		s = append(s, commonv1.Scope_SCOPE_ACCOUNTS)
	}
	return s
}

func (k *kit) startRequest(login, name string) *adapterv1.StartScaRequest {
	return &adapterv1.StartScaRequest{
		UserReference:   "conformance-" + k.run + "-" + name,
		LoginHint:       login,
		Scopes:          k.scopes(),
		ValidUntil:      timestamppb.New(time.Now().Add(24 * time.Hour)),
		PreferredMethod: adapterv1.ScaMethod_SCA_METHOD_OTP,
		IdempotencyKey:  k.key(name),
	}
}

// runSCA runs the sca/ checks: the kit links the main customer with OTP,
// and the data checks run on that consent.
func (k *kit) runSCA(r *runner) {
	r.check(k, "sca/unknown-login", func(c *C) {
		if k.fx.UnknownLoginHint == "" {
			c.Skip("no unknown_login_hint in the fixtures")
		}
		req := k.startRequest(k.fx.UnknownLoginHint, "start-unknown")
		_, err := k.client.StartSca(k.ctx(c), req)
		wantError(c, "StartSca for an unknown login", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
	r.check(k, "sca/start-idempotent", func(c *C) {
		first := k.startSCA(c)
		retry, err := k.client.StartSca(k.ctx(c), k.scaStart)
		if ok(c, "StartSca retried with the same key", err) && !proto.Equal(first, retry) {
			c.Error("StartSca retried with the same key: answer differs from the first")
		}
		other := proto.CloneOf(k.scaStart)
		other.UserReference += "-other"
		_, err = k.client.StartSca(k.ctx(c), other)
		wantError(c, "StartSca with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})
	r.check(k, "sca/bad-code", func(c *C) {
		if k.fx.BadCode == "" {
			c.Skip("no customer.bad_code in the fixtures")
		}
		if k.fx.LoginHint == "" {
			c.Skip("no customer.login_hint in the fixtures")
		}
		challenge, err := k.client.StartSca(k.ctx(c), k.startRequest(k.fx.LoginHint, "start-bad-code"))
		if !ok(c, "StartSca", err) {
			return
		}
		k.check(c, "StartSca", challenge)
		if challenge.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
			c.Skipf("the bank chose %s; the kit completes OTP challenges only", challenge.GetMethod())
		}
		resp, err := k.client.VerifySca(k.ctx(c), &adapterv1.VerifyScaRequest{
			BankConsentId: challenge.GetBankConsentId(), Code: k.fx.BadCode, IdempotencyKey: k.key("verify-bad"),
		})
		if err != nil {
			wantError(c, "VerifySca with a wrong code", err,
				commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
			return
		}
		k.check(c, "VerifySca with a wrong code", resp)
		if resp.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FAILED {
			c.Errorf("VerifySca with a wrong code: status %s, want FAILED or an SCA_FAILED error", resp.GetStatus())
		}
	})
	r.check(k, "sca/link", func(c *C) {
		first := k.startSCA(c)
		if first.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
			c.Skipf("the bank chose %s; the kit completes OTP challenges only (give customer.bank_consent_id for the data checks)", first.GetMethod())
		}
		verify := &adapterv1.VerifyScaRequest{BankConsentId: first.GetBankConsentId(), Code: k.fx.GoodCode, IdempotencyKey: k.key("verify")}
		verified, err := k.client.VerifySca(k.ctx(c), verify)
		if !ok(c, "VerifySca with the good code", err) {
			c.FailNow()
		}
		k.check(c, "VerifySca", verified)
		if verified.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			c.Fatalf("VerifySca with the good code: status %s, want FINALISED", verified.GetStatus())
		}
		k.scaVerify, k.scaVerified = verify, verified
		k.consentID, k.linked = verified.GetBankConsentId(), true
	})
	r.check(k, "sca/verify-idempotent", func(c *C) {
		if k.scaVerified == nil {
			c.Skip("sca/link did not pass")
		}
		retry, err := k.client.VerifySca(k.ctx(c), k.scaVerify)
		if ok(c, "VerifySca retried with the same key", err) && !proto.Equal(k.scaVerified, retry) {
			c.Error("VerifySca retried with the same key: answer differs from the first")
		}
		other := proto.CloneOf(k.scaVerify)
		other.Code = k.fx.BadCode
		if other.Code == "" || other.Code == k.scaVerify.GetCode() {
			other.Code = "00000000"
		}
		_, err = k.client.VerifySca(k.ctx(c), other)
		wantError(c, "VerifySca with a used key and another code", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)

		again, err := k.client.VerifySca(k.ctx(c), &adapterv1.VerifyScaRequest{
			BankConsentId: k.scaVerified.GetBankConsentId(), Code: k.fx.GoodCode, IdempotencyKey: k.key("verify-again"),
		})
		if ok(c, "VerifySca after FINALISED", err) && again.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			c.Errorf("VerifySca after FINALISED: status %s, want FINALISED again", again.GetStatus())
		}
	})
}

// startSCA makes the kit's first StartSca for the main customer, once, and
// returns its answer; it ends the check when it fails.
func (k *kit) startSCA(c *C) *adapterv1.StartScaResponse {
	c.Helper()
	if k.scaFirst != nil {
		return k.scaFirst
	}
	if k.fx.LoginHint == "" {
		c.Fatal("customer.login_hint (Fixtures.LoginHint) is required for an adapter with SCA")
	}
	if k.scaStart == nil {
		k.scaStart = k.startRequest(k.fx.LoginHint, "start")
	}
	first, err := k.client.StartSca(k.ctx(c), k.scaStart)
	if !ok(c, "StartSca", err) {
		c.FailNow()
	}
	k.check(c, "StartSca", first)
	k.scaFirst = first
	return first
}

// link links another customer with OTP SCA, for a check that needs their
// consent, and revokes it when the check ends; a given consent is used as
// it is. It skips the check when it cannot.
func (k *kit) link(c *C, who string, cust Customer) string {
	c.Helper()
	if cust.BankConsentID != "" {
		return cust.BankConsentID
	}
	if !k.has(adapterv1.Capability_CAPABILITY_SCA) {
		c.Skipf("%s has no bank_consent_id, and the adapter does not declare SCA to link them", who)
	}
	start, err := k.client.StartSca(k.ctx(c), k.startRequest(cust.LoginHint, "start-"+cust.LoginHint))
	if !ok(c, "StartSca for "+who, err) {
		c.FailNow()
	}
	if start.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
		c.Skipf("the bank chose %s to link %s; the kit completes OTP challenges only (give their bank_consent_id)", start.GetMethod(), who)
	}
	verified, err := k.client.VerifySca(k.ctx(c), &adapterv1.VerifyScaRequest{
		BankConsentId: start.GetBankConsentId(), Code: k.fx.GoodCode, IdempotencyKey: k.key("verify-" + cust.LoginHint),
	})
	if !ok(c, "VerifySca for "+who, err) {
		c.FailNow()
	}
	if verified.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		c.Fatalf("VerifySca for %s with the good code: status %s, want FINALISED", who, verified.GetStatus())
	}
	id := verified.GetBankConsentId()
	c.Cleanup(func() {
		// Best effort, on a fresh context: the check's has ended.
		ctx, cancel := k.detached()
		defer cancel()
		_, _ = k.client.RevokeConsent(ctx, &adapterv1.RevokeConsentRequest{BankConsentId: id})
	})
	return id
}
