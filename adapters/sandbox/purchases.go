package sandbox

import (
	"context"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// purchase is what a merchant told the card issuer about one card
// purchase. Amounts are euro cents and include VAT, as EU merchants' prices
// do, so no tax is given. What the card was charged is not stored: it is
// the subtotal plus shipping less the adjustments, and the fixtures' tests
// hold it to the transaction's amount.
type purchase struct {
	merchant    string
	orderNumber string // empty when the merchant sent none, as shops do
	items       []purchaseItem
	shipping    int64 // 0: none
	adjustments []purchaseAdjustment
}

type purchaseItem struct {
	title    string
	subtitle string
	quantity int32
	price    int64 // of one
}

type purchaseAdjustment struct {
	name   string
	amount int64 // taken off, positive
}

func (p purchase) subtotal() int64 {
	var sum int64
	for _, it := range p.items {
		sum += int64(it.quantity) * it.price
	}
	return sum
}

// total is what the card was charged.
func (p purchase) total() int64 {
	total := p.subtotal() + p.shipping
	for _, a := range p.adjustments {
		total -= a.amount
	}
	return total
}

// purchaseFixtures are the purchases behind alice's card payments, keyed by
// transaction id. A pending card payment and the booked one that replaces
// it are one purchase, so both ids name it.
func purchaseFixtures() map[string]purchase {
	coffee := purchase{
		merchant: "Blue Door Coffee",
		items: []purchaseItem{
			{title: "Flat white", subtitle: "Oat milk", quantity: 1, price: 3_10},
			{title: "Butter croissant", quantity: 1, price: 1_40},
		},
	}
	return map[string]purchase{
		"tx-alice-chk-003": {
			merchant: "Corner Grocery",
			items: []purchaseItem{
				{title: "Organic whole milk", subtitle: "1 l", quantity: 4, price: 1_29},
				{title: "Sourdough bread", quantity: 1, price: 3_49},
				{title: "Free-range eggs", subtitle: "Pack of 10", quantity: 2, price: 3_79},
				{title: "Extra virgin olive oil", subtitle: "750 ml", quantity: 1, price: 9_99},
				{title: "Ground coffee", subtitle: "500 g", quantity: 2, price: 7_49},
				{title: "Salmon fillet", subtitle: "400 g", quantity: 1, price: 12_90},
				{title: "Aged Gouda", subtitle: "300 g", quantity: 1, price: 5_49},
				{title: "Bananas", subtitle: "1 kg", quantity: 2, price: 1_99},
				{title: "Laundry detergent", subtitle: "2.5 l", quantity: 1, price: 11_99},
				{title: "Rioja Crianza", subtitle: "0.75 l", quantity: 2, price: 7_42},
			},
			adjustments: []purchaseAdjustment{{name: "Loyalty card discount", amount: 4_00}},
		},
		"tx-alice-chk-p01": coffee,
		"tx-alice-chk-005": coffee,
		"tx-alice-chk-p02": {
			merchant:    "Nordic Outdoor Online",
			orderNumber: "NO-100234",
			items: []purchaseItem{
				{title: "Trail running socks", subtitle: "Size 39-42, grey", quantity: 2, price: 12_50},
				{title: "Headlamp 300 lm", quantity: 1, price: 29_99},
			},
			shipping: 5_00,
		},
		"tx-alice-card-001": {
			merchant:    "Hotel Alpenblick",
			orderNumber: "ALP-58213",
			items: []purchaseItem{
				{title: "Double room", subtitle: "1 night", quantity: 1, price: 149_00},
				{title: "Breakfast", quantity: 2, price: 14_50},
				{title: "City tax", subtitle: "Per guest and night", quantity: 2, price: 1_30},
			},
		},
		"tx-alice-card-002": {
			merchant: "Trattoria Roma",
			items: []purchaseItem{
				{title: "Spaghetti alle vongole", quantity: 1, price: 16_50},
				{title: "Pizza Margherita", quantity: 1, price: 11_00},
				{title: "Tiramisù", quantity: 2, price: 6_50},
				{title: "Chianti Classico", subtitle: "Bottle, 0.75 l", quantity: 1, price: 24_00},
			},
		},
		"tx-alice-card-p01": {
			merchant:    "SkyJet Airlines",
			orderNumber: "SJ7K2Q",
			items: []purchaseItem{
				{title: "Flight VIE-BCN", subtitle: "Economy, 1 passenger", quantity: 1, price: 99_00},
				{title: "Checked bag", subtitle: "23 kg", quantity: 1, price: 35_00},
			},
			adjustments: []purchaseAdjustment{{name: "Travel voucher", amount: 14_00}},
		},
	}
}

// GetPurchaseDetails implements adapters.PurchaseDetailsAdapter for alice's
// card payments. It checks the consent and the account as
// SyncTransactions does; a transaction the account never had, one that is
// not a card payment, or one whose merchant sent nothing, is NOT_FOUND. A
// pending payment keeps its details after it posts: the bank still knows
// it.
func (b *Bank) GetPurchaseDetails(ctx context.Context, req *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error) {
	var resp *adapterv1.GetPurchaseDetailsResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_TRANSACTIONS, func(_ *consent, cust *customer) error {
		a := cust.account(req.GetBankAccountId())
		if a == nil {
			return notFound("account under this consent")
		}
		tx := a.transaction(req.GetTransactionId())
		if tx == nil {
			return notFound("transaction on this account")
		}
		p, ok := b.purchases[tx.GetTransactionId()]
		if !ok || (tx.GetBankCardId() == "" && tx.GetMaskedCardNumber() == nil) {
			return notFound("purchase details for this transaction")
		}
		resp = p.response(tx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// response is p as the protocol tells it, made on the card payment tx.
func (p purchase) response(tx *adapterv1.Transaction) *adapterv1.GetPurchaseDetailsResponse {
	resp := &adapterv1.GetPurchaseDetailsResponse{
		MerchantName: p.merchant,
		OrderNumber:  p.orderNumber,
		PurchaseTime: clone(tx.GetTransactionTime()),
		Subtotal:     eur(p.subtotal()),
		Total:        eur(p.total()),
	}
	for _, it := range p.items {
		resp.LineItems = append(resp.LineItems, &adapterv1.PurchaseLineItem{
			Title: it.title, Subtitle: it.subtitle, Quantity: it.quantity, UnitPrice: eur(it.price),
		})
	}
	if p.shipping != 0 {
		resp.ShippingCost = eur(p.shipping)
	}
	for _, adj := range p.adjustments {
		resp.Adjustments = append(resp.Adjustments, &adapterv1.PurchaseAdjustment{Name: adj.name, Amount: eur(adj.amount)})
	}
	return resp
}
