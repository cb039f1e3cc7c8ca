package conformance

import (
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testRevoke is revoke/revoke-consent: the kit revokes the consent it
// linked, last.
func (k *kit) testRevoke(c *C) {
	if !k.linked {
		c.Skip("no consent the kit linked itself (sca/link did not pass); the kit revokes only its own")
	}
	req := &adapterv1.RevokeConsentRequest{BankConsentId: k.consentID}
	if _, err := k.client.RevokeConsent(k.ctx(c), req); !ok(c, "RevokeConsent", err) {
		return
	}
	_, err := k.client.RevokeConsent(k.ctx(c), req)
	ok(c, "RevokeConsent again", err)
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		_, err := k.client.ListAccounts(k.ctx(c), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
		wantError(c, "ListAccounts on a revoked consent", err,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	}
}
