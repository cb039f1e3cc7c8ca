package app

import (
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// State is whether a conversation takes messages.
type State string

// The conversation states, the contract's without their prefix.
const (
	StateOpen   State = "OPEN"
	StateClosed State = "CLOSED"
)

// Controller is who holds thread control.
type Controller string

// The controllers, the contract's without their prefix.
const (
	ControllerAssistant Controller = "ASSISTANT"
	ControllerBankAgent Controller = "BANK_AGENT"
)

// Role is who wrote a message or acted on a thread.
type Role string

// The participant roles, the contract's without their prefix.
const (
	RoleUser      Role = "USER"
	RoleAssistant Role = "ASSISTANT"
	RoleBankAgent Role = "BANK_AGENT"
	RoleSystem    Role = "SYSTEM"
)

// Action is one step of the handover protocol.
type Action string

// The thread control actions, the contract's without their prefix.
const (
	ActionPass        Action = "PASS"
	ActionTake        Action = "TAKE"
	ActionRequest     Action = "REQUEST"
	ActionAgentJoined Action = "AGENT_JOINED"
	// ActionClose is only told to banks (NotifyThreadControl).
	ActionClose Action = "CLOSE"
)

// ConversationKey names one conversation: users/{User}/conversations/{BankID}~{ID}.
type ConversationKey struct {
	User, BankID, ID string
}

// Name is the conversation's resource name.
func (k ConversationKey) Name() string {
	return names.BankResource{User: k.User, Collection: names.Conversations, BankID: k.BankID, ID: k.ID}.String()
}

// Resource is the conversation's name as a names.BankResource.
func (k ConversationKey) Resource() names.BankResource {
	return names.BankResource{User: k.User, Collection: names.Conversations, BankID: k.BankID, ID: k.ID}
}

// ControlRequest is one side asking the side in control to pass it.
type ControlRequest struct {
	RequestedBy Controller
	Metadata    string
	Time        time.Time
}

// Conversation is one support thread between a user and a bank.
type Conversation struct {
	ConversationKey
	// Client is the product client that opened it: its events go there.
	Client string
	// Link and BankConsentID are the consent it was opened under; every
	// call to the bank about it names BankConsentID.
	Link          string
	BankConsentID string
	State         State
	Controller    Controller
	// Pending is the request for control waiting for an answer; nil when
	// none.
	Pending          *ControlRequest
	AgentDisplayName string
	// CaseID is the bank's support case, once a handover opened one.
	CaseID string
	// Handovers counts the handovers to the agent; each one's idempotency
	// key derives from it, so a retry opens the same case.
	Handovers int
	// Assistant is the assistant's state: which flow it is in and what
	// it offered. Never taken from a client.
	Assistant assistant.State
	// AwaitingAgentSince is when the oldest user message the agent has
	// not answered was sent; zero when none.
	AwaitingAgentSince time.Time
	// LastSeq is the sequence number of the newest message.
	LastSeq int64
	// Version grows with every update: a write that planned on an older
	// version runs again.
	Version    int64
	CreateTime time.Time
	UpdateTime time.Time
}

// QuickReply is one choice the assistant offers.
type QuickReply = assistant.QuickReply

// Postback is the user picking a quick reply.
type Postback struct {
	Payload string
	Title   string
}

// Message is one message of a conversation.
type Message struct {
	Conversation ConversationKey
	ID           string
	// Seq orders the conversation's messages, from 1.
	Seq               int64
	Role              Role
	SenderDisplayName string
	Text              string
	// ClientMessageID is the user's id for the message; "" on the others'.
	ClientMessageID string
	Postback        *Postback
	QuickReplies    []QuickReply
	// BankMessageID is the bank's id of an agent's message; "" on the
	// others'.
	BankMessageID string
	CreateTime    time.Time
}

// Name is the message's resource name.
func (m Message) Name() string { return names.Message(m.Conversation.Resource(), m.ID) }

// Display is what the message says, for a transcript: its text, or the
// title (else the payload) of the quick reply it picked.
func (m Message) Display() string {
	switch {
	case m.Text != "":
		return m.Text
	case m.Postback != nil && m.Postback.Title != "":
		return m.Postback.Title
	case m.Postback != nil:
		return m.Postback.Payload
	}
	return ""
}

// ConversationFilter selects conversations to list.
type ConversationFilter struct {
	// State selects one state; "" for all.
	State State
}

// IdempotencyKey is a CreateConversation's key: the first request's hash
// and the conversation it created.
type IdempotencyKey struct {
	User, Client, Key string
	RequestHash       string
	Conversation      ConversationKey
	CreateTime        time.Time
}

// Grant is who calls, for whom, and under which consent, as the server
// kit's access check decided (access.Grant in domain form).
type Grant struct {
	User   string
	Client string
	// BankID, Link and BankConsentID are set when the call names a bank.
	BankID        string
	Link          string
	BankConsentID string
}
