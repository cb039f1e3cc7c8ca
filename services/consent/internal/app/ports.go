package app

import (
	"context"
	"errors"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
)

// Errors a Store returns that the service acts on.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrIdempotencyKeyTaken: InsertIdempotency found the key already used.
	ErrIdempotencyKeyTaken = errors.New("idempotency key already used")
)

// Reader is what the service reads outside transactions.
type Reader interface {
	// Link returns one link as stored, or ErrNotFound.
	Link(ctx context.Context, user, id string) (Link, error)
	// ListLinks returns up to limit of the user's links that match f, newest
	// first, starting after the cursor (nil for the first page).
	ListLinks(ctx context.Context, user string, f LinkFilter, after *LinkCursor, limit int) ([]Link, error)
	// UserLinks returns all of the user's links, at bankID only unless it
	// is empty.
	UserLinks(ctx context.Context, user, bankID string) ([]Link, error)
	// BankConsentLinks returns every link of bankID whose bank consent id
	// is bankConsentID, of any user and in any state.
	BankConsentLinks(ctx context.Context, bankID, bankConsentID string) ([]Link, error)
	// Idempotency returns the record of a key, or ErrNotFound.
	Idempotency(ctx context.Context, user, operation, key string) (Idempotency, error)
	// AccessLog returns up to limit of the user's entries that match f,
	// newest first, with a sequence below beforeSeq (0 for the first page).
	AccessLog(ctx context.Context, user string, f AccessFilter, beforeSeq int64, limit int) ([]AccessEntry, error)
	// AccessChain returns up to limit of the user's entries with a sequence
	// above afterSeq, oldest first, as stored: for the verifier.
	AccessChain(ctx context.Context, user string, afterSeq int64, limit int) ([]AccessEntry, error)
	// AccessByTrace returns up to limit entries of any user recorded under
	// traceID, oldest first.
	AccessByTrace(ctx context.Context, traceID string, limit int) ([]AccessEntry, error)
	// AccessHead returns the head of the user's chain: the sequence and hash
	// of the last entry appended, and its signature. A user without entries
	// has a zero head.
	AccessHead(ctx context.Context, user string) (ChainHead, error)
	// UnsignedHeads returns up to limit users, in order, after the given
	// one, whose chain head is ahead of its signature: entries await
	// signing.
	UnsignedHeads(ctx context.Context, after string, limit int) ([]string, error)
	// AccessUsers returns up to limit users, in order, after the given
	// one, who have an access log entry or a chain head.
	AccessUsers(ctx context.Context, after string, limit int) ([]string, error)
	// LinksToWarn returns up to limit VALID links that expire after now and
	// at or before horizon and have no expiry warning yet.
	LinksToWarn(ctx context.Context, now, horizon time.Time, limit int) ([]Link, error)
	// ListPartnerOptIns returns up to limit of the user's partner opt-ins,
	// newest first, starting after the cursor (nil for the first page).
	ListPartnerOptIns(ctx context.Context, user string, after *OptInCursor, limit int) ([]PartnerOptIn, error)
	// PartnerOptInByPartnerUserID returns the opt-in of partner that
	// carries partnerUserID, in any state, or ErrNotFound: also when the
	// id belongs to another partner's opt-in.
	PartnerOptInByPartnerUserID(ctx context.Context, partner, partnerUserID string) (PartnerOptIn, error)
}

