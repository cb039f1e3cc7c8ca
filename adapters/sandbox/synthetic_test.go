package sandbox_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// syntheticBalances links synthetic customer i with the sandbox code and
// returns its one account's id and balances.
func syntheticBalances(t *testing.T, c adapterv1.BankAdapterServiceClient, i int) (string, []*adapterv1.Balance) {
	t.Helper()
	consent := link(t, c, sandbox.SyntheticLogin(i))
	accounts, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts.GetAccounts()) != 1 {
		t.Fatalf("%s has %d accounts, want 1", sandbox.SyntheticLogin(i), len(accounts.GetAccounts()))
	}
	a := accounts.GetAccounts()[0]
	if paths := conformance.UnmaskedNumbers(a); len(paths) > 0 {
		t.Errorf("account shows a full number at %v", paths)
	}
	resp, err := c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: a.GetBankAccountId()})
	if err != nil {
		t.Fatal(err)
	}
	return a.GetBankAccountId(), resp.GetBalances()
}

// TestSyntheticCustomers: --synthetic-customers N adds logins synth-0000
// to synth-(N-1), which link with the sandbox code like every customer and
// serve one account whose balances are the same from one bank to another,
// whatever N, and differ between customers; synth-N does not exist.
func TestSyntheticCustomers(t *testing.T) {
	t.Parallel()
	small := inProcess(t, newBank(t, sandbox.Options{SyntheticCustomers: 3}), nil)
	large := remote(t, newBank(t, sandbox.Options{SyntheticCustomers: 1000}), nil)

	id, balances := syntheticBalances(t, small, 2)
	if id != sandbox.SyntheticAccountID(2) {
		t.Errorf("account id %q, want %q", id, sandbox.SyntheticAccountID(2))
	}
	if len(balances) != 2 {
		t.Fatalf("%d balances, want 2: %v", len(balances), balances)
	}
	_, again := syntheticBalances(t, large, 2)
	for i := range balances {
		if !proto.Equal(balances[i].GetAmount(), again[i].GetAmount()) || balances[i].GetType() != again[i].GetType() {
			t.Errorf("balance %d: %v from a bank of 3 synthetic customers, %v from one of 1,000", i, balances[i], again[i])
		}
	}
	_, other := syntheticBalances(t, large, 999)
	if proto.Equal(balances[0].GetAmount(), other[0].GetAmount()) {
		t.Errorf("synth-0002 and synth-0999 have the same balance %v: not drawn per customer", balances[0].GetAmount())
	}

	_, err := small.StartSca(t.Context(), startRequest(sandbox.SyntheticLogin(3), "synthetic-beyond-n"))
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	_, err = inProcess(t, newBank(t, sandbox.Options{}), nil).StartSca(t.Context(), startRequest(sandbox.SyntheticLogin(0), "synthetic-off"))
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

func TestSyntheticCustomersBounded(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, sandbox.MaxSyntheticCustomers + 1} {
		if _, err := sandbox.New(sandbox.Options{SyntheticCustomers: n}); err == nil {
			t.Errorf("New with %d synthetic customers: no error", n)
		}
	}
}
