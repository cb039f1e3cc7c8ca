package sandbox_test

import (
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// cents is m in hundredths of its unit.
func cents(m *commonv1.Money) int64 {
	return m.GetUnits()*100 + int64(m.GetNanos())/10_000_000
}

// syncAll returns every transaction an account has shown the consent, by
// id: its history, then the posting the next sync brings.
func syncAll(t *testing.T, c adapterv1.BankAdapterServiceClient, consent, account string) map[string]*adapterv1.Transaction {
	t.Helper()
	out := map[string]*adapterv1.Transaction{}
	cursor := ""
	for range 2 {
		resp, err := c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{BankConsentId: consent, BankAccountId: account, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range resp.GetAdded() {
			out[tx.GetTransactionId()] = tx
		}
		cursor = resp.GetNextCursor()
	}
	return out
}

// TestPurchaseDetails reads the purchase behind each of alice's card
// payments through a registry, which holds every answer to the protocol's
// rules, and checks that it adds up to what the card was charged.
func TestPurchaseDetails(t *testing.T) {
	t.Parallel()
	c := inProcess(t, newBank(t, sandbox.Options{}), nil)
	consent := link(t, c, "alice")
	txs := syncAll(t, c, consent, "acc-alice-checking")
	for id, tx := range syncAll(t, c, consent, "acc-alice-card") {
		txs[id] = tx
	}

	tests := []struct {
		account     string
		tx          string
		merchant    string
		orderNumber string
		wantTotal   int64 // cents
		wantItems   int
	}{
		{account: "acc-alice-checking", tx: "tx-alice-chk-003", merchant: "Corner Grocery", wantTotal: 86_40, wantItems: 10},
		{account: "acc-alice-checking", tx: "tx-alice-chk-p01", merchant: "Blue Door Coffee", wantTotal: 4_50, wantItems: 2},
		{account: "acc-alice-checking", tx: "tx-alice-chk-005", merchant: "Blue Door Coffee", wantTotal: 4_50, wantItems: 2},
		{account: "acc-alice-checking", tx: "tx-alice-chk-p02", merchant: "Nordic Outdoor Online", orderNumber: "NO-100234", wantTotal: 59_99, wantItems: 2},
		{account: "acc-alice-card", tx: "tx-alice-card-001", merchant: "Hotel Alpenblick", orderNumber: "ALP-58213", wantTotal: 180_60, wantItems: 3},
		{account: "acc-alice-card", tx: "tx-alice-card-002", merchant: "Trattoria Roma", wantTotal: 64_50, wantItems: 4},
		{account: "acc-alice-card", tx: "tx-alice-card-p01", merchant: "SkyJet Airlines", orderNumber: "SJ7K2Q", wantTotal: 120_00, wantItems: 2},
	}
	var covered []string
	for _, tt := range tests {
		covered = append(covered, tt.tx)
		t.Run(tt.tx, func(t *testing.T) {
			req := &adapterv1.GetPurchaseDetailsRequest{BankConsentId: consent, BankAccountId: tt.account, TransactionId: tt.tx}
			got, err := c.GetPurchaseDetails(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetMerchantName() != tt.merchant || got.GetOrderNumber() != tt.orderNumber || len(got.GetLineItems()) != tt.wantItems {
				t.Errorf("merchant %q, order %q, %d items; want %q, %q, %d",
					got.GetMerchantName(), got.GetOrderNumber(), len(got.GetLineItems()), tt.merchant, tt.orderNumber, tt.wantItems)
			}

			tx := txs[tt.tx]
			if tx == nil {
				t.Fatalf("SyncTransactions never showed %s", tt.tx)
			}
			if total := cents(got.GetTotal()); total != tt.wantTotal || total != -cents(tx.GetAmount()) ||
				got.GetTotal().GetCurrencyCode() != tx.GetAmount().GetCurrencyCode() {
				t.Errorf("total %v, want %d cents, the transaction's %v charged", got.GetTotal(), tt.wantTotal, tx.GetAmount())
			}
			if !proto.Equal(got.GetPurchaseTime(), tx.GetTransactionTime()) {
				t.Errorf("purchase_time %v, want the transaction's %v", got.GetPurchaseTime().AsTime(), tx.GetTransactionTime().AsTime())
			}

			var subtotal, adjustments int64
			for _, it := range got.GetLineItems() {
				subtotal += int64(it.GetQuantity()) * cents(it.GetUnitPrice())
			}
			for _, a := range got.GetAdjustments() {
				adjustments += cents(a.GetAmount())
			}
			if cents(got.GetSubtotal()) != subtotal {
				t.Errorf("subtotal %v, want the line items' %d cents", got.GetSubtotal(), subtotal)
			}
			if got.GetTax() != nil {
				t.Errorf("tax %v, want none: the prices include VAT", got.GetTax())
			}
			if sum := cents(got.GetSubtotal()) + cents(got.GetShippingCost()) + cents(got.GetTax()) - adjustments; sum != cents(got.GetTotal()) {
				t.Errorf("subtotal + shipping + tax - adjustments = %d cents, total %d", sum, cents(got.GetTotal()))
			}

			again, err := c.GetPurchaseDetails(t.Context(), req)
			if err != nil || !proto.Equal(got, again) {
				t.Errorf("asked again: %v, %v; want the same answer", again, err)
			}
		})
	}

	t.Run("every card payment has details", func(t *testing.T) {
		for id, tx := range txs {
			if (tx.GetBankCardId() != "" || tx.GetMaskedCardNumber() != nil) && !slices.Contains(covered, id) {
				t.Errorf("card payment %s is not checked", id)
			}
		}
	})

	t.Run("Nordic Outdoor Online", func(t *testing.T) {
		got, err := c.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{
			BankConsentId: consent, BankAccountId: "acc-alice-checking", TransactionId: "tx-alice-chk-p02",
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"Trail running socks 2 × 1250", "Headlamp 300 lm 1 × 2999"}
		var items []string
		for _, it := range got.GetLineItems() {
			items = append(items, it.GetTitle()+" "+strconv.FormatInt(int64(it.GetQuantity()), 10)+" × "+strconv.FormatInt(cents(it.GetUnitPrice()), 10))
		}
		if !slices.Equal(items, want) || cents(got.GetSubtotal()) != 54_99 || cents(got.GetShippingCost()) != 5_00 {
			t.Errorf("items %q, subtotal %v, shipping %v; want %q, 54.99, 5.00", items, got.GetSubtotal(), got.GetShippingCost(), want)
		}
	})

	notFound := []struct {
		name    string
		account string
		tx      string
	}{
		{name: "not a card payment", account: "acc-alice-checking", tx: "tx-alice-chk-001"},
		{name: "unknown transaction", account: "acc-alice-checking", tx: "tx-alice-chk-999"},
		{name: "transaction of another account", account: "acc-alice-checking", tx: "tx-alice-card-001"},
		{name: "transaction of another customer", account: "acc-alice-checking", tx: "tx-bob-sav-001"},
		{name: "account of another customer", account: "acc-bob-savings", tx: "tx-bob-sav-001"},
		{name: "unknown account", account: "acc-none", tx: "tx-alice-chk-003"},
	}
	for _, tt := range notFound {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{
				BankConsentId: consent, BankAccountId: tt.account, TransactionId: tt.tx,
			})
			wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		})
	}
}