// Store is the consent service's persistence.
type Store interface {
	Reader
	AbuseStore
	// Tx runs fn in one transaction and publishes the state changes it
	// made once it commits. When the transaction conflicts with another,
	// Tx may run fn again: fn must do nothing outside tx.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// IdempotentTx is Tx for a transaction that may be run again after
	// its connection to the database was lost (a PostgreSQL restart),
	// even when that first run may have committed: fn must have the effect
	// of one run however often it runs, because its write is keyed (an
	// idempotency key, a push id), or it re-reads under lock what it
	// changes and so finds its own committed change and adds nothing.
	IdempotentTx(ctx context.Context, fn func(tx Tx) error) error
	// UserReference returns the pseudonymous reference of user at bankID,
	// making one with newRef when there is none yet.
	UserReference(ctx context.Context, user, bankID string, newRef func() string) (string, error)
	// AppendAccess appends entries to the access logs of users, all in one
	// transaction (group commit). It locks the chain heads of users, so
	// that appends for a user are serialised across replicas, calls build
	// with them (a user without entries has a zero head), and stores the
	// entries build returns, each user's in chain order, moving each
	// user's head to its last entry, with the signature build returns for
	// it, if any (keeping the head's signature otherwise). build may be
	// called again when the transaction conflicts with another and is
	// retried.
	AppendAccess(ctx context.Context, users []string, build func(heads map[string]ChainHead) ([]AccessEntry, map[string]HeadSignature, error)) error
	// SignHeads locks the chain heads of users, calls sign with them and,
	// for each, the entries from the one its signature covers (from the
	// first when it has none) to the head, oldest first, and stores the
	// signatures sign returns, each of which must cover its head.
	SignHeads(ctx context.Context, users []string, sign func(heads map[string]ChainHead, tails map[string][]AccessEntry) (map[string]HeadSignature, error)) error
	// StoreHeadSignatures stores, for each user, the signature in
	// heads[user].Signed on the user's chain head, provided that head is
	// still at heads[user].Sequence and Hash and not yet signed up to
	// there; a head that moved meanwhile is left as it is. It returns the
	// users whose signature it stored.
	StoreHeadSignatures(ctx context.Context, heads map[string]ChainHead) ([]string, error)
	// ExpireLinks ends, as of now, the VALID links whose consent expired
	// (EXPIRED) and the RECEIVED links whose challenge expired (REJECTED),
	// and returns how many it changed.
	ExpireLinks(ctx context.Context, now time.Time) (int, error)
	// DeleteIdempotency forgets keys recorded before cutoff, and the holds
	// of keys that lapsed before it.
	DeleteIdempotency(ctx context.Context, cutoff time.Time) (int, error)
	// HoldKey records that h.Holder is answering the request of h's key,
	// until h.ExpireTime, unless another call holds the key and its hold
	// has not lapsed at now: then it returns that hold and false (or a
	// zero hold and false when the key was released meanwhile). The hold
	// is visible to every call (every replica) as soon as it returns.
	HoldKey(ctx context.Context, h KeyHold, now time.Time) (held KeyHold, ok bool, err error)
	// ReleaseKey deletes h's hold, unless another holder took it over.
	ReleaseKey(ctx context.Context, h KeyHold) error
	// Subscribe returns a channel that receives every committed state
	// change until ctx ends or the subscriber falls behind, when it is
	// closed.
	Subscribe(ctx context.Context) <-chan Change
}

// Tx is a transaction.
type Tx interface {
	AbuseTx
	// LockLink reads a link and locks it until the transaction ends, or
	// returns ErrNotFound.
	LockLink(ctx context.Context, user, id string) (Link, error)
	// LockValidLinks reads and locks the user's VALID links at bankID.
	LockValidLinks(ctx context.Context, user, bankID string) ([]Link, error)
	// InsertLink stores a new link.
	InsertLink(ctx context.Context, l Link) error
	// SaveLink stores a locked link's new fields; a change of state is
	// published once the transaction commits.
	SaveLink(ctx context.Context, l Link) error
	// InsertIdempotency records a key, or returns ErrIdempotencyKeyTaken.
	InsertIdempotency(ctx context.Context, rec Idempotency) error
	// AddExpiryWarning writes the consent.link.expiring event to the
	// outbox, in this transaction.
	AddExpiryWarning(ctx context.Context, w ExpiryWarning) error
	// AddRevocation writes the consent.link.revoked event to the outbox,
	// in this transaction.
	AddRevocation(ctx context.Context, r Revocation) error
	// LockActivePartnerOptIn reads the user's ACTIVE opt-in to partner and
	// locks it until the transaction ends, or returns ErrNotFound.
	LockActivePartnerOptIn(ctx context.Context, user, partner string) (PartnerOptIn, error)
	// LockPartnerOptIn reads one opt-in and locks it until the
	// transaction ends, or returns ErrNotFound.
	LockPartnerOptIn(ctx context.Context, user, id string) (PartnerOptIn, error)
	// InsertPartnerOptIn stores a new opt-in, published as a change once
	// the transaction commits. A second ACTIVE opt-in of the user to the
	// partner, or a partner user id taken already, fails as a conflict,
	// which Tx retries.
	InsertPartnerOptIn(ctx context.Context, o PartnerOptIn) error
	// SavePartnerOptIn stores a locked opt-in's new state; a change of
	// state is published once the transaction commits.
	SavePartnerOptIn(ctx context.Context, o PartnerOptIn) error
	// AddOptInEvent writes a partner opt-in's event (its Type) to the
	// outbox, in this transaction.
	AddOptInEvent(ctx context.Context, e OptInEvent) error
}

