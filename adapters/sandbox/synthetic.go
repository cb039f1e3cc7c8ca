package sandbox

import (
	"fmt"
	mathrand "math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// MaxSyntheticCustomers bounds Options.SyntheticCustomers: the logins have
// four digits, and a sandbox is a test bank, not a data set.
const MaxSyntheticCustomers = 10_000

// syntheticSeed seeds every synthetic customer's draws. It is fixed, not
// Options.Seed, so a customer's data never depends on the error-rate
// seed a test picked.
const syntheticSeed = 0x5e_ed_ba_1a

// SyntheticLogin is the bank login of synthetic customer i (0-based):
// "synth-0000", "synth-0001", ...
func SyntheticLogin(i int) string { return fmt.Sprintf("synth-%04d", i) }

// SyntheticAccountID is the bank account id of synthetic customer i's one
// account.
func SyntheticAccountID(i int) string { return fmt.Sprintf("acc-synth-%04d", i) }

// addSynthetic adds n synthetic customers to customers: logins
// SyntheticLogin(0) to SyntheticLogin(n-1), each well-behaved, with one
// current account (SyntheticAccountID) holding a closing-booked and an
// interim-available balance and two booked transactions. Customer i's
// amounts and masked number come from a PRNG seeded with syntheticSeed and
// i alone, so they are the same whatever n is and from run to run. They
// link like every customer: StartSca with the login as hint, then [Code].
func addSynthetic(customers map[string]*customer, n int, today time.Time) {
	startOfToday := timestamppb.New(today)
	lastNight := timestamppb.New(today.Add(-time.Second))
	day := func(daysAgo int) string { return today.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	for i := range n {
		rng := mathrand.New(mathrand.NewPCG(syntheticSeed, uint64(i)))
		booked := rng.Int64N(20_000_00) + 1_00 // 1.00 to 20,000.99 EUR
		pending := rng.Int64N(100_00)          // up to 99.99 EUR of card payments not booked yet
		salary := rng.Int64N(4_000_00) + 1_000_00
		last4 := fmt.Sprintf("%04d", rng.IntN(10_000))
		login, id := SyntheticLogin(i), SyntheticAccountID(i)
		customers[login] = &customer{login: login, accounts: []*account{{
			id:       id,
			name:     "Everyday account",
			masked:   masked(last4, "•••• "+last4),
			typ:      adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
			currency: "EUR",
			balances: []*adapterv1.Balance{
				{Type: adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, Amount: eur(booked), AsOf: lastNight},
				{Type: adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE, Amount: eur(booked - pending), AsOf: startOfToday},
			},
			history: []*adapterv1.Transaction{
				{TransactionId: id + "-tx-001", Status: adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
					Amount: eur(salary), BookingDate: day(14), ValueDate: day(14), CounterpartyName: "Synthetic Employer", Description: "Salary"},
				{TransactionId: id + "-tx-002", Status: adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
					Amount: eur(-rng.Int64N(200_00) - 1_00), BookingDate: day(3), ValueDate: day(3), CounterpartyName: "Corner Grocery", Description: "Card payment"},
			},
		}}}
	}
}
