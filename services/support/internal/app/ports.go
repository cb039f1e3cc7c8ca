package app

import (
	"context"
	"errors"
	"time"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// The ports the logic needs: internal/store implements Store, the adapter
// SDK's registry (*runtime.Registry) is Banks, internal/balance is
// Balances, and the platform's consent checker is Consent. The fraud files add theirs in ports_fraud.go.

// Errors a Store returns that the service acts on.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a concurrent write got there first (a unique key was
	// taken, or the database chose this transaction to fail); running the
	// whole operation again sees it.
	ErrConflict = errors.New("conflicting write")
	// ErrLeaseLost: the bank's event lease is held by another replica now;
	// the event's effect is not written.
	ErrLeaseLost = errors.New("bank event lease lost")
)

// Banks is the adapter SDK's registry: each bank's adapter as a gRPC
// client behind deadlines, breaker and rate limit, whose errors are apierr
// errors with the adapter's reason mapped and never the bank's text.
type Banks interface {
	// Client returns the bank's adapter, or NOT_FOUND (BANK_NOT_FOUND).
	Client(bankID string) (adapterv1.BankAdapterServiceClient, error)
	// Bank returns the bank's configuration.
	Bank(id string) (runtime.Bank, bool)
	// Banks returns every configured bank.
	Banks() []runtime.Bank
}

// Consent is the consent service as the support logic reaches it
// (*consentcheck.Checker).
type Consent interface {
	// CoveringLinks returns the user's VALID links covering scope for
	// purpose, one per bank.
	CoveringLinks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]consentcheck.CoveringLink, error)

	FraudConsent
}

// Balances is the balance service, called with the calling user's own
// token and purpose CUSTOMER_SUPPORT, so it checks the consent and writes
// the user's access log itself. Errors are apierr errors.
type Balances interface {
	// Accounts returns the user's accounts at the bank.
	Accounts(ctx context.Context, user, bankID string) ([]Account, error)
	// Balances returns an account's balances.
	Balances(ctx context.Context, account names.Account) ([]Balance, error)
	// Transactions returns up to n of an account's newest transactions.
	Transactions(ctx context.Context, account names.Account, n int) ([]Transaction, error)
}

// Account is one of the user's accounts, as the balance service lists it.
type Account struct {
	Name        names.Account
	DisplayName string
	Last4       string
}

// Money is an exact amount: Units and Nanos have the same sign.
type Money = assistant.Money

// Balance is one balance of an account.
type Balance struct {
	// Type is the balance type without its prefix, e.g. INTERIM_AVAILABLE.
	Type   string
	Amount Money
	// Display is the balance service's mark on the one balance a product
	// shows as "the balance" (balance.v1.Balance.display).
	Display bool
}

// Transaction is one movement on an account.
type Transaction struct {
	Name        names.Transaction
	Amount      Money
	Description string
	Time        time.Time
}

// EventPosition is where a bank's event stream resumes: right after
// Cursor, or, when there is no cursor the bank takes, with the events that
// happened from Since on.
type EventPosition struct {
	// Cursor is the cursor of the last event applied; "" before the first.
	Cursor string
	// Since is the event time of the last event applied (the bank's clock)
	// or, before the first, when the bank's lease was first taken (ours);
	// zero when unknown.
	Since time.Time
}

