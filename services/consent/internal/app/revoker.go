package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// BankRevocationsConsumer is the durable consumer through which the
// consent service tells banks of revocations: every replica reads through
// it, so each revocation is handled by one at a time, and one that was not
// done when its process stopped is delivered again.
const BankRevocationsConsumer = "consent-bank-revocations"

// RunBankRevocations tells banks of the links revoked in bankbridge until
// ctx ends: it consumes consent.link.revoked from bus and, for each link
// bankbridge revoked (not one the bank revoked), calls the bank's
// RevokeConsent until the bank accepts. A bank that is down or slow fails
// the delivery, which the bus delivers again later, with backoff; the
// link was REVOKED in bankbridge already, so nothing waits for it.
func (s *Service) RunBankRevocations(ctx context.Context, bus Bus) error {
	return bus.Consume(ctx, BankRevocationsConsumer, events.Filter{Types: []string{EventLinkRevoked}}, s.HandleRevocation)
}

// HandleRevocation tells the bank of one revoked link. It returns nil when
// the delivery is done (the bank accepted, the bank no longer knows the
// consent, the bank revoked it itself, or there is nothing to tell), and
// an error when the delivery must be tried again.
func (s *Service) HandleRevocation(ctx context.Context, d events.Delivered) error {
	name, err := names.ParseLink(d.Resource)
	if err != nil {
		s.log.ErrorContext(ctx, "revocation event names no link; dropped", slog.String("event_id", d.ID))
		return nil
	}
	l, err := s.store.Link(ctx, name.User, name.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read revoked link: %w", err)
	}
	if l.State != StateRevoked || l.RevokedByBank || l.BankConsentID == "" {
		return nil
	}
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.BankRevokeTimeout)
	defer cancel()
	err = s.banks.RevokeConsent(callCtx, l.BankID, l.BankConsentID)
	if err == nil {
		return nil
	}
	reason := apierr.Reason(err)
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED:
		return nil // the consent is gone at the bank already
	case commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
		commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
		commonv1.ErrorReason_ERROR_REASON_INTERNAL,
		commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED: // a deadline, a broken connection
		// The bus logs the failed delivery and retries it.
		return fmt.Errorf("bank %s did not accept the revocation yet (%s): %w", l.BankID, apierr.ReasonString(reason), err)
	}
	// The bank refused in a way no retry changes (the bank is no longer
	// configured, or its adapter cannot revoke): the consent expires at
	// the bank on its own.
	s.log.ErrorContext(ctx, "bank refused the revocation; the consent will expire at the bank",
		slog.String(telemetry.AttrBankID, l.BankID), slog.String(telemetry.AttrReason, apierr.ReasonString(reason)))
	return nil
}
