package transport_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
)

// holdsToContract fails t unless m keeps the contract's protovalidate
// rules, as a product's client may check them.
func holdsToContract(t *testing.T, m proto.Message) {
	t.Helper()
	if err := protovalidate.Validate(m); err != nil {
		t.Errorf("the answer breaks the contract's rules: %v", err)
	}
}

// TestTheBalanceToShowIsMarked: of the balances a bank reports, exactly
// the one docs/api.md's rule picks carries display, fresh and stale alike.
func TestTheBalanceToShowIsMarked(t *testing.T) {
	t.Parallel()
	e := start(t)
	eur := func(units int64) app.Money { return app.Money{CurrencyCode: "EUR", Units: units} }
	// Alice's sandbox checking account: an available balance that counts
	// the overdraft, and her own money with what is pending.
	e.banks.set(func(b *fakeBanks) {
		b.balances["chk"] = []app.Balance{
			{Type: app.BalanceClosingBooked, Amount: eur(1951), AsOf: readAt.Add(-10 * time.Hour)},
			{Type: app.BalanceInterimBooked, Amount: eur(1951), AsOf: readAt},
			{Type: app.BalanceExpected, Amount: eur(1887), AsOf: readAt},
			{Type: app.BalanceInterimAvailable, Amount: eur(2387), AsOf: readAt, CreditLimitIncluded: true},
			{Type: app.BalanceCreditLimit, Amount: eur(500), AsOf: readAt},
		}
	})
	displayed := func(t *testing.T, b *balancev1.AccountBalance) []balancev1.BalanceType {
		t.Helper()
		holdsToContract(t, b)
		var out []balancev1.BalanceType
		for _, x := range b.GetBalances() {
			if x.GetDisplay() {
				out = append(out, x.GetType())
			}
		}
		return out
	}
	alice := e.as(t, "alice")
	resp, err := e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
	if err != nil {
		t.Fatal(err)
	}
	want := balancev1.BalanceType_BALANCE_TYPE_EXPECTED
	if got := displayed(t, resp.GetBalance()); len(got) != 1 || got[0] != want {
		t.Errorf("display on %v, want on %v alone", got, want)
	}

	e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = true })
	e.clock.Set(readAt.Add(time.Hour))
	resp, err = e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
	if err != nil || !resp.GetBalance().GetStale() {
		t.Fatalf("with the bank down: %v, %v; want the last balance, stale", resp, err)
	}
	if got := displayed(t, resp.GetBalance()); len(got) != 1 || got[0] != want {
		t.Errorf("stale: display on %v, want on %v alone", got, want)
	}
}