// Store keeps conversations, their messages, idempotency keys and the
// bank event leases; the fraud files' part is FraudStore.
type Store interface {
	// Tx runs fn in one transaction, committed when fn returns nil. A
	// write that conflicts with a concurrent one fails with ErrConflict.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// IdempotentTx is Tx for a transaction that may be run again after
	// its connection to the database was lost (a PostgreSQL restart),
	// even when that first run may have committed: fn must have the effect
	// of one run however often it runs, because its write is keyed (an
	// idempotency key, a push id), or it re-reads under lock what it
	// changes and so finds its own committed change and adds nothing.
	IdempotentTx(ctx context.Context, fn func(tx Tx) error) error

	// Conversation reads one conversation, or ErrNotFound.
	Conversation(ctx context.Context, k ConversationKey) (Conversation, error)
	// ListConversations reads the user's conversations that f selects,
	// most recently updated first (ties by bank and id, descending), after
	// the position (nil: from the first), at most limit.
	ListConversations(ctx context.Context, user string, f ConversationFilter, after *pagetoken.Position, limit int) ([]Conversation, error)
	// ListMessages reads a conversation's messages, newest first, with
	// Seq below after.Seq (nil: from the newest), at most limit.
	ListMessages(ctx context.Context, k ConversationKey, after *pagetoken.Position, limit int) ([]Message, error)
	// Message reads one message, or ErrNotFound.
	Message(ctx context.Context, k ConversationKey, id string) (Message, error)
	// MessageByClientID reads the user's message with a client message
	// id, or ErrNotFound.
	MessageByClientID(ctx context.Context, k ConversationKey, clientMessageID string) (Message, error)
	// Recall reads a CreateConversation idempotency key, or ErrNotFound.
	Recall(ctx context.Context, user, client, key string) (IdempotencyKey, error)

	// IdleConversations reads up to limit OPEN conversations the agent
	// holds with a user message unanswered since before t.
	IdleConversations(ctx context.Context, before time.Time, limit int) ([]ConversationKey, error)
	// DeleteExpired deletes messages created before messagesBefore and
	// idempotency keys made before keysBefore; it returns how many
	// messages went.
	DeleteExpired(ctx context.Context, messagesBefore, keysBefore time.Time) (int, error)

	// AcquireLease takes the bank's event lease for holder until until,
	// when it is free (never held, lapsed before now, or held by holder
	// already), and returns the stored position; ok is false when another
	// holder has it. The first time the bank's lease is taken (no position
	// stored yet) it stores now as the position's Since, so the stream
	// starts there until the first event is applied.
	AcquireLease(ctx context.Context, bankID, holder string, now, until time.Time) (pos EventPosition, ok bool, err error)
	// RenewLease extends holder's lease; false when holder lost it.
	RenewLease(ctx context.Context, bankID, holder string, until time.Time) (bool, error)
	// ReleaseLease lets holder's lease lapse at once, keeping the cursor.
	ReleaseLease(ctx context.Context, bankID, holder string) error
	// DeleteParkedBefore deletes the kept events of unknown cases received
	// before t; it returns how many went.
	DeleteParkedBefore(ctx context.Context, t time.Time) (int, error)

	FraudStore
}

// Tx is one transaction of the support logic. A conversation it locks
// stays locked until it ends (on PostgreSQL; SQLite's write transactions
// take turns).
type Tx interface {
	// LockConversation reads a conversation and locks it, or ErrNotFound.
	LockConversation(ctx context.Context, k ConversationKey) (Conversation, error)
	// ConversationByCase reads and locks the conversation of a bank's
	// support case, or ErrNotFound.
	ConversationByCase(ctx context.Context, bankID, caseID string) (Conversation, error)
	// LinkConversations reads and locks the user's conversations opened
	// under link.
	LinkConversations(ctx context.Context, user, link string) ([]Conversation, error)
	// InsertConversation stores a new conversation.
	InsertConversation(ctx context.Context, c Conversation) error
	// UpdateConversation writes a locked conversation's mutable fields.
	UpdateConversation(ctx context.Context, c Conversation) error
	// DeleteConversation deletes a conversation with its messages and
	// idempotency keys.
	DeleteConversation(ctx context.Context, k ConversationKey) error

	// InsertMessage stores a message: ErrConflict when its client message
	// id, or its bank message id, is taken in the conversation.
	InsertMessage(ctx context.Context, m Message) error
	// MessageByClientID reads the user's message with a client message
	// id, or ErrNotFound.
	MessageByClientID(ctx context.Context, k ConversationKey, clientMessageID string) (Message, error)
	// HasBankMessage reports whether an agent's message with the bank's
	// id is stored in the conversation.
	HasBankMessage(ctx context.Context, k ConversationKey, bankMessageID string) (bool, error)
	// LastMessages reads up to n of the conversation's newest messages,
	// oldest first.
	LastMessages(ctx context.Context, k ConversationKey, n int) ([]Message, error)

	// Remember stores an idempotency key: ErrConflict when it is taken.
	Remember(ctx context.Context, k IdempotencyKey) error

	// SetCursor stores the bank's event position (the last event applied),
	// when holder still holds its lease; else ErrLeaseLost.
	SetCursor(ctx context.Context, bankID, holder string, pos EventPosition) error

	// LockBankEvents makes the transaction take turns with the bank's
	// event consumer: call it first, before any conversation is locked.
	LockBankEvents(ctx context.Context, bankID string) error
	// ParkCaseEvent keeps a bank's event (protojson of
	// adapterv1.StreamEventsResponse) for a case no conversation names
	// yet, after the case's others.
	ParkCaseEvent(ctx context.Context, bankID, caseID string, event []byte, at time.Time) error
	// TakeParkedCaseEvents reads and deletes the events kept for a case,
	// in the order they arrived.
	TakeParkedCaseEvents(ctx context.Context, bankID, caseID string) ([][]byte, error)

	// AddEvent writes an event to the outbox; call it last.
	AddEvent(ctx context.Context, e Event) error

	FraudTx
}
