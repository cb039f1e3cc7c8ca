package conformance

import (
	"fmt"
	"math/big"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// maxPurchaseTries bounds how many card transactions the kit asks for
// purchase details before it finds one the merchant sent them for.
const maxPurchaseTries = 20

// testPurchaseUnknown is purchases/unknown-transaction; testPurchaseDetails
// (purchases/card-transaction) asks for the purchase behind a card transaction that
// SyncTransactions showed: it keeps the protocol's rules, was charged what
// the transaction says, adds up, and reads the same twice. The bank may
// have no details for some card transactions (NOT_FOUND): the kit tries
// the next. An unknown transaction is NOT_FOUND.
func (k *kit) testPurchaseUnknown(c *C) {
	k.needAccounts(c)
	account := k.accounts[0].GetBankAccountId()
	if len(k.cardTransactions) > 0 {
		account = k.cardTransactions[0].accountID
	}
	_, err := k.client.GetPurchaseDetails(k.ctx(c), &adapterv1.GetPurchaseDetailsRequest{
		BankConsentId: k.consentID, BankAccountId: account, TransactionId: unknownID,
	})
	wantError(c, "GetPurchaseDetails of an unknown transaction", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// testPurchaseDetails is purchases/card-transaction.
func (k *kit) testPurchaseDetails(c *C) {
	k.needAccounts(c)
	for i, ct := range k.cardTransactions {
		if i == maxPurchaseTries {
			break
		}
		req := &adapterv1.GetPurchaseDetailsRequest{
			BankConsentId: k.consentID, BankAccountId: ct.accountID, TransactionId: ct.tx.GetTransactionId(),
		}
		what := fmt.Sprintf("GetPurchaseDetails of card transaction %q", ct.tx.GetTransactionId())
		details, err := k.client.GetPurchaseDetails(k.ctx(c), req)
		if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
			checkErrorInfo(c, what, err)
			continue // the merchant sent no details for this one
		}
		if !ok(c, what, err) {
			return
		}
		k.check(c, what, details)
		checkPurchaseTotal(c, what, details, ct.tx)
		again, err := k.client.GetPurchaseDetails(k.ctx(c), req)
		if ok(c, what+" again", err) && !proto.Equal(details, again) {
			c.Errorf("%s: answers differently from one call to the next", what)
		}
		return
	}
	if len(k.cardTransactions) == 0 {
		c.Skip("SyncTransactions showed no card transaction (bank_card_id or masked_card_number set)")
	}
	c.Skipf("the bank has purchase details for none of the first %d card transactions",
		min(len(k.cardTransactions), maxPurchaseTries))
}

// checkPurchaseTotal wants the purchase's total to be what the card was
// charged (the transaction's amount, as a positive amount, in its currency)
// and, when the subtotal is given, the sums to add up as bankbridge's
// receipts do: subtotal = Σ quantity × unit_price, and total = subtotal +
// shipping_cost + tax − the adjustments.
func checkPurchaseTotal(c *C, what string, p *adapterv1.GetPurchaseDetailsResponse, tx *adapterv1.Transaction) {
	c.Helper()
	charged := new(big.Int).Abs(nanos(tx.GetAmount()))
	if got := nanos(p.GetTotal()); got.Cmp(charged) != 0 || p.GetTotal().GetCurrencyCode() != tx.GetAmount().GetCurrencyCode() {
		c.Errorf("%s: total is %s %s, want the transaction's %s %s", what,
			decimal(got), p.GetTotal().GetCurrencyCode(), decimal(charged), tx.GetAmount().GetCurrencyCode())
	}
	if p.GetSubtotal() == nil {
		return
	}
	items := new(big.Int)
	for _, it := range p.GetLineItems() {
		items.Add(items, new(big.Int).Mul(big.NewInt(int64(it.GetQuantity())), nanos(it.GetUnitPrice())))
	}
	if nanos(p.GetSubtotal()).Cmp(items) != 0 {
		c.Errorf("%s: subtotal is %s, but the line items (quantity × unit_price) add up to %s", what, decimal(nanos(p.GetSubtotal())), decimal(items))
	}
	sum := new(big.Int).Add(nanos(p.GetSubtotal()), nanos(p.GetShippingCost()))
	sum.Add(sum, nanos(p.GetTax()))
	for _, a := range p.GetAdjustments() {
		sum.Sub(sum, nanos(a.GetAmount()))
	}
	if sum.Cmp(nanos(p.GetTotal())) != 0 {
		c.Errorf("%s: subtotal + shipping_cost + tax − adjustments is %s, but total is %s", what, decimal(sum), decimal(nanos(p.GetTotal())))
	}
}

// nanos is m in billionths of its unit; 0 for an unset amount.
func nanos(m *commonv1.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(1_000_000_000))
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// decimal writes an amount in billionths as a decimal number, e.g. 59.99.
func decimal(n *big.Int) string {
	r := new(big.Rat).SetFrac(n, big.NewInt(1_000_000_000))
	s := r.FloatString(9)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i == 2 {
		s += "0"
	}
	return s
}
