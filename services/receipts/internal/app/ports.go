package app

import (
	"context"
	"errors"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// The ports the logic needs: internal/store implements Store,
// internal/banks implements Banks, and the platform's consent checker
// (*consentcheck.Checker) is Consent.

// Errors a Store returns that the service acts on.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a concurrent write got there first (a unique key was
	// taken); running the whole operation again sees it.
	ErrConflict = errors.New("conflicting write")
)

// Consent is the consent service as the receipts logic reaches it: the
// partner opt-ins, the links that cover reading a user's banks, and the
// user's access log.
type Consent interface {
	// ResolvePartner turns a partner-scoped user id into the user, when
	// the user opted in to the partner for scope; else an apierr
	// PERMISSION_DENIED (CONSENT_REQUIRED, CONSENT_REVOKED); UNAVAILABLE
	// (CONSENT_UNAVAILABLE) with RetryInfo when the consent service cannot
	// be reached in time, which the caller passes on as it is; a masked
	// INTERNAL for any other failure to answer.
	ResolvePartner(ctx context.Context, partner, partnerUserID string, scope commonv1.Scope) (PartnerUser, error)
	// CoveringLinks returns the user's VALID links covering scope for
	// purpose, one per bank.
	CoveringLinks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]CoveringLink, error)
	// Decide answers whether the user's consent covers need for purpose
	// (need.BankID "": at any bank), else the apierr refusal
	// (CONSENT_REQUIRED, CONSENT_REVOKED, ...).
	Decide(ctx context.Context, user string, need access.Need, purpose commonv1.Purpose) (access.Decision, error)
	// Record appends e to the user's access log, durably; an error means
	// it is not recorded.
	Record(ctx context.Context, e access.Entry) error
	// AllChanges returns every committed consent change of every user
	// until cancel is called.
	AllChanges() (ch <-chan Change, cancel func())
}

// PartnerUser is the user behind a partner-scoped id.
type PartnerUser = consentcheck.PartnerUser

// CoveringLink is a VALID link that covers a scope and purpose.
type CoveringLink = consentcheck.CoveringLink

// Change is one committed consent change: a link's new ConsentState, a
// partner opt-in's new PartnerOptInState, or, alone, Resync (changes may
// have been missed: reconcile).
type Change = consentcheck.Change

// Banks is the port to the banks' adapters, in domain types. Errors are
// apierr errors with the adapter's reason already mapped; their text never
// comes from the bank.
type Banks interface {
	// ListAccounts returns the ids of the accounts the bank consent covers.
	ListAccounts(ctx context.Context, at BankAccess) ([]string, error)
	// SyncTransactions returns up to count changes to one account's
	// transactions since the bank's cursor ("" for all).
	SyncTransactions(ctx context.Context, at BankAccess, bankAccountID, cursor string, count int) (TransactionChanges, error)
	// GetPurchaseDetails returns what a card transaction bought, as the
	// card issuer knows it: NOT_FOUND when it does not, UNIMPLEMENTED
	// (CAPABILITY_NOT_SUPPORTED) when the bank never does.
	GetPurchaseDetails(ctx context.Context, at BankAccess, bankAccountID, transactionID string) (PurchaseDetails, error)
}

// BankAccess is what every call to a bank carries.
type BankAccess struct {
	BankID        string
	BankConsentID string
	Purpose       commonv1.Purpose
}

// Transaction is one movement of money on an account, as much of it as
// matching needs.
type Transaction struct {
	ID string
	// PendingID, for a booked transaction that replaced a pending one, is
	// the pending one's id.
	PendingID string
	Booked    bool
	// Amount is negative when money leaves the account.
	Amount Money
	// Time is when it happened, when the bank knows; else zero.
	Time time.Time
	// BookingDate and ValueDate are midnight UTC of the day; zero when
	// not given.
	BookingDate, ValueDate time.Time
	CounterpartyName       string
	// BankCardID and CardLast4 are set for card payments.
	BankCardID string
	CardLast4  string
}

// When is the transaction's time for matching: its time, else its
// booking date, else its value date.
func (t Transaction) When() time.Time {
	switch {
	case !t.Time.IsZero():
		return t.Time
	case !t.BookingDate.IsZero():
		return t.BookingDate
	}
	return t.ValueDate
}

// Card reports a card payment that took money: the kind of transaction a
// receipt can belong to.
func (t Transaction) Card() bool {
	return (t.BankCardID != "" || t.CardLast4 != "") && (t.Amount.Units < 0 || t.Amount.Nanos < 0)
}

// TransactionChanges are the changes to an account's transactions since a
// cursor.
type TransactionChanges struct {
	Added, Modified []Transaction
	Removed         []string
	NextCursor      string
	HasMore         bool
}

// PurchaseDetails is what a card issuer knows of a card purchase.
type PurchaseDetails struct {
	MerchantName string
	OrderNumber  string
	PurchaseTime time.Time
	LineItems    []LineItem
	Subtotal     *Money
	ShippingCost *Money
	Tax          *Money
	Adjustments  []Adjustment
	Total        Money
}