// LinkFilter narrows ListLinks. Zero fields match everything. State is
// matched as of Now (see Link.At).
type LinkFilter struct {
	State  State
	BankID string
	Now    time.Time
}

// LinkCursor is where a page of links ends.
type LinkCursor struct {
	CreateTime time.Time
	ID         string
}

// AccessFilter narrows AccessLog. Zero fields match everything; Start is
// inclusive and End exclusive.
type AccessFilter struct {
	Start, End time.Time
	Outcome    Outcome
}

// ChainHead is the last entry of a user's access log chain.
type ChainHead struct {
	Sequence int64
	Hash     string
	// Signed is the signature of the chain at Signed.Sequence: at Sequence
	// when the head is signed, before it while later entries await
	// signing, zero when none is signed.
	Signed HeadSignature
}

// HeadSignature is a signature of a user's chain up to an entry: of
// HeadMessage(user, Sequence, that entry's hash), by HeadSigner.
type HeadSignature struct {
	// Sequence is the entry signed; 0 for no signature.
	Sequence int64
	// KeyVersion is the version of the signing key that made it.
	KeyVersion int
	// Value is the signature, as the signer encodes it.
	Value string
}

// HeadSigner signs chain heads with a key the database does not hold, so
// that someone who can write to the database but not use the key cannot
// rewrite a chain unnoticed (the service uses a Vault Transit key).
type HeadSigner interface {
	// Sign signs every message, in one request, and returns the
	// signatures in order, their Sequence unset.
	Sign(ctx context.Context, messages [][]byte) ([]HeadSignature, error)
	// Verify checks that sig (its Sequence aside) signs message. It
	// returns nil, an error matching ErrSignatureInvalid that says why
	// not, or any other error when it could not tell (the key could not
	// be read).
	Verify(ctx context.Context, message []byte, sig HeadSignature) error
}

// ErrSignatureInvalid: a chain head's signature does not verify.
var ErrSignatureInvalid = errors.New("the signature does not verify")

// Idempotency records the answer to a request that carried an idempotency
// key, so that a retry gets the same answer.
type Idempotency struct {
	User, Operation, Key string
	// RequestHash fingerprints the request, to refuse the key's reuse for
	// another request: HMAC-SHA256 under the current code key (Keys.Code)
	// over every field of the request, so that it gives away no code.
	RequestHash string
	// LinkID is the link the request acted on.
	LinkID string
	// ErrReason is the reason of the error the request ended with, e.g.
	// "SCA_FAILED", or "" when it succeeded.
	ErrReason string
	// AttemptsRemaining goes with ErrReason SCA_FAILED.
	AttemptsRemaining int
	CreateTime        time.Time
}

// KeyHold is a call answering a keyed request right now: other calls
// with the same key wait for its answer (Service.awaitKey).
type KeyHold struct {
	User, Operation, Key string
	// RequestHash fingerprints the request, as Idempotency.RequestHash.
	RequestHash string
	// Holder names the call, so that it releases only its own hold.
	Holder string
	// ExpireTime is when the hold lapses, should its call die.
	ExpireTime time.Time
}

// The event types the consent service writes (events.Event.Type).
const (
	// EventLinkExpiring: a VALID link expires within ExpiryWarning.
	EventLinkExpiring = "consent.link.expiring"
	// EventLinkRevoked: a link became REVOKED.
	EventLinkRevoked = "consent.link.revoked"
)

