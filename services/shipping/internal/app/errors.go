package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// The errors the service answers with. Messages never carry personal data:
// no tracking numbers, names or user ids.

// ShipmentNotFound is the answer for a shipment the user does not have.
func ShipmentNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user tracks no such shipment")
}

func errKeyReused() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
		"idempotency_key was used before with a different request",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "idempotency_key", Description: "used before with a different request", Reason: "idempotency_key.reused"}))
}

func errNoShippingConsent() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED,
		"the user has no consent covering shipping; nothing was stored",
		apierr.WithMetadata("scope", commonv1.Scope_SCOPE_SHIPPING.String()))
}

func errAuditUnavailable(id string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
		"the shipment could not be recorded in the user's access log, so it was not stored; retry shortly",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(time.Second))
}

func errCarrierSet() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
		"the shipment's carrier is set already; delete the shipment and create it again with another carrier")
}

func errNotACandidate() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
		"invalid request: carrier: not one of the shipment's carrier_candidates",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "carrier", Description: "not one of the shipment's carrier_candidates", Reason: "carrier.not_a_candidate"}))
}

// carrierError is the answer for a tracking number and carrier that do
// not go together; prefix is where the request holds them ("shipment."
// or ""). It is nil for an error of no known kind.
func carrierError(err error, named bool, prefix string) error {
	if cd, isCD := errors.AsType[*carrier.CheckDigitError](err); isCD {
		// The carrier package's message names carriers and formats only.
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"invalid request: "+prefix+"tracking_number: the check digit is wrong",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: prefix + "tracking_number", Description: cd.Error(), Reason: "tracking_number.check_digit"}))
	}
	switch {
	case errors.Is(err, carrier.ErrUnsupported):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "the carrier is not supported",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: prefix + "carrier", Description: "not a supported carrier", Reason: "carrier.unsupported"}))
	case errors.Is(err, carrier.ErrNoCarrier) && named:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "the tracking number fits no format of the carrier",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: prefix + "tracking_number", Description: "fits no format of the carrier", Reason: "tracking_number.no_carrier"}))
	case errors.Is(err, carrier.ErrNoCarrier):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "no supported carrier's format fits the tracking number; name the carrier",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: prefix + "tracking_number", Description: "fits no supported carrier's format", Reason: "tracking_number.no_carrier"}))
	}
	return nil
}

// internal masks an unexpected error behind an incident id it logs.
func (s *Service) internal(ctx context.Context, what string, err error) error {
	id, masked := apierr.Internal()
	s.log.ErrorContext(ctx, what, slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return masked
}

// passOrMask passes an apierr error on, and masks anything else.
func (s *Service) passOrMask(ctx context.Context, what string, err error) error {
	if err == nil || apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return err
	}
	return s.internal(ctx, what, err)
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
