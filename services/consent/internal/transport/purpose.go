package transport

import (
	"context"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// PurposeGate is the consent service's consent hook (server.Deps.Consent):
// managing one's own links and reading one's own access log needs no
// consent, but every such call must declare PURPOSE_CONSENT_MANAGEMENT.
// The server kit has already refused unknown purposes, advertising,
// marketing and purposes the client may not declare.
type PurposeGate struct{}

var _ policy.ConsentChecker = PurposeGate{}

// CheckConsent refuses any purpose but PURPOSE_CONSENT_MANAGEMENT.
func (PurposeGate) CheckConsent(_ context.Context, a *policy.Access) error {
	if a.Purpose != commonv1.Purpose_PURPOSE_CONSENT_MANAGEMENT {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED,
			"the consent service serves PURPOSE_CONSENT_MANAGEMENT only", apierr.WithMetadata("purpose", a.Purpose.String()))
	}
	return nil
}
