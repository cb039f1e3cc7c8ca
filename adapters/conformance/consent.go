package conformance

import (
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testUnknownConsent wants PERMISSION_DENIED (CONSENT_REVOKED_BY_BANK)
// from every call on a consent the bank does not know, VerifySca included,
// and success from revoking one. NOT_FOUND is the classic mistake: it
// reads as "no such account" to callers, while bankbridge must learn that
// the consent is gone to end the link and ask the user to link again.
func (k *kit) testUnknownConsent(c *C) {
	for _, cc := range k.capabilityCalls() {
		if !k.has(cc.capability) || cc.method == "StartSca" || cc.method == "StreamEvents" {
			continue
		}
		c.Run(cc.method, func(c *C) {
			err := cc.call(k.ctx(c), k.client)
			if cc.method == "RevokeConsent" {
				ok(c, "RevokeConsent of an unknown consent", err)
				return
			}
			what := cc.method + " on an unknown consent"
			if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
				checkErrorInfo(c, what, err)
				c.Errorf("%s: answered NotFound (NOT_FOUND); a consent the bank does not know (never granted, "+
					"forgotten, or lost in a restart) must be PermissionDenied (CONSENT_REVOKED_BY_BANK), so that "+
					"bankbridge ends the link and asks the user to link the bank again. NOT_FOUND is for an unknown "+
					"account, transaction, card or case under a consent the bank knows", what)
				return
			}
			wantError(c, what, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
		})
	}
}
