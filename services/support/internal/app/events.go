package app

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// The event types the service writes to its outbox. The first three are
// the conversation stream's (and webhooks', through Event.Client); the
// bank ones are internal work for the outbound worker (no Client, so no
// webhook, and no stream reads them).
const (
	TypeMessageAdded       = "support.message.added"
	TypeControlChanged     = "support.control.changed"
	TypeConversationClosed = "support.conversation.closed"

	TypeBankMessage       = "support.bank.message"
	TypeBankThreadControl = "support.bank.thread_control"
)

// ConversationTypes are the event types StreamConversation serves.
func ConversationTypes() []string {
	return []string{TypeMessageAdded, TypeControlChanged, TypeConversationClosed}
}

// Event is one thing that happened, written to the outbox with the change.
// Payload is one of MessageAdded, ControlChanged, ConversationClosed,
// BankMessage, BankThreadControl, or a payload of the fraud files;
// internal/supportpb turns it into the bytes on the bus.
type Event struct {
	ID       string
	Type     string
	User     string
	Client   string
	Resource string
	Time     time.Time
	Payload  any
}

// MessageAdded is a message added to a conversation.
type MessageAdded struct {
	Message Message
}

// ControlChanged is a thread control event; Conversation is as it now is.
type ControlChanged struct {
	Conversation Conversation
	Action       Action
	Actor        Role
	Metadata     string
}

// ConversationClosed is a conversation's last event.
type ConversationClosed struct {
	Conversation Conversation
	ClosedBy     Role
}

// BankMessage asks the outbound worker to pass a user's message to the
// agent on the conversation's case. It carries no text: the worker reads
// the message, and drops the work when the message is gone.
type BankMessage struct {
	Conversation    ConversationKey
	MessageID       string
	BankConsentID   string
	CaseID          string
	ClientMessageID string
}

// BankThreadControl asks the outbound worker to tell the bank what the
// assistant did to a case's thread (NotifyThreadControl).
type BankThreadControl struct {
	BankID         string
	BankConsentID  string
	CaseID         string
	Action         Action
	Metadata       string
	IdempotencyKey string
}

// newEventID returns a random opaque event id.
func newEventID() string { return newID() }

// newID returns a random opaque id: 32 hex digits, naming nothing.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
