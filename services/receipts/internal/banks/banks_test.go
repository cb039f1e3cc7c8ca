package banks_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/banks"
)

// TestSandboxInDomainTypes reads alice's card payments and the purchase
// behind one from the sandbox, through the SDK's registry, and checks they
// arrive as matching needs them: exact money, card last 4, times, and the
// pending payment a booked one replaced named.
func TestSandboxInDomainTypes(t *testing.T) {
	t.Parallel()
	reg := testkit.SandboxRegistry(t)
	c, err := reg.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference: "u-alice", LoginHint: "alice", IdempotencyKey: "key-00000001",
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_TRANSACTIONS},
		ValidUntil: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: ch.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "key-00000002"})
	if err != nil {
		t.Fatal(err)
	}
	b := banks.New(reg)
	at := app.BankAccess{BankID: "sandbox", BankConsentID: v.GetBankConsentId(), Purpose: commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}

	accts, err := b.ListAccounts(t.Context(), at)
	if err != nil || len(accts) == 0 {
		t.Fatalf("ListAccounts = %v, %v", accts, err)
	}
	sync, err := b.SyncTransactions(t.Context(), at, "acc-alice-checking", "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var p02 app.Transaction
	for _, tx := range sync.Added {
		if tx.ID == "tx-alice-chk-p02" {
			p02 = tx
		}
	}
	if p02.Booked || p02.BankCardID == "" || p02.CardLast4 != "1043" || p02.Time.IsZero() || !p02.Card() ||
		!p02.Amount.Equal(app.Money{CurrencyCode: "EUR", Units: -59, Nanos: -990_000_000}) || p02.CounterpartyName != "Nordic Outdoor Online" {
		t.Fatalf("tx-alice-chk-p02 = %+v", p02)
	}

	d, err := b.GetPurchaseDetails(t.Context(), at, "acc-alice-checking", "tx-alice-chk-p02")
	if err != nil {
		t.Fatal(err)
	}
	if d.MerchantName != "Nordic Outdoor Online" || d.OrderNumber != "NO-100234" || len(d.LineItems) != 2 ||
		!d.Total.Equal(app.Money{CurrencyCode: "EUR", Units: 59, Nanos: 990_000_000}) || d.ShippingCost == nil || d.Tax != nil ||
		!d.PurchaseTime.Equal(p02.Time) {
		t.Errorf("purchase details = %+v", d)
	}
	_, err = b.GetPurchaseDetails(t.Context(), at, "acc-alice-checking", "tx-alice-chk-001")
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}