// Store keeps receipts, match jobs, idempotency keys and the issuer sync's
// bookkeeping.
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
	// Recall reads a partner's idempotency key, or ErrNotFound.
	Recall(ctx context.Context, partner, key string) (IdempotencyKey, error)

	// Receipt reads one version of the user's receipt, with AmendedBy, or
	// ErrNotFound.
	Receipt(ctx context.Context, user, id string) (Receipt, error)
	// ListReceipts reads the latest versions of the user's receipts that
	// f selects, newest purchase first (ties by id, descending), after
	// the position (nil: from the first), at most limit.
	ListReceipts(ctx context.Context, user string, f Filter, after *pagetoken.Position, limit int) ([]Receipt, error)
	// DeleteChain deletes every version of the receipt id belongs to, or
	// answers ErrNotFound.
	DeleteChain(ctx context.Context, user, id string) error

	// ClaimMatchJobs claims up to limit jobs due at now, pushing them to
	// now+lease so no other worker takes them meanwhile.
	ClaimMatchJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]MatchJob, error)
	// RescheduleMatch sets a job's attempts and next time.
	RescheduleMatch(ctx context.Context, job MatchJob) error
	// DropMatchJob forgets a job.
	DropMatchJob(ctx context.Context, user, receiptID string) error
	// SetMatch records m on an unmatched receipt, drops its job and adds
	// the event, in one transaction; false when the receipt is gone or
	// matched already.
	SetMatch(ctx context.Context, user, receiptID string, m Match, e Event) (bool, error)

	// IssuerKnown reports which of the transactions (names) have an
	// issuer's receipt or were asked about without one.
	IssuerKnown(ctx context.Context, user string, transactions []string) (map[string]bool, error)
	// AddIssuerReceipt stores an issuer's receipt with its events, in one
	// transaction; false when the transaction has one already.
	AddIssuerReceipt(ctx context.Context, r Receipt, events []Event) (bool, error)
	// AddIssuerMiss remembers that the issuer has no details for a
	// transaction (name), at t.
	AddIssuerMiss(ctx context.Context, user, transaction string, t time.Time) error
	// IssuerSyncTime is when the user's issuer receipts were last synced;
	// zero for never.
	IssuerSyncTime(ctx context.Context, user string) (time.Time, error)
	// SetIssuerSyncTime records a sync of the user's issuer receipts; the
	// zero time forgets the user until the next sync.
	SetIssuerSyncTime(ctx context.Context, user string, t time.Time) error
	// UsersToSync returns up to limit users last synced before t, oldest
	// first.
	UsersToSync(ctx context.Context, before time.Time, limit int) ([]string, error)

	// DeleteExpired deletes receipts purchased before receiptsBefore,
	// idempotency keys made before keysBefore, and issuer misses before
	// missesBefore; it returns how many receipts went.
	DeleteExpired(ctx context.Context, receiptsBefore, keysBefore, missesBefore time.Time) (int, error)
	// DeletePartnerReceipts deletes the receipts the partner sent for the
	// user (only those sent to partnerUserID, unless it is ""), their
	// match jobs and the partner's idempotency keys for the user.
	DeletePartnerReceipts(ctx context.Context, user, partner, partnerUserID string) (int, error)
	// DeleteUserReceipts deletes every receipt of the user, with
	// everything kept about them.
	DeleteUserReceipts(ctx context.Context, user string) (int, error)
	// DeleteLinkReceipts deletes the issuer receipts read under link.
	DeleteLinkReceipts(ctx context.Context, user, link string) (int, error)
	// PartnerSubjects returns up to limit partner-scoped ids with stored
	// receipts, in order, after the given one (zero: from the first).
	PartnerSubjects(ctx context.Context, after PartnerSubject, limit int) ([]PartnerSubject, error)
	// UsersWithReceipts returns up to limit users with receipts, in
	// order, after the given one.
	UsersWithReceipts(ctx context.Context, after string, limit int) ([]string, error)
}

// Tx is an ingest's transaction.
type Tx interface {
	// PartnerReceipt reads the version the partner stored under
	// partnerReceiptID for the user, or ErrNotFound.
	PartnerReceipt(ctx context.Context, user, partner, partnerReceiptID string) (Receipt, error)
	// AmendedBy returns the ID of the version that amends id, or "".
	AmendedBy(ctx context.Context, user, id string) (string, error)
	// Insert stores a new receipt version: ErrConflict when its partner
	// receipt id is taken, or the version it amends was amended already.
	Insert(ctx context.Context, r Receipt) error
	// QueueMatch adds a match job.
	QueueMatch(ctx context.Context, job MatchJob) error
	// Remember stores an idempotency key: ErrConflict when it is taken.
	Remember(ctx context.Context, k IdempotencyKey) error
	// AddEvent writes an event to the outbox; call it last.
	AddEvent(ctx context.Context, e Event) error
}
