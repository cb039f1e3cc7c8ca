package app

import (
	"context"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Banks is the port to the banks' adapters, in domain types. Errors are
// apierr errors with the adapter's reason already mapped (BANK_UNAVAILABLE,
// BANK_LOGIN_REQUIRED, CAPABILITY_NOT_SUPPORTED, ...); their text never
// comes from the bank.
type Banks interface {
	// IDs returns the configured banks' ids, in configuration order.
	IDs() []string
	// Has reports whether a bank with id is configured.
	Has(id string) bool
	// ListAccounts returns the accounts the bank consent covers.
	ListAccounts(ctx context.Context, at BankAccess) ([]BankAccount, error)
	// GetBalances returns one account's balances.
	GetBalances(ctx context.Context, at BankAccess, bankAccountID string) ([]Balance, error)
	// SyncTransactions returns up to count changes to one account's
	// transactions since the bank's cursor ("" for all).
	SyncTransactions(ctx context.Context, at BankAccess, bankAccountID, cursor string, count int) (TransactionChanges, error)
}

// BankAccess is what every call to a bank carries: which bank, the
// bank-side consent the call is made under, and the purpose the caller
// declared (the bank may record it).
type BankAccess struct {
	BankID        string
	BankConsentID string
	Purpose       commonv1.Purpose
}

// Consents decides consent per bank, for the one call that spans banks
// (listing accounts without a bank filter): the server kit decided for the
// call as a whole, not for each bank.
type Consents interface {
	// Decide returns the consent of user's link to bankID that covers
	// scope for purpose, or the apierr refusal (CONSENT_REQUIRED, ...).
	Decide(ctx context.Context, user, bankID string, scope commonv1.Scope, purpose commonv1.Purpose) (Consent, error)
	// ReportBankRevocation says that the bank no longer honours the
	// consent behind link, so the link is revoked; a failure is the
	// implementation's to log. (For calls that name one bank the server kit
	// reports it.)
	ReportBankRevocation(ctx context.Context, link string)
}

// Consent is a consent that allows reading one bank: the user's link and
// the bank's id for the consent behind it.
type Consent struct {
	// Link is users/{user}/links/{link}.
	Link          string
	BankConsentID string
}

// Caller is what the server kit established before the call reached the
// service: the declared purpose and, for a call that names a bank, the
// consent that allowed it.
type Caller struct {
	Purpose commonv1.Purpose
	// BankID is the bank whose consent allowed the call; "" when the call
	// named no bank.
	BankID  string
	Consent Consent
}