// ExpiryWarning is the event written to the outbox 7 days before a VALID
// link expires: EventLinkExpiring, whose payload is
// bankbridge.consent.v1.ConsentExpiryWarning.
type ExpiryWarning struct {
	EventID      string
	User, LinkID string
	// Client is the client the link was created through; its webhooks get
	// the event.
	Client     string
	BankID     string
	Scopes     []commonv1.Scope
	ExpireTime time.Time
	EventTime  time.Time
}

// Revocation is the event written to the outbox when a link becomes
// REVOKED: EventLinkRevoked, whose payload is
// bankbridge.consent.v1.ConsentLinkRevoked. The service's own worker tells
// the bank from it (RunBankRevocations).
type Revocation struct {
	EventID       string
	User, LinkID  string
	Client        string
	BankID        string
	RevokedByBank bool
	RevokeTime    time.Time
	EventTime     time.Time
}

// Bus is the event bus, from which the service's workers read the events
// its outbox published.
type Bus interface {
	// Consume hands every event that matches f to handle, through the
	// durable consumer named durable, until ctx ends: an event whose
	// handle returns nil is done; one whose handle fails is delivered
	// again later, with backoff. What a consumer had not finished when
	// its process stopped is delivered again when it starts anew.
	Consume(ctx context.Context, durable string, f events.Filter, handle func(context.Context, events.Delivered) error) error
}

// Banks reaches the banks' adapters. Errors are apierr errors as the
// adapter client maps them (BANK_NOT_FOUND, BANK_UNAVAILABLE, SCA_FAILED,
// ...), which the service passes on or acts on.
type Banks interface {
	// Bank describes a configured bank, or fails with NOT_FOUND
	// (BANK_NOT_FOUND).
	Bank(id string) (BankInfo, error)
	// StartSca creates a consent at the bank and starts its challenge.
	StartSca(ctx context.Context, bankID string, r StartScaRequest) (Challenge, error)
	// VerifySca answers or polls the challenge.
	VerifySca(ctx context.Context, bankID string, r VerifyScaRequest) (VerifyScaResult, error)
	// RevokeConsent deletes the consent at the bank.
	RevokeConsent(ctx context.Context, bankID, bankConsentID string) error
	// ExtendConsent extends a valid consent, or starts the challenge the
	// bank wants first; a bank without the capability fails with
	// UNIMPLEMENTED (CAPABILITY_NOT_SUPPORTED).
	ExtendConsent(ctx context.Context, bankID string, r ExtendConsentRequest) (Extension, error)
}

// ExtendConsentRequest asks a bank to extend a consent.
type ExtendConsentRequest struct {
	BankConsentID  string
	ValidUntil     time.Time
	IdempotencyKey string
}

// Extension is a bank's answer to ExtendConsent: either the consent's new
// validity, or (Challenge set) the SCA challenge the bank started on the
// same consent, which VerifySca completes.
type Extension struct {
	ValidUntil time.Time
	Challenge  *Challenge
}

// BankInfo describes a configured bank.
type BankInfo struct {
	ID, DisplayName string
}

// StartScaRequest asks a bank for a consent and its challenge.
type StartScaRequest struct {
	// UserReference is the user's pseudonym at this bank.
	UserReference string
	// LoginHint is the user's login id at the bank; never logged, and
	// stored only as a keyed hash (Link.LoginHash).
	LoginHint       string
	Scopes          []commonv1.Scope
	ValidUntil      time.Time
	PreferredMethod ScaMethod
	IdempotencyKey  string
}

// Challenge is the challenge a bank started.
type Challenge struct {
	BankConsentID string
	Method        ScaMethod
	Instruction   string
	ExpireTime    time.Time
	RedirectURI   string
	// AttemptsAllowed is the bank's limit of wrong codes; 0 when it does
	// not say.
	AttemptsAllowed int
}

// VerifyScaRequest answers or polls a challenge.
type VerifyScaRequest struct {
	BankConsentID string
	// Code is the one-time code; never stored or logged.
	Code           string
	IdempotencyKey string
}

// VerifyScaResult is where the challenge is: STARTED, FINALISED or FAILED.
type VerifyScaResult struct {
	Status ScaStatus
	// BankConsentID is the consent's id from now on (the bank may issue a
	// new one on completion).
	BankConsentID string
	// ValidUntil is, when FINALISED, until when the bank honours the consent.
	ValidUntil time.Time
}
