// Package banks reaches the banks' adapters for the balance service: it
// implements app.Banks over the adapter SDK's registry, which adds
// deadlines, circuit breaker and rate limit, validates each answer and maps
// the adapter's errors to bankbridge reasons before anything here sees
// them. This package turns the adapter protocol into balance's domain.
package banks

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
)

// Adapters implements app.Banks with the registry's clients.
type Adapters struct {
	reg *runtime.Registry
}

var _ app.Banks = (*Adapters)(nil)

// New returns the banks of reg.
func New(reg *runtime.Registry) *Adapters { return &Adapters{reg: reg} }

// IDs returns the configured banks, in configuration order.
func (a *Adapters) IDs() []string {
	banks := a.reg.Banks()
	ids := make([]string, len(banks))
	for i, b := range banks {
		ids[i] = b.ID
	}
	return ids
}

// Has reports whether bank id is configured.
func (a *Adapters) Has(id string) bool {
	_, ok := a.reg.Bank(id)
	return ok
}

// client returns the bank's adapter and ctx carrying the declared purpose
// (banks may record it); the trace context is added by the client kit.
func (a *Adapters) client(ctx context.Context, at app.BankAccess) (context.Context, adapterv1.BankAdapterServiceClient, error) {
	c, err := a.reg.Client(at.BankID)
	if err != nil {
		return nil, nil, err
	}
	return adapters.WithPurpose(ctx, at.Purpose), c, nil
}

// ListAccounts returns the accounts the bank consent covers.
func (a *Adapters) ListAccounts(ctx context.Context, at app.BankAccess) ([]app.BankAccount, error) {
	ctx, c, err := a.client(ctx, at)
	if err != nil {
		return nil, err
	}
	resp, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: at.BankConsentID})
	if err != nil {
		return nil, err
	}
	out := make([]app.BankAccount, len(resp.GetAccounts()))
	for i, acct := range resp.GetAccounts() {
		out[i] = app.BankAccount{
			ID:          acct.GetBankAccountId(),
			DisplayName: acct.GetDisplayName(),
			MaskedNumber: app.MaskedNumber{
				Last4: acct.GetMaskedNumber().GetLast4(), Display: acct.GetMaskedNumber().GetDisplay(),
			},
			Type:         accountType(acct.GetType()),
			CurrencyCode: acct.GetCurrencyCode(),
		}
	}
	return out, nil
}

// GetBalances returns one account's balances.
func (a *Adapters) GetBalances(ctx context.Context, at app.BankAccess, bankAccountID string) ([]app.Balance, error) {
	ctx, c, err := a.client(ctx, at)
	if err != nil {
		return nil, err
	}
	resp, err := c.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: at.BankConsentID, BankAccountId: bankAccountID})
	if err != nil {
		return nil, err
	}
	out := make([]app.Balance, len(resp.GetBalances()))
	for i, b := range resp.GetBalances() {
		out[i] = app.Balance{
			Type:                app.BalanceType(strings.TrimPrefix(b.GetType().String(), "BALANCE_TYPE_")),
			Amount:              money(b.GetAmount()),
			AsOf:                b.GetAsOf().AsTime(),
			CreditLimitIncluded: b.GetCreditLimitIncluded(),
		}
	}
	return out, nil
}

// SyncTransactions returns up to count changes since the bank's cursor.
func (a *Adapters) SyncTransactions(ctx context.Context, at app.BankAccess, bankAccountID, cursor string, count int) (app.TransactionChanges, error) {
	ctx, c, err := a.client(ctx, at)
	if err != nil {
		return app.TransactionChanges{}, err
	}
	resp, err := c.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{
		BankConsentId: at.BankConsentID, BankAccountId: bankAccountID, Cursor: cursor, Count: int32(count),
	})
	if err != nil {
		return app.TransactionChanges{}, err
	}
	return app.TransactionChanges{
		Added:      transactions(resp.GetAdded()),
		Modified:   transactions(resp.GetModified()),
		Removed:    slices.Clone(resp.GetRemovedTransactionIds()),
		NextCursor: resp.GetNextCursor(),
		HasMore:    resp.GetHasMore(),
	}, nil
}

// accountType maps by name; the adapter protocol's CARD is a credit card
// account, and a kind the domain does not know is OTHER.
func accountType(t adapterv1.AccountType) app.AccountType {
	switch name := app.AccountType(strings.TrimPrefix(t.String(), "ACCOUNT_TYPE_")); name {
	case "CARD":
		return app.AccountCreditCard
	case app.AccountCurrent, app.AccountSavings, app.AccountLoan:
		return name
	default:
		return app.AccountOther
	}
}

func money(m *commonv1.Money) app.Money {
	return app.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
}

func transactions(ts []*adapterv1.Transaction) []app.Transaction {
	out := make([]app.Transaction, len(ts))
	for i, t := range ts {
		out[i] = app.Transaction{
			ID:                   t.GetTransactionId(),
			Status:               app.TransactionStatus(strings.TrimPrefix(t.GetStatus().String(), "TRANSACTION_STATUS_")),
			Amount:               money(t.GetAmount()),
			ValueTime:            date(t.GetValueDate()),
			TransactionTime:      timeOf(t.GetTransactionTime()),
			Description:          t.GetDescription(),
			CounterpartyName:     t.GetCounterpartyName(),
			MerchantCategoryCode: t.GetMerchantCategoryCode(),
		}
		if out[i].Status == app.TransactionBooked {
			out[i].PendingID = t.GetPendingTransactionId()
			out[i].BookingTime = date(t.GetBookingDate())
			if out[i].BookingTime.IsZero() {
				out[i].BookingTime = timeOf(t.GetTransactionTime())
			}
		}
	}
	return out
}

// date turns an ISO 8601 date into midnight UTC of that day; zero for none.
func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
