package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// The domain: what the receipts service knows of a receipt, whatever the
// public contract or the adapter protocol call its parts. Enum values are
// the contract's names without their prefix, so each side maps them by
// name.

// The event types the service writes to the outbox.
const (
	EventCreated = "receipts.receipt.created"
	EventMatched = "receipts.receipt.matched"
)

// Money is an exact amount: Units whole units and Nanos billionths of the
// currency, both of the same sign.
type Money struct {
	CurrencyCode string
	Units        int64
	Nanos        int32
}

// MaskedNumber is a card or account number as it may be kept: its last
// four characters and a display form.
type MaskedNumber struct {
	Last4   string
	Display string
}

// PaymentMethod is how a purchase was paid.
type PaymentMethod struct {
	// Type is CARD, BANK_TRANSFER, DIRECT_DEBIT, WALLET, BUY_NOW_PAY_LATER
	// or OTHER.
	Type string
	// MaskedNumber is nil when the payer gave none.
	MaskedNumber *MaskedNumber
	// CardNetwork is VISA, MASTERCARD, ...; "" when unknown.
	CardNetwork string
}

// LineItem is one line of a receipt.
type LineItem struct {
	Title     string
	Subtitle  string
	Quantity  int32
	UnitPrice Money
	ImageURL  string
}

// Adjustment is a discount or credit, a positive amount taken off.
type Adjustment struct {
	Name   string
	Amount Money
}

// Summary holds a receipt's sums; nil amounts are unset.
type Summary struct {
	Subtotal     *Money
	ShippingCost *Money
	TotalTax     *Money
	TotalCost    Money
}

// Address is where goods were shipped.
type Address struct {
	Street1, Street2, City, PostalCode, State, Country string
}

// Content is what a receipt says about the purchase: what its sender
// gave, never changed once stored.
type Content struct {
	MerchantName  string
	OrderNumber   string
	OrderURL      string
	RecipientName string
	// PaymentMethod is nil when the sender did not say.
	PaymentMethod   *PaymentMethod
	LineItems       []LineItem
	Summary         Summary
	Adjustments     []Adjustment
	ShippingAddress *Address
	PurchaseTime    time.Time
}

// Last4 is the last four characters of the card the receipt names, or "".
func (c Content) Last4() string {
	if c.PaymentMethod == nil || c.PaymentMethod.MaskedNumber == nil {
		return ""
	}
	return c.PaymentMethod.MaskedNumber.Last4
}

// Confidence is how a receipt was matched to its transaction.
type Confidence string

// The confidences; there is no low one: when two transactions could match,
// none is chosen.
const (
	ConfidenceIssuer Confidence = "ISSUER"
	ConfidenceHigh   Confidence = "HIGH"
	ConfidenceMedium Confidence = "MEDIUM"
)

// Match is the card transaction a receipt belongs to.
type Match struct {
	// Transaction is users/{user}/accounts/{account}/transactions/{transaction}.
	Transaction string
	Confidence  Confidence
	Time        time.Time
}

// Receipt is one version of a receipt as stored.
type Receipt struct {
	User string
	// ID is the server-minted, opaque, random id in the receipt's name.
	ID string
	// Partner, PartnerUserID and PartnerReceiptID are set for a partner's
	// receipt: who sent it, the partner-scoped user id it was sent to, and
	// the partner's own id for it.
	Partner          string
	PartnerUserID    string
	PartnerReceiptID string
	// BankID, Link and SourceTransaction are set for a card issuer's
	// receipt: the bank, the consent link it was read under and the
	// transaction it describes.
	BankID            string
	Link              string
	SourceTransaction string
	// Client is the product the user uses bankbridge through: the events
	// about the receipt go to it.
	Client string
	// Version is 1, or n+1 for an amendment of version n.
	Version int
	// ChainID is the ID of version 1 of the receipt; every version shares it.
	ChainID string
	// Amends is the ID of the version this one amends; "" for version 1.
	Amends string
	// AmendedBy is the ID of the version that amends this one; "" for the
	// latest. Computed when read, never stored.
	AmendedBy string
	Content   Content
	// ContentHash identifies the content and what it amends, to tell a
	// retry from another receipt under the same partner receipt id.
	ContentHash string
	// Match is nil while no transaction matches.
	Match      *Match
	CreateTime time.Time
}

// Name is the receipt's resource name.
func (r Receipt) Name() string { return ReceiptName(r.User, r.ID) }

// ReceiptName formats users/{user}/receipts/{receipt}.
func ReceiptName(user, id string) string { return names.User(user) + "/receipts/" + id }

// ParseReceiptName reads users/{user}/receipts/{receipt}.
func ParseReceiptName(name string) (user, id string, err error) {
	user, ok := names.UserOf(name)
	rest, found := strings.CutPrefix(name, names.User(user)+"/receipts/")
	if !ok || !found || rest == "" || strings.Contains(rest, "/") {
		return "", "", fmt.Errorf("%w: %q: want users/{}/receipts/{}", names.ErrMalformed, name)
	}
	return user, rest, nil
}

// MatchFilter selects receipts by whether they are matched.
type MatchFilter int

// The match filters.
const (
	MatchAny MatchFilter = iota
	MatchMatched
	MatchUnmatched
)

// Filter selects a user's receipts in a list; zero fields select all.
type Filter struct {
	// Transaction selects receipts matched to it.
	Transaction string
	// MerchantKey selects receipts whose normalised merchant name is it.
	MerchantKey string
	// Start is inclusive and End exclusive, on the purchase time.
	Start, End time.Time
	Match      MatchFilter
}

// IdempotencyKey is a partner's idempotency key and the answer it got.
type IdempotencyKey struct {
	Partner string
	Key     string
	// User and PartnerUserID are whose receipt the key stored, so the key
	// goes when the user's receipts from the partner do.
	User          string
	PartnerUserID string
	// RequestHash identifies the request: the key with another is
	// IDEMPOTENCY_KEY_REUSED.
	RequestHash string
	Answer      IngestResult
	Time        time.Time
}

// MatchJob is a receipt waiting to be matched to a card transaction.
type MatchJob struct {
	User      string
	ReceiptID string
	// Attempts is how many matches were tried.
	Attempts int
	// Due is when the next is.
	Due time.Time
	// Deadline is when trying stops.
	Deadline time.Time
}

// Event is a receipt event for the outbox; the store renders its payload
// (the contract's ReceiptEvent).
type Event struct {
	ID   string
	Type string
	User string
	// Client is the product the event goes to (webhooks).
	Client string
	// Receipt is the receipt's name.
	Receipt string
	// Match is set for EventMatched.
	Match *Match
	Time  time.Time
}

// PartnerSubject is one partner-scoped user id some stored receipts were
// sent to.
type PartnerSubject struct {
	User, Partner, PartnerUserID string
}
