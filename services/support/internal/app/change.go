package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// change is one transaction's writes to one locked conversation: messages
// stored as they are added, the conversation and the events written by
// commit, events last (the outbox orders a user's events from its first
// write to the commit).
type change struct {
	tx     Tx
	c      Conversation
	now    time.Time
	events []Event
}

// begin starts a change of c, locked in tx, at now.
func begin(tx Tx, c Conversation, now time.Time) *change {
	c.UpdateTime = now
	return &change{tx: tx, c: c, now: now}
}

// add stores m as the conversation's next message and its
// support.message.added event.
func (ch *change) add(ctx context.Context, m Message) (Message, error) {
	ch.c.LastSeq++
	m.Conversation, m.Seq, m.ID, m.CreateTime = ch.c.ConversationKey, ch.c.LastSeq, newID(), ch.now
	if err := ch.tx.InsertMessage(ctx, m); err != nil {
		return Message{}, err
	}
	ch.emit(TypeMessageAdded, true, MessageAdded{Message: m})
	return m, nil
}

// say adds an assistant message, and makes its quick replies the only
// postbacks accepted next.
func (ch *change) say(ctx context.Context, r assistant.Reply) (Message, error) {
	ch.c.Assistant.Offered = r.QuickReplies
	return ch.add(ctx, Message{Role: RoleAssistant, SenderDisplayName: AssistantName, Text: r.Text, QuickReplies: r.QuickReplies})
}

// system adds a SYSTEM message.
func (ch *change) system(ctx context.Context, text string) error {
	_, err := ch.add(ctx, Message{Role: RoleSystem, Text: text})
	return err
}

// control records a thread control event with the conversation as it is
// now.
func (ch *change) control(action Action, actor Role, metadata string) {
	ch.emit(TypeControlChanged, true, ControlChanged{Conversation: ch.c, Action: action, Actor: actor, Metadata: metadata})
}

// closed records the conversation's closing event.
func (ch *change) closed(by Role) {
	ch.emit(TypeConversationClosed, true, ConversationClosed{Conversation: ch.c, ClosedBy: by})
}

// notify queues a NotifyThreadControl for the bank, through the outbox.
func (ch *change) notify(action Action, metadata string) {
	if ch.c.CaseID == "" {
		return
	}
	ch.emit(TypeBankThreadControl, false, BankThreadControl{
		BankID: ch.c.BankID, BankConsentID: ch.c.BankConsentID, CaseID: ch.c.CaseID, Action: action, Metadata: metadata,
		IdempotencyKey: idempotencyKey("notify", ch.c.BankID, ch.c.ID, ch.c.CaseID, string(action), fmt.Sprint(ch.c.Version+1), fmt.Sprint(len(ch.events))),
	})
}

// emit records an event; public ones go to the conversation creator's
// client (webhooks), internal ones to nobody.
func (ch *change) emit(typ string, public bool, payload any) {
	e := Event{ID: newEventID(), Type: typ, User: ch.c.User, Resource: ch.c.Name(), Time: ch.now, Payload: payload}
	if public {
		e.Client = ch.c.Client
	}
	ch.events = append(ch.events, e)
}

// commit writes the conversation, then the events.
func (ch *change) commit(ctx context.Context) error {
	ch.c.Version++
	if err := ch.tx.UpdateConversation(ctx, ch.c); err != nil {
		return err
	}
	return ch.writeEvents(ctx)
}

// writeEvents writes the recorded events to the outbox.
func (ch *change) writeEvents(ctx context.Context) error {
	for _, e := range ch.events {
		if err := ch.tx.AddEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// AssistantName is the assistant's display name on its messages.
const AssistantName = "bankbridge assistant"
