// Package fakes holds the receipts service's own test doubles at its
// ports: the banks. The consent service's is
// platform/consentcheck/consenttest. Import it from _test.go files only.
package fakes

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// Scopes are the scopes of a link that covers everything receipts read:
// those of a consenttest.New link made without any.
var Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_RECEIPTS}

// Banks are the banks' adapters: each bank's accounts and transactions,
// the purchase details it knows, and every call made.
type Banks struct {
	mu       sync.Mutex
	accounts map[string]map[string][]app.Transaction // bank → account → transactions
	details  map[string]app.PurchaseDetails          // by transaction id
	// noDetails are banks without the PURCHASE_DETAILS capability.
	noDetails map[string]bool
	down      map[string]bool
	calls     []Call
}

// Call is one call to a bank.
type Call struct {
	Method        string
	BankID        string
	TransactionID string
}

// NewBanks returns banks without accounts.
func NewBanks() *Banks {
	return &Banks{accounts: map[string]map[string][]app.Transaction{}, details: map[string]app.PurchaseDetails{},
		noDetails: map[string]bool{}, down: map[string]bool{}}
}

// AddTransactions puts transactions on the bank's account.
func (b *Banks) AddTransactions(bank, account string, txs ...app.Transaction) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accounts[bank] == nil {
		b.accounts[bank] = map[string][]app.Transaction{}
	}
	b.accounts[bank][account] = append(b.accounts[bank][account], txs...)
}

// SetDetails makes the issuer know d for the transaction id.
func (b *Banks) SetDetails(txID string, d app.PurchaseDetails) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.details[txID] = d
}

// WithoutDetails makes bank lack the PURCHASE_DETAILS capability.
func (b *Banks) WithoutDetails(bank string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noDetails[bank] = true
}

// SetDown takes bank down, or brings it back.
func (b *Banks) SetDown(bank string, down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down[bank] = down
}

// Calls returns the calls made so far.
func (b *Banks) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *Banks) call(method string, at app.BankAccess, txID string) error {
	b.calls = append(b.calls, Call{Method: method, BankID: at.BankID, TransactionID: txID})
	if b.down[at.BankID] {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank is down")
	}
	return nil
}

// ListAccounts implements app.Banks.
func (b *Banks) ListAccounts(_ context.Context, at app.BankAccess) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("ListAccounts", at, ""); err != nil {
		return nil, err
	}
	var ids []string
	for id := range b.accounts[at.BankID] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// SyncTransactions implements app.Banks, count at a time; its cursor is
// the offset.
func (b *Banks) SyncTransactions(_ context.Context, at app.BankAccess, account, cursor string, count int) (app.TransactionChanges, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("SyncTransactions", at, ""); err != nil {
		return app.TransactionChanges{}, err
	}
	all := b.accounts[at.BankID][account]
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	to := min(from+count, len(all))
	return app.TransactionChanges{Added: slices.Clone(all[from:to]), NextCursor: strconv.Itoa(to), HasMore: to < len(all)}, nil
}

// ErrUnsupported is what a bank without purchase details answers.
var ErrUnsupported = apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, "the adapter does not implement PURCHASE_DETAILS")

// GetPurchaseDetails implements app.Banks.
func (b *Banks) GetPurchaseDetails(_ context.Context, at app.BankAccess, _, txID string) (app.PurchaseDetails, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("GetPurchaseDetails", at, txID); err != nil {
		return app.PurchaseDetails{}, err
	}
	if b.noDetails[at.BankID] {
		return app.PurchaseDetails{}, ErrUnsupported
	}
	d, ok := b.details[txID]
	if !ok {
		return app.PurchaseDetails{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no purchase details")
	}
	return d, nil
}
