package app

import (
	"context"
	"errors"
	"slices"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// SendInput is the user's message: text, or the payload of a quick reply.
type SendInput struct {
	ClientMessageID string
	Text            string
	Postback        string
}

// PostbackField is the request field a postback's payload is in, named in
// the field violation of a payload that was not offered.
const PostbackField = "message.postback.payload"

// errNotOffered is the contract's INVALID_ARGUMENT for a postback whose
// payload the assistant's latest message did not offer.
func errNotOffered() error {
	const desc = "not one of the quick replies the assistant's last message offered"
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+PostbackField+": "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: PostbackField, Description: desc, Reason: "postback.offered"}))
}

// SendMessage adds the user's message to an open conversation. While the
// assistant holds control it answers in the same transaction, after
// fetching what the answer needs; while the agent holds it, the message
// goes to the bank through the outbox. The same client message id with
// the same content returns the stored message and does nothing again.
// Sends to one conversation take turns (turns.go), so each is answered in
// the state the one before left.
func (s *Service) SendMessage(ctx context.Context, g Grant, k ConversationKey, in SendInput) (Message, error) {
	if k.User != g.User {
		return Message{}, errNotFound()
	}
	return inTurn(ctx, s, k, func() (Message, error) {
		c, err := s.store.Conversation(ctx, k)
		if err != nil {
			return Message{}, notFound(err)
		}
		if m, err := s.store.MessageByClientID(ctx, k, in.ClientMessageID); err == nil {
			return sameMessage(m, in)
		} else if !errors.Is(err, ErrNotFound) {
			return Message{}, err
		}
		if c.State == StateClosed {
			return Message{}, errClosed()
		}
		user := Message{Role: RoleUser, Text: in.Text, ClientMessageID: in.ClientMessageID}
		if in.Postback != "" {
			i := slices.IndexFunc(c.Assistant.Offered, func(q QuickReply) bool { return q.Payload == in.Postback })
			if i < 0 {
				return Message{}, errNotOffered()
			}
			user.Postback = &Postback{Payload: in.Postback, Title: c.Assistant.Offered[i].Title}
		}
		if c.Controller == ControllerBankAgent {
			return s.sendToAgent(ctx, c, user)
		}
		dec, err := assistant.Decide(c.Assistant, assistant.Input{Text: in.Text, Postback: in.Postback})
		if errors.Is(err, assistant.ErrNotOffered) {
			return Message{}, errNotOffered()
		}
		if err != nil {
			return Message{}, err
		}
		// What the answer needs is fetched, or done at the bank, before the
		// transaction: no lock is held across a call to a bank. A retry
		// sends the same idempotency keys, so nothing is done twice.
		ans := s.answer(ctx, c, dec, user)
		var out Message
		// The version check, and the message's unique client id, make a
		// run after one that committed a conflict: the retry replays.
		err = s.store.IdempotentTx(ctx, func(tx Tx) error {
			if dec.Do == assistant.DoHandover {
				// Before the conversation, as pass needs.
				if err := tx.LockBankEvents(ctx, k.BankID); err != nil {
					return err
				}
			}
			locked, err := tx.LockConversation(ctx, k)
			if err != nil {
				return notFound(err)
			}
			if locked.Version != c.Version {
				return ErrConflict // it changed since the plan: plan again
			}
			ch := begin(tx, locked, s.stamp())
			if out, err = ch.add(ctx, user); err != nil {
				return err
			}
			if err := ans(ctx, ch); err != nil {
				return err
			}
			return ch.commit(ctx)
		})
		// On ErrConflict a concurrent send (maybe with the same client
		// message id) won: the next run answers from what it wrote.
		return out, err
	})
}

// sameMessage answers a resend: the stored message when the content is
// the same, else ALREADY_EXISTS.
func sameMessage(m Message, in SendInput) (Message, error) {
	payload := ""
	if m.Postback != nil {
		payload = m.Postback.Payload
	}
	if m.Text != in.Text || payload != in.Postback {
		return Message{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
			"client_message_id was used before in this conversation with other content")
	}
	return m, nil
}

