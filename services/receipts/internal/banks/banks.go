// Package banks reaches the banks' adapters for the receipts service: it
// implements app.Banks over the adapter SDK's registry, which adds
// deadlines, circuit breaker and rate limit, validates each answer and maps
// the adapter's errors to bankbridge reasons before anything here sees
// them. This package turns the adapter protocol into the receipts domain.
package banks

import (
	"context"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// Adapters implements app.Banks with the registry's clients.
type Adapters struct {
	reg *runtime.Registry
}

var _ app.Banks = (*Adapters)(nil)

// New returns the banks of reg.
func New(reg *runtime.Registry) *Adapters { return &Adapters{reg: reg} }

// client returns the bank's adapter and ctx carrying the purpose (banks
// may record it); the trace context is added by the client kit.
func (a *Adapters) client(ctx context.Context, at app.BankAccess) (context.Context, adapterv1.BankAdapterServiceClient, error) {
	c, err := a.reg.Client(at.BankID)
	if err != nil {
		return nil, nil, err
	}
	return adapters.WithPurpose(ctx, at.Purpose), c, nil
}

// ListAccounts returns the ids of the accounts the bank consent covers.
func (a *Adapters) ListAccounts(ctx context.Context, at app.BankAccess) ([]string, error) {
	ctx, c, err := a.client(ctx, at)
	if err != nil {
		return nil, err
	}
	resp, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: at.BankConsentID})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(resp.GetAccounts()))
	for i, acct := range resp.GetAccounts() {
		ids[i] = acct.GetBankAccountId()
	}
	return ids, nil
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

// GetPurchaseDetails returns what a card transaction bought.
func (a *Adapters) GetPurchaseDetails(ctx context.Context, at app.BankAccess, bankAccountID, transactionID string) (app.PurchaseDetails, error) {
	ctx, c, err := a.client(ctx, at)
	if err != nil {
		return app.PurchaseDetails{}, err
	}
	resp, err := c.GetPurchaseDetails(ctx, &adapterv1.GetPurchaseDetailsRequest{
		BankConsentId: at.BankConsentID, BankAccountId: bankAccountID, TransactionId: transactionID,
	})
	if err != nil {
		return app.PurchaseDetails{}, err
	}
	d := app.PurchaseDetails{
		MerchantName: resp.GetMerchantName(),
		OrderNumber:  resp.GetOrderNumber(),
		Subtotal:     optMoney(resp.GetSubtotal()),
		ShippingCost: optMoney(resp.GetShippingCost()),
		Tax:          optMoney(resp.GetTax()),
		Total:        money(resp.GetTotal()),
	}
	if resp.GetPurchaseTime() != nil {
		d.PurchaseTime = resp.GetPurchaseTime().AsTime()
	}
	for _, li := range resp.GetLineItems() {
		d.LineItems = append(d.LineItems, app.LineItem{
			Title: li.GetTitle(), Subtitle: li.GetSubtitle(), Quantity: li.GetQuantity(), UnitPrice: money(li.GetUnitPrice()),
		})
	}
	for _, adj := range resp.GetAdjustments() {
		d.Adjustments = append(d.Adjustments, app.Adjustment{Name: adj.GetName(), Amount: money(adj.GetAmount())})
	}
	return d, nil
}

func money(m *commonv1.Money) app.Money {
	return app.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
}

func optMoney(m *commonv1.Money) *app.Money {
	if m == nil {
		return nil
	}
	v := money(m)
	return &v
}

func transactions(ts []*adapterv1.Transaction) []app.Transaction {
	out := make([]app.Transaction, len(ts))
	for i, t := range ts {
		out[i] = app.Transaction{
			ID:               t.GetTransactionId(),
			PendingID:        t.GetPendingTransactionId(),
			Booked:           t.GetStatus() == adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
			Amount:           money(t.GetAmount()),
			BookingDate:      date(t.GetBookingDate()),
			ValueDate:        date(t.GetValueDate()),
			CounterpartyName: t.GetCounterpartyName(),
			BankCardID:       t.GetBankCardId(),
			CardLast4:        t.GetMaskedCardNumber().GetLast4(),
		}
		if t.GetTransactionTime() != nil {
			out[i].Time = t.GetTransactionTime().AsTime()
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
