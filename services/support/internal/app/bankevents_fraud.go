package app

import (
	"context"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// Owned by the fraud, cards and alerts files (see doc.go): the hooks the
// bank event consumer (bankevents.go) calls for the fraud events. Each
// runs inside the transaction that also stores the bank's new cursor, so
// its writes and the cursor commit together; an error rolls both back and
// the event is read again after a reconnect. What they need from another
// service is asked before that transaction opens (resolveAlertConsents). An event that breaks the
// protocol, or that no consent covers, is dropped (nil): reading it again
// would not change it.

// handleFraudAlert stores a bank's FraudAlert (ev.GetFraudAlert()) for the
// user whose consent it names, once, with its support.alert.raised event
// (storeAlert); consents are the consent service's answers, asked before
// the transaction (resolveAlertConsents).
func (s *Service) handleFraudAlert(ctx context.Context, tx Tx, bankID string, ev *adapterv1.StreamEventsResponse, consents alertConsents) error {
	return s.storeAlert(ctx, tx, bankID, ev.GetFraudAlert(), consents)
}

// handleFraudCaseUpdated applies a bank's FraudCaseUpdated
// (ev.GetFraudCaseUpdated()) to the fraud report of its case
// (applyCaseUpdate).
func (s *Service) handleFraudCaseUpdated(ctx context.Context, tx Tx, bankID string, ev *adapterv1.StreamEventsResponse) error {
	return s.applyCaseUpdate(ctx, tx, bankID, ev.GetFraudCaseUpdated())
}

// handleFraudLinkRevoked deletes what the fraud files keep under a link
// the user revoked (user, bankID, link users/{user}/links/{link}), inside
// the transaction that deletes the link's conversations: the fraud reports
// and alerts held under it, and the user's unblock challenges at the bank.
func (s *Service) handleFraudLinkRevoked(ctx context.Context, tx Tx, user, bankID, link string) error {
	return tx.DeleteLinkFraud(ctx, user, bankID, link)
}
