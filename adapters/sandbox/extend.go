package sandbox

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// ExtendConsent implements adapters.ConsentExtensionAdapter. Every customer
// but bob may extend without a new SCA (as UK Open Banking's 90-day
// reconfirmation allows), by at most 90 days at once and up to 180 days
// after their last SCA (Berlin Group's cap); past that cap, or when an
// extension without SCA would not extend at all, the bank asks for an OTP
// challenge first. bob always gets the challenge. VerifySca with [Code]
// completes it, granting up to 90 days from then.
func (b *Bank) ExtendConsent(ctx context.Context, req *adapterv1.ExtendConsentRequest) (*adapterv1.ExtendConsentResponse, error) {
	if err := b.bankCall(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return idempotent(b.idem, "ExtendConsent", req.GetIdempotencyKey(), req, func() (*adapterv1.ExtendConsentResponse, error) {
		c := b.consents[req.GetBankConsentId()]
		now := b.opts.Now()
		switch {
		case c == nil:
			return nil, errUnknownConsent()
		case c.revoked:
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the consent was revoked")
		case c.status != adapterv1.ScaStatus_SCA_STATUS_FINALISED:
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "the consent is not authorised yet")
		case !now.Before(c.validUntil):
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired")
		}
		requested := req.GetValidUntil().AsTime()
		until := earliest(requested, now.Add(maxConsentLifetime), c.scaTime.Add(maxSinceSCA))
		if !b.customers[c.login].extensionNeedsSCA && until.After(c.validUntil) {
			c.validUntil = until
			return &adapterv1.ExtendConsentResponse{Outcome: &adapterv1.ExtendConsentResponse_Extended{
				Extended: &adapterv1.ConsentExtended{ValidUntil: timestamppb.New(until)},
			}}, nil
		}
		c.extension = &extension{requestedUntil: requested, expireTime: now.Add(challengeLifetime)}
		return &adapterv1.ExtendConsentResponse{Outcome: &adapterv1.ExtendConsentResponse_ScaRequired{
			ScaRequired: &adapterv1.ExtensionChallenge{
				Method:          adapterv1.ScaMethod_SCA_METHOD_OTP,
				ChallengeText:   "To keep sharing your data, enter the 6-digit code we sent to your phone. In the sandbox the code is always " + Code + ".",
				ExpireTime:      timestamppb.New(c.extension.expireTime),
				AttemptsAllowed: codeAttempts,
			},
		}}, nil
	})
}

// verifyExtension answers the code of the consent's running extension
// challenge: the right code extends the consent and ends the challenge;
// the fifth wrong one, or a late one, ends it without extending. Either
// way the consent keeps serving until its current validity. The caller
// holds Bank.mu.
func (c *consent) verifyExtension(now time.Time, code string) error {
	x := c.extension
	switch {
	case !now.Before(x.expireTime):
		c.extension = nil
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, "the challenge has expired")
	case code == "":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"invalid request: code: required for an OTP challenge",
			apierr.WithFieldViolations(apierr.FieldViolation{
				Field: "code", Description: "required for an OTP challenge", Reason: "sandbox.code_required",
			}))
	case code == Code:
		c.extension = nil
		c.scaTime = now
		c.validUntil = earliest(x.requestedUntil, now.Add(maxConsentLifetime))
		return nil
	}
	x.wrongCodes++
	if x.wrongCodes >= codeAttempts {
		c.extension = nil
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "too many wrong codes; the challenge is locked")
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "the code is wrong",
		apierr.WithMetadata("attempts_remaining", strconv.Itoa(codeAttempts-x.wrongCodes)))
}

// earliest returns the earliest of ts.
func earliest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.Before(out) {
			out = t
		}
	}
	return out
}
