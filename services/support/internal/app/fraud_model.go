package app

import (
	"errors"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// errFraudConfig is New's error for a negative duration in Config.Fraud.
var errFraudConfig = errors.New("support: the fraud durations must be positive")

// BankKey names one of a user's resources at a bank: a fraud report
// (ID is bankbridge's), an alert or a card (ID is the bank's).
type BankKey struct {
	User, BankID, ID string
}

// resource is the key as the resource name of collection.
func (k BankKey) resource(collection string) names.BankResource {
	return names.BankResource{User: k.User, Collection: collection, BankID: k.BankID, ID: k.ID}
}

// FraudCategory is what kind of fraud a report is about: the contract's
// FraudCategory without its prefix.
type FraudCategory string

// The fraud categories.
const (
	FraudUnrecognisedTransaction FraudCategory = "UNRECOGNISED_TRANSACTION"
	FraudCardLost                FraudCategory = "CARD_LOST"
	FraudCardStolen              FraudCategory = "CARD_STOLEN"
	FraudAccountTakeover         FraudCategory = "ACCOUNT_TAKEOVER"
	FraudScam                    FraudCategory = "SCAM"
	FraudPhishing                FraudCategory = "PHISHING"
	FraudOther                   FraudCategory = "OTHER"
)

// FraudStatus is where the bank is with a report: the contract's
// FraudReportStatus without its prefix. It only moves forward.
type FraudStatus string

// The fraud report statuses, in the order a report goes through them.
const (
	FraudSubmitting FraudStatus = "SUBMITTING"
	FraudReceived   FraudStatus = "RECEIVED"
	FraudInReview   FraudStatus = "IN_REVIEW"
	FraudResolved   FraudStatus = "RESOLVED"
)

// rank orders the statuses; 0 for one that is none of them.
func (s FraudStatus) rank() int {
	switch s {
	case FraudSubmitting:
		return 1
	case FraudReceived:
		return 2
	case FraudInReview:
		return 3
	case FraudResolved:
		return 4
	}
	return 0
}

// Advance returns the later of s and next: a report's status never goes
// back, and RESOLVED is final.
func (s FraudStatus) Advance(next FraudStatus) FraudStatus {
	if next.rank() > s.rank() {
		return next
	}
	return s
}

// CardBlockStatus is where a report's card block is: the contract's
// CardBlockStatus without its prefix.
type CardBlockStatus string

// The card block statuses.
const (
	CardBlockNotRequested CardBlockStatus = "NOT_REQUESTED"
	CardBlockBlocked      CardBlockStatus = "BLOCKED"
	CardBlockPending      CardBlockStatus = "PENDING"
	CardBlockFailed       CardBlockStatus = "FAILED"
	CardBlockNotSupported CardBlockStatus = "NOT_SUPPORTED"
)

// FraudReport is a user's report of fraud on one of their accounts,
// users/{User}/fraudReports/{BankID}~{ID}.
type FraudReport struct {
	BankKey
	// Client is the product client that filed it.
	Client string
	// Link and BankConsentID are the consent it was filed under; the
	// delivery to the bank names BankConsentID.
	Link          string
	BankConsentID string
	// AccountID, TransactionID and CardID are the bank's ids; the last two
	// are "" when the report names none.
	AccountID     string
	TransactionID string
	Category      FraudCategory
	// Description is the user's account of what happened; never logged.
	Description     string
	BlockCard       bool
	CardID          string
	Status          FraudStatus
	CardBlockStatus CardBlockStatus
	// CaseID is the bank's case, once the bank has the report.
	CaseID     string
	CreateTime time.Time
	UpdateTime time.Time
}

// Name is the report's resource name.
func (r FraudReport) Name() string { return r.resource(names.FraudReports).String() }

// Account is the account the report is about.
func (r FraudReport) Account() names.Account {
	return names.Account{User: r.User, BankID: r.BankID, BankAccountID: r.AccountID}
}

// Transaction is the transaction's resource name, or "".
func (r FraudReport) Transaction() string {
	if r.TransactionID == "" {
		return ""
	}
	return names.Transaction{Account: r.Account(), ID: r.TransactionID}.String()
}

// Card is the card's resource name, or "".
func (r FraudReport) Card() string {
	if r.CardID == "" {
		return ""
	}
	return BankKey{User: r.User, BankID: r.BankID, ID: r.CardID}.resource(names.Cards).String()
}

// FraudReportKey is a CreateFraudReport's idempotency key: the first
// request's hash and the report it filed.
type FraudReportKey struct {
	User, Client, Key string
	RequestHash       string
	Report            BankKey
	CreateTime        time.Time
}

// CaseUpdate is a bank's news of a fraud case that came before bankbridge
// knew the case (the bank announced it before ReportFraud answered),
// kept until the report's delivery reads it.
type CaseUpdate struct {
	BankID, CaseID string
	BankConsentID  string
	Status         FraudStatus
	Time           time.Time
}

// CardKey is a card operation's idempotency key: the first request's
// hash.
type CardKey struct {
	User, Client   string
	Operation, Key string
	RequestHash    string
	CreateTime     time.Time
}

// The fraud files' event types. The alert ones are WatchAlerts' (and
// webhooks', through Event.Client); the other two are internal work for
// the fraud workers (no Client, so no webhook, and no stream reads them).
const (
	TypeAlertRaised       = "support.alert.raised"
	TypeAlertAcknowledged = "support.alert.acknowledged"

	TypeFraudReportFiled = "support.fraud.report_filed"
	TypeAlertAnswered    = "support.fraud.alert_answered"
)

// AlertTypes are the event types WatchAlerts serves.
func AlertTypes() []string { return []string{TypeAlertRaised, TypeAlertAcknowledged} }

// AlertChanged is an alert raised or answered; Alert is as it now is.
type AlertChanged struct {
	Alert Alert
}

// FraudReportFiled asks the fraud report worker to deliver a report to its
// bank. It carries no content: the worker reads the report, and drops the
// work when the report is gone.
type FraudReportFiled struct {
	Report BankKey
}

// AlertAnswered asks the alert answer worker to pass the user's answer to
// the bank (AnswerFraudAlert).
type AlertAnswered struct {
	BankID        string
	BankConsentID string
	AlertID       string
	Response      AlertResponse
}
