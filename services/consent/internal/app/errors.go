package app

import (
	"errors"
	"strconv"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The errors the service answers with. Messages never carry personal data:
// no codes, login hints or consent ids.

func errLinkNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no link with this name")
}

func errPurposeNotAllowed(p commonv1.Purpose) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED,
		"a link can never cover "+p.String(), apierr.WithMetadata("purpose", p.String()))
}

func errKeyReused() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
		"idempotency_key was used before with a different request")
}

func errLinkNotPending(s State) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING,
		"the link is "+s.String()+", not RECEIVED: its challenge is over", apierr.WithMetadata("state", s.String()))
}

func errLinkNotValid(s State) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
		"the link is "+s.String()+", not VALID: only a VALID link can be reconfirmed; link the bank again",
		apierr.WithMetadata("state", s.String()))
}

func errRevokedByBank() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
		"the bank no longer knows this link's consent: the link is revoked; link the bank again")
}

func errCodeRequired() error {
	return invalid("code", "the one-time code is required for SCA_METHOD_OTP", "code.required")
}

func errCodeNotExpected(m ScaMethod) error {
	return invalid("code", "no code is taken for SCA_METHOD_"+m.String()+"; send none to poll", "code.not_expected")
}

func invalid(field, desc, rule string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: desc, Reason: rule}))
}

// The three ways a challenge ends badly, shared by fresh answers and
// idempotent replays.

func errScaFailed(remaining int) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "the code is wrong",
		apierr.WithMetadata("attempts_remaining", strconv.Itoa(remaining)))
}

func errScaLocked() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED,
		"too many wrong codes: the challenge is locked (a new link is rejected; a reconfirmed one keeps its expiry)")
}

func errScaExpired() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED,
		"the challenge expired before it was completed (a new link is rejected; a reconfirmed one keeps its expiry)")
}

var (
	reasonScaFailed     = apierr.ReasonString(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	reasonScaLocked     = apierr.ReasonString(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
	reasonScaExpired    = apierr.ReasonString(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED)
	reasonRevokedByBank = apierr.ReasonString(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
)

// replayError rebuilds the error an idempotency record holds.
func replayError(rec Idempotency) error {
	switch rec.ErrReason {
	case "":
		return nil
	case reasonScaFailed:
		return errScaFailed(rec.AttemptsRemaining)
	case reasonScaLocked:
		return errScaLocked()
	case reasonScaExpired:
		return errScaExpired()
	case reasonRevokedByBank:
		return errRevokedByBank()
	default:
		return errors.New("idempotency record holds unknown reason " + strconv.Quote(rec.ErrReason))
	}
}
