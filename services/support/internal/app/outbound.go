package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// OutboundConsumer is the durable bus consumer of the work for the banks
// that the outbox queued: user messages for the agent, and thread control
// notices. Every replica consumes with it, sharing the work.
const OutboundConsumer = "support-bank-outbound"

// RunOutbound delivers the queued work to the banks until ctx ends; a
// delivery that fails for a reason that may pass is retried with backoff
// until it succeeds.
func (s *Service) RunOutbound(ctx context.Context, bus Bus) error {
	return bus.Consume(ctx, OutboundConsumer, events.Filter{Types: []string{TypeBankMessage, TypeBankThreadControl}}, s.HandleOutbound)
}

// HandleOutbound delivers one piece of queued work. It returns nil once
// the bank has it, or when it never will (the message is gone, the case
// is closed, the consent is revoked: logged, with the bank and reason
// only), and an error to be retried.
func (s *Service) HandleOutbound(ctx context.Context, d events.Delivered) error {
	var bankID string
	var err error
	switch d.Type {
	case TypeBankMessage:
		var w BankMessage
		if err := json.Unmarshal(d.Data, &w); err != nil {
			s.log.ErrorContext(ctx, "queued bank message unreadable; dropped", slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
			return nil
		}
		bankID, err = w.Conversation.BankID, s.deliverMessage(ctx, w)
	case TypeBankThreadControl:
		var w BankThreadControl
		if err := json.Unmarshal(d.Data, &w); err != nil {
			s.log.ErrorContext(ctx, "queued thread control notice unreadable; dropped", slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
			return nil
		}
		bankID, err = w.BankID, s.deliverThreadControl(ctx, w)
	default:
		return nil
	}
	if err == nil || !retryable(err) {
		if err != nil {
			s.log.WarnContext(ctx, "bank refused queued support work; dropped", slog.String(telemetry.AttrBankID, bankID),
				slog.String("bankbridge.event_type", d.Type), slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		}
		return nil
	}
	return fmt.Errorf("deliver %s to bank %s: %s", d.Type, bankID, apierr.ReasonString(apierr.Reason(err)))
}

// errGone is a delivery with nothing left to deliver.
var errGone = apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the queued message is gone")

// deliverMessage passes a user's message to the agent, read from the
// store now: a message deleted since (retention, revocation) is not sent.
func (s *Service) deliverMessage(ctx context.Context, w BankMessage) error {
	m, err := s.store.Message(ctx, w.Conversation, w.MessageID)
	if errors.Is(err, ErrNotFound) {
		return errGone
	}
	if err != nil {
		return err
	}
	client, err := s.banks.Client(w.Conversation.BankID)
	if err != nil {
		return err
	}
	bctx, cancel := s.bankContext(ctx)
	defer cancel()
	_, err = client.SendSupportMessage(bctx, &adapterv1.SendSupportMessageRequest{
		BankConsentId: w.BankConsentID, CaseId: w.CaseID, Text: m.Display(), ClientMessageId: w.ClientMessageID,
	})
	return err
}

// deliverThreadControl tells the bank what the assistant did to a case's
// thread.
func (s *Service) deliverThreadControl(ctx context.Context, w BankThreadControl) error {
	action, ok := adapterv1.ThreadControlAction_value["THREAD_CONTROL_ACTION_"+string(w.Action)]
	if !ok {
		return errGone
	}
	client, err := s.banks.Client(w.BankID)
	if err != nil {
		return err
	}
	bctx, cancel := s.bankContext(ctx)
	defer cancel()
	_, err = client.NotifyThreadControl(bctx, &adapterv1.NotifyThreadControlRequest{
		BankConsentId: w.BankConsentID, CaseId: w.CaseID, Action: adapterv1.ThreadControlAction(action),
		Metadata: w.Metadata, IdempotencyKey: w.IdempotencyKey,
	})
	return err
}

// retryable reports whether a bank's refusal may pass: the bank down or
// busy, a deadline, rejected credentials (they rotate), or an error that
// is not the protocol's.
func retryable(err error) bool {
	reason := apierr.Reason(err)
	if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return true
	}
	switch apierr.Code(reason) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Unauthenticated, codes.Internal, codes.Unknown, codes.Aborted:
		return true
	}
	return false
}