// TestPendingTransactionsCarryTheirTime: a pending transaction has no
// booking time, so its transaction_time is the date a chat shows; pending
// ones are listed newest first by it, and a time a bank reports days
// ahead of now is dropped rather than shown.
func TestPendingTransactionsCarryTheirTime(t *testing.T) {
	t.Parallel()
	e := start(t)
	coffee, outdoor := readAt.Add(-2*time.Hour), readAt.Add(-time.Hour)
	e.banks.set(func(b *fakeBanks) {
		pending := func(id string, at time.Time) app.Transaction {
			return app.Transaction{ID: id, Status: app.TransactionPending, Amount: app.Money{CurrencyCode: "EUR", Units: -5}, TransactionTime: at}
		}
		b.txs["chk"] = []app.Transaction{
			pending("coffee", coffee),
			{ID: "t1", Status: app.TransactionBooked, Amount: app.Money{CurrencyCode: "EUR", Units: -1},
				BookingTime: readAt.Add(-48 * time.Hour), TransactionTime: readAt.Add(-50 * time.Hour)},
			pending("outdoor", outdoor),
			pending("skewed", readAt.Add(72*time.Hour)),
		}
	})
	resp, err := e.client.ListTransactions(e.as(t, "alice"), &balancev1.ListTransactionsRequest{Parent: aliceChecking})
	if err != nil {
		t.Fatal(err)
	}
	holdsToContract(t, resp)
	got := map[string]*balancev1.Transaction{}
	var order []string
	for _, tx := range resp.GetTransactions() {
		id := tx.GetName()[len(aliceChecking+"/transactions/"):]
		got[id] = tx
		order = append(order, id)
	}
	if want := []string{"outdoor", "coffee", "skewed", "t1"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v: pending newest first by transaction_time, one without last, then booked", order, want)
	}
	for id, at := range map[string]time.Time{"coffee": coffee, "outdoor": outdoor, "t1": readAt.Add(-50 * time.Hour)} {
		if tt := got[id].GetTransactionTime(); tt == nil || !tt.AsTime().Equal(at) {
			t.Errorf("%s: transaction_time %v, want %v", id, tt, at)
		}
	}
	if got["skewed"].GetTransactionTime() != nil {
		t.Errorf("a time three days ahead was passed on: %v", got["skewed"].GetTransactionTime().AsTime())
	}

	sync, err := e.client.SyncTransactions(e.as(t, "alice"), &balancev1.SyncTransactionsRequest{Parent: aliceChecking})
	if err != nil {
		t.Fatal(err)
	}
	holdsToContract(t, sync)
	for _, tx := range sync.GetAdded() {
		if tx.GetStatus() == balancev1.TransactionStatus_TRANSACTION_STATUS_PENDING && tx.GetTransactionTime() == nil &&
			tx.GetName() != aliceChecking+"/transactions/skewed" {
			t.Errorf("sync: pending %s has no transaction_time", tx.GetName())
		}
	}
}

// TestTheContractRefusesWhatTheServiceNeverSends: the rules the tests
// above check with are live, not vacuous: each new rule refuses its case.
func TestTheContractRefusesWhatTheServiceNeverSends(t *testing.T) {
	t.Parallel()
	now := timestamppb.Now()
	eur := &commonv1.Money{CurrencyCode: "EUR", Units: 1}
	balance := func(typ balancev1.BalanceType, display bool) *balancev1.Balance {
		return &balancev1.Balance{Type: typ, Amount: eur, AsOf: now, Display: display}
	}
	accountBalance := func(bs ...*balancev1.Balance) *balancev1.AccountBalance {
		return &balancev1.AccountBalance{Name: aliceChecking + "/balance", AsOf: now, Balances: bs}
	}
	pending := func(at time.Time) *balancev1.Transaction {
		return &balancev1.Transaction{Name: aliceChecking + "/transactions/p1", Amount: eur,
			Status: balancev1.TransactionStatus_TRANSACTION_STATUS_PENDING, TransactionTime: timestamppb.New(at)}
	}
	tests := []struct {
		name string
		msg  proto.Message
		rule string // "" when valid
	}{
		{"one balance displayed", accountBalance(balance(balancev1.BalanceType_BALANCE_TYPE_EXPECTED, true), balance(balancev1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, false)), ""},
		{"two balances displayed", accountBalance(balance(balancev1.BalanceType_BALANCE_TYPE_EXPECTED, true), balance(balancev1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, true)), "account_balance.display_at_most_once"},
		{"a credit limit displayed", accountBalance(balance(balancev1.BalanceType_BALANCE_TYPE_CREDIT_LIMIT, true)), "balance.credit_limit_never_displayed"},
		{"a pending transaction of an hour ago", pending(time.Now().Add(-time.Hour)), ""},
		{"a pending transaction of tomorrow evening", pending(time.Now().Add(30 * time.Hour)), "transaction.transaction_time_not_future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protovalidate.Validate(tt.msg)
			var rules []string
			if verr := (*protovalidate.ValidationError)(nil); errors.As(err, &verr) {
				for _, v := range verr.Violations {
					rules = append(rules, v.Proto.GetRuleId())
				}
			}
			switch {
			case tt.rule == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.rule != "" && !slices.Equal(rules, []string{tt.rule}):
				t.Errorf("violated %v (%v), want %s alone", rules, err, tt.rule)
			}
		})
	}
}
