package banks_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/balance/internal/banks"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// sandboxBank is the sandbox behind the SDK's registry, in process, and a
// consent alice gave it for accounts, balances and transactions.
func sandboxBank(t *testing.T) (*banks.Adapters, app.BankAccess) {
	t.Helper()
	reg := testkit.SandboxRegistry(t)
	c, err := reg.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference: "u-alice", LoginHint: "alice", IdempotencyKey: "key-00000001",
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS},
		ValidUntil: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: ch.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "key-00000002"})
	if err != nil {
		t.Fatal(err)
	}
	return banks.New(reg), app.BankAccess{BankID: "sandbox", BankConsentID: v.GetBankConsentId(), Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}
}

// TestSandboxInDomainTypes reads alice's data from the sandbox and checks
// it arrives as the domain says: types and statuses by name, money exact,
// numbers masked, dates as times.
func TestSandboxInDomainTypes(t *testing.T) {
	t.Parallel()
	b, at := sandboxBank(t)
	if !slices.Equal(b.IDs(), []string{"sandbox"}) || !b.Has("sandbox") || b.Has("nobank") {
		t.Fatalf("IDs = %v", b.IDs())
	}

	accts, err := b.ListAccounts(t.Context(), at)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]app.BankAccount{}
	for _, a := range accts {
		byID[a.ID] = a
	}
	chk, card := byID["acc-alice-checking"], byID["acc-alice-card"]
	if chk.Type != app.AccountCurrent || chk.MaskedNumber.Last4 != "4821" || chk.CurrencyCode != "EUR" || chk.DisplayName == "" {
		t.Errorf("checking = %+v", chk)
	}
	if card.Type != app.AccountCreditCard {
		t.Errorf("card type = %q, want %q (the protocol's CARD)", card.Type, app.AccountCreditCard)
	}

	balances, err := b.GetBalances(t.Context(), at, "acc-alice-checking")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(balances, func(x app.Balance) bool { return x.Type == app.BalanceInterimAvailable })
	if i < 0 || balances[i].Amount != (app.Money{CurrencyCode: "EUR", Units: 2387, Nanos: 110000000}) || !balances[i].CreditLimitIncluded || balances[i].AsOf.IsZero() {
		t.Errorf("balances = %+v, want INTERIM_AVAILABLE EUR 2387.11 including the credit limit", balances)
	}

	ch, err := b.SyncTransactions(t.Context(), at, "acc-alice-checking", "", 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added) == 0 || ch.NextCursor == "" {
		t.Fatalf("sync = %+v", ch)
	}
	pending := 0
	for _, tx := range ch.Added {
		booked := tx.Status == app.TransactionBooked
		if booked == tx.BookingTime.IsZero() || (!booked && tx.Status != app.TransactionPending) || tx.Amount.CurrencyCode != "EUR" {
			t.Errorf("transaction %+v: booking time must be set exactly when booked", tx)
		}
		// A pending card payment's date is its authorisation time, which
		// the sandbox gives as the protocol's transaction_time.
		if !booked {
			pending++
			if tx.TransactionTime.IsZero() {
				t.Errorf("pending %s has no transaction time", tx.ID)
			}
		}
	}
	if pending == 0 {
		t.Error("alice's checking account has no pending transaction to check")
	}
}

func TestBankErrorsKeepTheirReason(t *testing.T) {
	t.Parallel()
	b, at := sandboxBank(t)
	_, err := b.GetBalances(t.Context(), at, "acc-bob-savings") // not alice's
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	at.BankID = "nobank"
	_, err = b.ListAccounts(t.Context(), at)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND)
}
