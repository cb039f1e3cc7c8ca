package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// Thread control follows Messenger's handover protocol: the assistant is
// the primary receiver and holds control first; it passes control to the
// bank's agent (the secondary receiver) when the user asks for a person,
// takes it back when the agent goes quiet, and asks for it back when the
// user asks for the assistant.

// maxTranscript is the most messages a handoff carries.
const maxTranscript = 100

// maxReason is the longest note StartSupportHandoff takes.
const maxReason = 500

// The assistant's notes for the agent.
const (
	reasonAsked         = "The user asked to talk to a person."
	reasonMisunderstood = "The assistant did not understand the user's last messages."
	reasonIdle          = "No answer from the agent; the assistant took the conversation back."
)

// Handover is the user choosing who answers: the bank's agent (the
// assistant passes control and a case opens at the bank) or the assistant
// (it asks the agent for control back). A target in control, or a request
// already pending, changes nothing.
func (s *Service) Handover(ctx context.Context, g Grant, k ConversationKey, target Controller, metadata string) (Conversation, error) {
	if k.User != g.User {
		return Conversation{}, errNotFound()
	}
	return inTurn(ctx, s, k, func() (Conversation, error) {
		c, err := s.store.Conversation(ctx, k)
		if err != nil {
			return Conversation{}, notFound(err)
		}
		switch {
		case c.State == StateClosed:
			return Conversation{}, errClosed()
		case c.Controller == target:
			return c, nil
		case target == ControllerAssistant:
			return s.requestControl(ctx, c, metadata)
		}
		caseID, err := s.startHandoff(ctx, c, nil, cmpReason(metadata, reasonAsked))
		if err != nil {
			return Conversation{}, handoffError(err)
		}
		var out Conversation
		// The version check makes a run after one that committed a
		// conflict, so nothing is applied twice.
		err = s.store.IdempotentTx(ctx, func(tx Tx) error {
			// Before the conversation: the bank's first events for the
			// new case may be arriving now (see claimParked).
			if err := tx.LockBankEvents(ctx, k.BankID); err != nil {
				return err
			}
			locked, err := tx.LockConversation(ctx, k)
			if err != nil {
				return notFound(err)
			}
			if locked.Version != c.Version {
				return ErrConflict
			}
			ch := begin(tx, locked, s.stamp())
			if err := s.pass(ctx, ch, caseID, RoleUser, metadata); err != nil {
				return err
			}
			out = ch.c
			return ch.commit(ctx)
		})
		return out, err
	})
}

// requestControl records the assistant's request for control, on the
// user's behalf, and tells the bank through the outbox.
func (s *Service) requestControl(ctx context.Context, c Conversation, metadata string) (Conversation, error) {
	if c.Pending != nil {
		return c, nil
	}
	var out Conversation
	// The version check makes a run after one that committed a
	// conflict, so nothing is applied twice.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		locked, err := tx.LockConversation(ctx, c.ConversationKey)
		if err != nil {
			return notFound(err)
		}
		if locked.Version != c.Version {
			return ErrConflict
		}
		ch := begin(tx, locked, s.stamp())
		ch.c.Pending = &ControlRequest{RequestedBy: ControllerAssistant, Metadata: metadata, Time: ch.now}
		ch.control(ActionRequest, RoleUser, metadata)
		ch.notify(ActionRequest, metadata)
		out = ch.c
		return ch.commit(ctx)
	})
	return out, err
}

// cmpReason is the user's note when there is one, else the default, cut to
// what the bank takes.
func cmpReason(metadata, def string) string {
	if metadata == "" {
		return def
	}
	return assistant.Truncate(metadata, maxReason)
}

// handoffError is the contract's answer to a handoff the bank refused:
// CAPABILITY_NOT_SUPPORTED as it is, anything else BANK_UNAVAILABLE.
func handoffError(err error) error {
	if apierr.Reason(err) == commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, "the bank offers no human agents through its adapter")
	}
	opts := []apierr.Option{}
	if d := apierr.RetryDelay(err); d > 0 {
		opts = append(opts, apierr.WithRetryAfter(d))
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank could not open a support case; control stays with the assistant", opts...)
}

