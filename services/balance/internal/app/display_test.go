package app

import (
	"testing"
	"time"
)

// TestTheBalanceToShow: the rule of docs/api.md "Which balance to show",
// over the sets of balance types banks report.
func TestTheBalanceToShow(t *testing.T) {
	t.Parallel()
	type b struct {
		typ    BalanceType
		credit bool
	}
	tests := []struct {
		name     string
		balances []b
		want     int // index of the one marked, -1 for none
	}{
		{"available over everything", []b{{BalanceClosingBooked, false}, {BalanceExpected, false}, {BalanceInterimAvailable, false}}, 2},
		{"expected when nothing is available", []b{{BalanceClosingBooked, false}, {BalanceInterimBooked, false}, {BalanceExpected, false}}, 2},
		{"today's booked over last night's", []b{{BalanceClosingBooked, false}, {BalanceInterimBooked, false}}, 1},
		{"closing over opening", []b{{BalanceOpeningBooked, false}, {BalanceClosingBooked, false}}, 1},
		{"own money over an available that counts the overdraft", []b{{BalanceInterimAvailable, true}, {BalanceExpected, false}, {BalanceCreditLimit, false}}, 1},
		{"the same type without the credit limit", []b{{BalanceInterimAvailable, true}, {BalanceInterimAvailable, false}}, 1},
		{"with the credit limit when nothing else is reported", []b{{BalanceCreditLimit, false}, {BalanceInterimAvailable, true}}, 1},
		{"a card: spending not invoiced over available credit", []b{{BalanceCreditLimit, false}, {BalanceNonInvoiced, false}, {BalanceInterimAvailable, true}}, 1},
		{"a forward balance only as a last resort", []b{{BalanceForwardAvailable, false}, {BalanceNonInvoiced, false}}, 1},
		{"a credit limit alone is not a balance", []b{{BalanceCreditLimit, false}}, -1},
		{"nothing reported", nil, -1},
		{"a type unknown to the rule", []b{{BalanceType("SOMETHING_NEW"), false}, {BalanceOpeningBooked, false}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			balances := make([]Balance, len(tt.balances))
			for i, x := range tt.balances {
				// Display set on every input: the rule also clears it.
				balances[i] = Balance{Type: x.typ, CreditLimitIncluded: x.credit, Display: true}
			}
			markDisplay(balances)
			got := -1
			for i, x := range balances {
				if x.Display {
					if got >= 0 {
						t.Fatalf("both %v and %v marked", balances[got], x)
					}
					got = i
				}
			}
			if got != tt.want {
				t.Errorf("marked #%d, want #%d of %+v", got, tt.want, tt.balances)
			}
		})
	}
}

func TestATransactionTimeInTheFutureIsDropped(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	ts := []Transaction{
		{ID: "local-time-as-utc", TransactionTime: now.Add(14 * time.Hour)},
		{ID: "a day ahead", TransactionTime: now.Add(24 * time.Hour)},
		{ID: "next week", TransactionTime: now.Add(7 * 24 * time.Hour)},
		{ID: "none"},
	}
	dropFutureTimes(ts, now)
	for i, want := range []time.Time{now.Add(14 * time.Hour), now.Add(24 * time.Hour), {}, {}} {
		if !ts[i].TransactionTime.Equal(want) {
			t.Errorf("%s: transaction time %v, want %v", ts[i].ID, ts[i].TransactionTime, want)
		}
	}
}