// sendToAgent stores the user's message for the agent and queues its
// delivery to the bank in the same transaction.
func (s *Service) sendToAgent(ctx context.Context, c Conversation, user Message) (Message, error) {
	var out Message
	// The message's unique client id makes a run after one that
	// committed a conflict: the retry replays.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		locked, err := tx.LockConversation(ctx, c.ConversationKey)
		if err != nil {
			return notFound(err)
		}
		if locked.State != StateOpen || locked.Controller != ControllerBankAgent || locked.CaseID != c.CaseID {
			return ErrConflict // control changed hands since: decide again
		}
		ch := begin(tx, locked, s.stamp())
		if out, err = ch.add(ctx, user); err != nil {
			return err
		}
		if ch.c.AwaitingAgentSince.IsZero() {
			ch.c.AwaitingAgentSince = ch.now
		}
		ch.emit(TypeBankMessage, false, BankMessage{
			Conversation: ch.c.ConversationKey, MessageID: out.ID, BankConsentID: ch.c.BankConsentID, CaseID: ch.c.CaseID,
			ClientMessageID: out.ClientMessageID,
		})
		return ch.commit(ctx)
	})
	return out, err
}

// answerFunc writes the assistant's answer into the transaction that
// stores the user's message.
type answerFunc func(ctx context.Context, ch *change) error

// reply is an answerFunc that says r and leaves the assistant in st.
func reply(r assistant.Reply, st assistant.State) answerFunc {
	return func(ctx context.Context, ch *change) error {
		st.Offered = r.QuickReplies
		ch.c.Assistant = st
		_, err := ch.say(ctx, r)
		return err
	}
}

// answer carries out the assistant's decision: what it needs from the
// bank or the balance service is fetched or done now, and the returned
// function writes the answer.
func (s *Service) answer(ctx context.Context, c Conversation, dec assistant.Decision, user Message) answerFunc {
	switch dec.Do {
	case assistant.DoReply:
		return reply(dec.Reply, dec.State)
	case assistant.DoBalance:
		return reply(s.balancesReply(ctx, c), assistant.State{})
	case assistant.DoTransactions:
		lines, err := s.recentTransactions(ctx, c)
		if err != nil {
			return reply(s.failure(ctx, c, "transactions", err), assistant.State{})
		}
		ls := make([]assistant.TransactionLine, len(lines))
		for i, t := range lines {
			ls[i] = t.line()
		}
		return reply(assistant.Transactions(ls), assistant.State{})
	case assistant.DoListCards:
		cards, err := s.activeCards(ctx, c)
		if err != nil {
			return reply(s.failure(ctx, c, "list cards", err), assistant.State{})
		}
		r, st := assistant.CardsOffered(cards)
		return reply(r, st)
	case assistant.DoBlockCard:
		outcome, err := s.blockCard(ctx, c, dec.Card, user.ClientMessageID)
		if err != nil {
			return reply(s.failure(ctx, c, "block card", err), assistant.State{})
		}
		return reply(assistant.CardBlocked(dec.Card, outcome), assistant.State{})
	case assistant.DoListCharges:
		lines, err := s.recentTransactions(ctx, c)
		if err != nil {
			return reply(s.failure(ctx, c, "transactions", err), assistant.State{})
		}
		charges := make([]assistant.Charge, len(lines))
		for i, t := range lines {
			charges[i] = assistant.Charge{Account: t.Name.Account.String(), Transaction: t.Name.String(), Label: t.line().Label()}
		}
		r, st := assistant.ChargesOffered(charges)
		return reply(r, st)
	case assistant.DoReportCharge:
		if err := s.reportCharge(ctx, c, dec.Charge, user.ClientMessageID); err != nil {
			return reply(s.failure(ctx, c, "fraud report", err), assistant.State{})
		}
		return reply(assistant.ChargeReported(), assistant.State{})
	case assistant.DoHandover:
		return s.assistantHandover(ctx, c, user)
	}
	return reply(assistant.NotUnderstood(), assistant.State{})
}

// line is a transaction as the assistant shows it.
func (t Transaction) line() assistant.TransactionLine {
	return assistant.TransactionLine{Time: t.Time, Description: t.Description, Amount: t.Amount}
}
