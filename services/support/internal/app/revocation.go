package app

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/gen/apierr"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// EventLinkRevoked is the consent service's event for a link that became
// REVOKED; its payload is bankbridge.consent.v1.ConsentLinkRevoked.
const EventLinkRevoked = "consent.link.revoked"

// RevocationsConsumer is the durable bus consumer of link revocations.
const RevocationsConsumer = "support-link-revocations"

// FollowRevocations deletes what the service keeps under each link the
// consent service reports revoked, until ctx ends.
func (s *Service) FollowRevocations(ctx context.Context, bus Bus) error {
	return bus.Consume(ctx, RevocationsConsumer, events.Filter{Types: []string{EventLinkRevoked}}, s.HandleRevocation)
}

// HandleRevocation deletes the conversations, with their messages, the
// user held under the revoked link (only a link covering support has
// any): open ones are closed first (closed_by SYSTEM, the bank's case
// told to close), then deleted, in one transaction. The fraud files
// delete theirs in the same transaction. Redelivery finds nothing left.
func (s *Service) HandleRevocation(ctx context.Context, d events.Delivered) error {
	var ev consentv1.ConsentLinkRevoked
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(d.Data, &ev); err != nil {
		s.log.ErrorContext(ctx, "link revocation unreadable; dropped", slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
		return nil
	}
	link, err := names.ParseLink(ev.GetLink())
	if err != nil || link.User != d.User {
		s.log.ErrorContext(ctx, "link revocation names no link of its user; dropped", slog.String(telemetry.AttrIncidentID, apierr.IncidentID()))
		return nil
	}
	_, err = retry(func() (struct{}, error) {
		return struct{}{}, s.RevokeLink(ctx, link.User, ev.GetBankId(), link.String())
	})
	return err
}

// RevokeLink deletes the user's conversations held under link at bankID,
// closing open ones first.
func (s *Service) RevokeLink(ctx context.Context, user, bankID, link string) error {
	// Deletes what it reads: a run after one that committed finds none.
	return s.store.IdempotentTx(ctx, func(tx Tx) error {
		convs, err := tx.LinkConversations(ctx, user, link)
		if err != nil {
			return err
		}
		var closing []*change
		for _, c := range convs {
			if c.State == StateOpen {
				ch := begin(tx, c, s.stamp())
				ch.close(RoleSystem)
				closing = append(closing, ch)
			}
			if err := tx.DeleteConversation(ctx, c.ConversationKey); err != nil {
				return err
			}
		}
		if err := s.handleFraudLinkRevoked(ctx, tx, user, bankID, link); err != nil {
			return err
		}
		for _, ch := range closing {
			if err := ch.writeEvents(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
