package app

import (
	"context"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Owned by the fraud, cards and alerts files (see doc.go): the ports they
// add to Store, Tx and Consent, their settings in Config, and their state
// in Service.

// FraudConsent is the fraud files' part of Consent.
type FraudConsent interface {
	// ResolveBankConsent says whose a bank's consent is, when a VALID link
	// of the bank carries it and covers scope. A denial is an apierr
	// PERMISSION_DENIED error with reason CONSENT_REQUIRED,
	// CONSENT_EXPIRED or CONSENT_REVOKED; any other error means no answer
	// (ask again later).
	ResolveBankConsent(ctx context.Context, bankID, bankConsentID string, scope commonv1.Scope) (consentcheck.BankConsent, error)
}

// FraudStore is the fraud files' part of Store: reads outside a
// transaction.
type FraudStore interface {
	// FraudReport reads one fraud report, or ErrNotFound.
	FraudReport(ctx context.Context, k BankKey) (FraudReport, error)
	// ListFraudReports reads the user's fraud reports at banks, newest
	// first (ties by bank and id, descending), after the position (nil:
	// from the first), at most limit.
	ListFraudReports(ctx context.Context, user string, banks []string, after *pagetoken.Position, limit int) ([]FraudReport, error)
	// RecallFraudReport reads a CreateFraudReport idempotency key, or
	// ErrNotFound.
	RecallFraudReport(ctx context.Context, user, client, key string) (FraudReportKey, error)

	// Alert reads one alert, or ErrNotFound.
	Alert(ctx context.Context, k BankKey) (Alert, error)
	// ListAlerts reads the user's alerts that f selects, newest first
	// (ties by bank and id, descending), after the position (nil: from the
	// first), at most limit.
	ListAlerts(ctx context.Context, user string, f AlertFilter, after *pagetoken.Position, limit int) ([]Alert, error)

	// RecallCardKey reads a card operation's idempotency key, or
	// ErrNotFound.
	RecallCardKey(ctx context.Context, user, client, operation, key string) (CardKey, error)
	// CardUnblock reads the unblock challenge running for a card, or
	// ErrNotFound.
	CardUnblock(ctx context.Context, k BankKey) (CardUnblock, error)
	// CardUnblocks reads the user's unblock challenges at bankID.
	CardUnblocks(ctx context.Context, user, bankID string) ([]CardUnblock, error)

	// DeleteExpiredFraud deletes the fraud files' idempotency keys made
	// before keysBefore, and the case updates of unknown cases received
	// before updatesBefore; it returns how many rows went.
	DeleteExpiredFraud(ctx context.Context, keysBefore, updatesBefore time.Time) (int, error)
}

// FraudTx is the fraud files' part of Tx.
type FraudTx interface {
	// InsertFraudReport stores a new fraud report: ErrConflict when its id
	// is taken.
	InsertFraudReport(ctx context.Context, r FraudReport) error
	// LockFraudReport reads and locks a fraud report, or ErrNotFound.
	LockFraudReport(ctx context.Context, k BankKey) (FraudReport, error)
	// FraudReportByCase reads and locks the fraud report of a bank's
	// case, or ErrNotFound.
	FraudReportByCase(ctx context.Context, bankID, caseID string) (FraudReport, error)
	// UpdateFraudReport writes a locked report's mutable fields: status,
	// card block status, case id and update time.
	UpdateFraudReport(ctx context.Context, r FraudReport) error
	// RememberFraudReport stores a CreateFraudReport idempotency key:
	// ErrConflict when it is taken.
	RememberFraudReport(ctx context.Context, k FraudReportKey) error
	// KeepCaseUpdate keeps a case update that came before the case was
	// known, raising the kept status, never lowering it.
	KeepCaseUpdate(ctx context.Context, u CaseUpdate) error
	// TakeCaseUpdate reads and deletes the case update kept for a case;
	// ok is false when none was.
	TakeCaseUpdate(ctx context.Context, bankID, caseID string) (u CaseUpdate, ok bool, err error)

	// InsertAlert stores a new alert unless the bank's alert id is stored
	// already (for any user); inserted says whether it was new.
	InsertAlert(ctx context.Context, a Alert) (inserted bool, err error)
	// LockAlert reads and locks an alert, or ErrNotFound.
	LockAlert(ctx context.Context, k BankKey) (Alert, error)
	// UpdateAlert writes a locked alert's answer: state, response and
	// acknowledge time.
	UpdateAlert(ctx context.Context, a Alert) error

	// RememberCardKey stores a card operation's idempotency key:
	// ErrConflict when it is taken.
	RememberCardKey(ctx context.Context, k CardKey) error
	// SaveCardUnblock stores the unblock challenge running for a card,
	// replacing the one before.
	SaveCardUnblock(ctx context.Context, u CardUnblock) error
	// DeleteCardUnblock forgets a card's unblock challenge, if any.
	DeleteCardUnblock(ctx context.Context, k BankKey) error

	// DeleteLinkFraud deletes the user's fraud reports and alerts held
	// under link, with their keys, and the user's unblock challenges at
	// bankID.
	DeleteLinkFraud(ctx context.Context, user, bankID, link string) error
}

// FraudConfig is the fraud files' part of Config (Config.Fraud). Zero
// fields take their defaults.
type FraudConfig struct {
	// KeyTTL is how long the idempotency keys of fraud reports and card
	// operations are kept; default DefaultIdempotencyTTL.
	KeyTTL time.Duration
	// DeliveryBackoff is the first wait before a fraud report or an
	// alert's answer the bank did not take is sent again; it doubles up to
	// MaxDeliveryBackoff. Default DefaultDeliveryBackoff.
	DeliveryBackoff time.Duration
	// SweepInterval is how often expired keys are deleted; default
	// DefaultFraudSweepInterval.
	SweepInterval time.Duration
}

// Defaults of FraudConfig.
const (
	// DefaultDeliveryBackoff is the first wait before a delivery to a bank
	// is tried again.
	DefaultDeliveryBackoff = time.Second
	// MaxDeliveryBackoff caps the wait between deliveries.
	MaxDeliveryBackoff = 5 * time.Minute
	// DefaultFraudSweepInterval is how often the fraud files' expired keys
	// are deleted.
	DefaultFraudSweepInterval = time.Hour
	// caseUpdateTTL is how long an update of a case no report names yet
	// is kept: long after any report's delivery.
	caseUpdateTTL = 7 * 24 * time.Hour
)

// fraudState is the fraud files' part of Service (Service.fraud).
type fraudState struct {
	keyTTL          time.Duration
	deliveryBackoff time.Duration
	sweepInterval   time.Duration
}

// newFraudState checks cfg.Fraud and builds the fraud files' state; New
// calls it.
func newFraudState(cfg Config) (fraudState, error) {
	f := cfg.Fraud
	st := fraudState{keyTTL: f.KeyTTL, deliveryBackoff: f.DeliveryBackoff, sweepInterval: f.SweepInterval}
	if st.keyTTL == 0 {
		st.keyTTL = cfg.IdempotencyTTL
	}
	if st.deliveryBackoff == 0 {
		st.deliveryBackoff = DefaultDeliveryBackoff
	}
	if st.sweepInterval == 0 {
		st.sweepInterval = DefaultFraudSweepInterval
	}
	if st.keyTTL < 0 || st.deliveryBackoff < 0 || st.sweepInterval < 0 {
		return fraudState{}, errFraudConfig
	}
	return st, nil
}