// startHandoff opens a case at the bank with the transcript so far (and
// extra, the user's message not yet stored), under a key derived from the
// conversation and its handover count, so a retry opens the same case.
func (s *Service) startHandoff(ctx context.Context, c Conversation, extra *Message, reason string) (string, error) {
	msgs, err := s.store.ListMessages(ctx, c.ConversationKey, nil, maxTranscript)
	if err != nil {
		return "", err
	}
	slices.Reverse(msgs)
	if extra != nil {
		msgs = append(msgs, *extra)
	}
	var transcript []*adapterv1.TranscriptMessage
	for _, m := range msgs {
		var sender adapterv1.TranscriptSender
		switch m.Role {
		case RoleUser:
			sender = adapterv1.TranscriptSender_TRANSCRIPT_SENDER_USER
		case RoleAssistant:
			sender = adapterv1.TranscriptSender_TRANSCRIPT_SENDER_ASSISTANT
		default:
			continue // the protocol's transcript is the user and the assistant
		}
		text := m.Display()
		if text == "" {
			continue
		}
		at := m.CreateTime
		if at.IsZero() {
			at = s.stamp()
		}
		transcript = append(transcript, &adapterv1.TranscriptMessage{Sender: sender, Text: text, SendTime: timestamppb.New(at)})
	}
	if len(transcript) > maxTranscript {
		transcript = transcript[len(transcript)-maxTranscript:]
	}
	client, err := s.banks.Client(c.BankID)
	if err != nil {
		return "", err
	}
	bctx, cancel := s.bankContext(ctx)
	defer cancel()
	resp, err := client.StartSupportHandoff(bctx, &adapterv1.StartSupportHandoffRequest{
		BankConsentId:         c.BankConsentID,
		ConversationReference: c.ID,
		Transcript:            transcript,
		Reason:                reason,
		IdempotencyKey:        idempotencyKey("handoff", c.BankID, c.ID, fmt.Sprint(c.Handovers+1)),
	})
	if err != nil {
		s.log.WarnContext(ctx, "support handoff failed", slog.String(telemetry.AttrBankID, c.BankID),
			slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		return "", err
	}
	return resp.GetCaseId(), nil
}

// pass hands control to the bank's agent on the case the handoff opened,
// and applies the events the bank sent for the case meanwhile. Its
// transaction must have called LockBankEvents first.
func (s *Service) pass(ctx context.Context, ch *change, caseID string, actor Role, metadata string) error {
	if ch.c.CaseID != "" && ch.c.CaseID != caseID {
		// The case of an earlier handover is done with: tell the bank.
		ch.notify(ActionClose, "")
	}
	ch.c.Controller = ControllerBankAgent
	ch.c.CaseID = caseID
	ch.c.Handovers++
	ch.c.Pending = nil
	ch.c.AgentDisplayName = ""
	ch.c.Assistant = assistant.State{}
	// The user waits for the agent from now: an agent who never joins
	// counts as idle too.
	ch.c.AwaitingAgentSince = ch.now
	ch.control(ActionPass, actor, metadata)
	if err := ch.system(ctx, "You're now in the queue for a person at "+s.bankName(ch.c.BankID)+". They'll answer here."); err != nil {
		return err
	}
	return s.claimParked(ctx, ch)
}

// bankName is the bank's name as its customers know it.
func (s *Service) bankName(bankID string) string {
	if b, ok := s.banks.Bank(bankID); ok && b.DisplayName != "" {
		return b.DisplayName
	}
	return "your bank"
}

// assistantHandover is the assistant passing control when the user asks
// for a person (or it did not understand twice): the case opens now, and
// the answer says so, or apologises when the bank could not open it.
func (s *Service) assistantHandover(ctx context.Context, c Conversation, user Message) answerFunc {
	reason := reasonAsked
	if c.Assistant.Misunderstood+1 >= assistant.MaxMisunderstood && assistant.Classify(user.Text) == assistant.IntentUnknown && user.Postback == nil {
		reason = reasonMisunderstood
	}
	caseID, err := s.startHandoff(ctx, c, &user, reason)
	if err != nil {
		r := assistant.HandoverFailed()
		if apierr.Reason(err) == commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED {
			r = assistant.HandoverNotSupported()
		}
		return reply(r, assistant.State{})
	}
	return func(ctx context.Context, ch *change) error {
		if _, err := ch.say(ctx, assistant.HandedOver()); err != nil {
			return err
		}
		return s.pass(ctx, ch, caseID, RoleAssistant, reason)
	}
}
