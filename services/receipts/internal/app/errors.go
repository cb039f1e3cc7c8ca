package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// The errors the service answers with. Messages never carry personal data:
// no amounts, merchant names or user ids.

// ReceiptNotFound is the answer for a receipt the user does not have.
func ReceiptNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no such receipt")
}

func errAmendsNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
		"amends_receipt_id names no receipt the partner sent for this user",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "amends_receipt_id", Description: "no such receipt of the partner for this user", Reason: "amends_receipt_id.not_found"}))
}

func errAmendsNotLatest() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
		"amends_receipt_id names a receipt that was amended already; amend the latest version",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "amends_receipt_id", Description: "the receipt was amended already", Reason: "amends_receipt_id.not_latest"}))
}

func errReceiptIDTaken() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
		"receipt_id was stored before with another receipt; send a correction with amends_receipt_id",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "receipt_id", Description: "stored before with another receipt", Reason: "receipt_id.taken"}))
}

func errKeyReused() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
		"idempotency_key was used before with a different request",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "idempotency_key", Description: "used before with a different request", Reason: "idempotency_key.reused"}))
}

func errNoReceiptsConsent() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED,
		"the user has no consent covering receipts; nothing was stored",
		apierr.WithMetadata("scope", commonv1.Scope_SCOPE_RECEIPTS.String()))
}

func errAuditUnavailable(id string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
		"the receipt could not be recorded in the user's access log, so it was not stored; retry shortly",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(time.Second))
}

// internal masks an unexpected error behind an incident id it logs.
func (s *Service) internal(ctx context.Context, what string, err error) error {
	id, masked := apierr.Internal()
	s.log.ErrorContext(ctx, what, slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return masked
}

// isDenial reports an apierr refusal the caller is meant to see, as
// opposed to a failure to decide.
func isDenial(err error) bool {
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED:
		return true
	}
	return false
}