// TestPurchaseDetailsConsentChecks shows that GetPurchaseDetails checks the
// consent and the account exactly as SyncTransactions does: the same
// answer for each state of either.
func TestPurchaseDetailsConsentChecks(t *testing.T) {
	t.Parallel()
	b := newBank(t, sandbox.Options{})
	c := inProcess(t, b, nil)
	revoked := link(t, c, "alice")
	if _, err := b.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: revoked}); err != nil {
		t.Fatal(err)
	}
	accountsOnly, err := c.StartSca(t.Context(), startRequest("alice", "start-accounts-only"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{
		BankConsentId: accountsOnly.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "verify-accounts-only",
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		consent string
		account string
		want    commonv1.ErrorReason
	}{
		{name: "revoked consent", consent: revoked, account: "acc-alice-checking", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED},
		{name: "unknown consent", consent: "cns-unknown", account: "acc-alice-checking", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK},
		{name: "consent without transactions", consent: accountsOnly.GetBankConsentId(), account: "acc-alice-checking", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{name: "unknown account", consent: link(t, c, "alice"), account: "acc-none", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{name: "bank login required", consent: link(t, c, "carol"), account: "acc-any", want: commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
		{name: "bank unavailable", consent: link(t, c, "dave"), account: "acc-any", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, syncErr := b.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{BankConsentId: tt.consent, BankAccountId: tt.account})
			_, err := b.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{
				BankConsentId: tt.consent, BankAccountId: tt.account, TransactionId: "tx-alice-chk-003",
			})
			wantReason(t, syncErr, tt.want)
			wantReason(t, err, tt.want)
		})
	}
}

func TestPurchaseDetailsCapability(t *testing.T) {
	t.Parallel()
	b := newBank(t, sandbox.Options{})
	info, err := b.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.GetCapabilities(), adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS) ||
		!slices.Equal(info.GetCapabilities(), adapters.Capabilities(b)) {
		t.Errorf("Info lists %v, want PURCHASE_DETAILS among exactly what the sandbox implements", info.GetCapabilities())
	}
	// Through the SDK's server, as bankbridge sees it.
	c := remote(t, b, nil)
	_, err = c.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{
		BankConsentId: link(t, c, "alice"), BankAccountId: "acc-alice-card", TransactionId: "tx-alice-card-002",
	})
	if err != nil {
		t.Errorf("GetPurchaseDetails remote: %v", err)
	}
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED) {
		t.Error("the SDK's server does not serve the sandbox's GetPurchaseDetails")
	}
}
