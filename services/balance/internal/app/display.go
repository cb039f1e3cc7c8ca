package app

import "time"

// displayOrder is which balance a product shows as "the balance" of an
// account, best first (the contract's Balance.display, docs/api.md "Which
// balance to show"): what the user can spend now, then the booked balance
// with what is pending, then the booked balance of today, of last night,
// of this morning, then a card's spending not yet invoiced, and only then a
// balance of a future date. CREDIT_LIMIT is not money on the account and is
// never shown as its balance.
var displayOrder = []BalanceType{
	BalanceInterimAvailable,
	BalanceExpected,
	BalanceInterimBooked,
	BalanceClosingBooked,
	BalanceOpeningBooked,
	BalanceNonInvoiced,
	BalanceForwardAvailable,
}

// markDisplay sets Display on the one balance to show, in place: the first
// type of displayOrder the bank reports, taking a balance without the
// credit limit (the user's own money) over any balance that includes it,
// whatever its type. None is marked when only a credit limit, or nothing,
// is reported.
func markDisplay(balances []Balance) {
	best := -1
	rank := func(b Balance) int {
		for i, t := range displayOrder {
			if b.Type == t {
				if b.CreditLimitIncluded {
					return len(displayOrder) + i
				}
				return i
			}
		}
		return -1
	}
	for i := range balances {
		balances[i].Display = false
		if r := rank(balances[i]); r >= 0 && (best < 0 || r < rank(balances[best])) {
			best = i
		}
	}
	if best >= 0 {
		balances[best].Display = true
	}
}

// dropFutureTimes clears a transaction time more than a day after now: a
// bank's clock error, not a moment a product should show. A day covers a
// bank that reports local time as UTC.
func dropFutureTimes(ts []Transaction, now time.Time) {
	limit := now.Add(maxTransactionTimeAhead)
	for i := range ts {
		if ts[i].TransactionTime.After(limit) {
			ts[i].TransactionTime = time.Time{}
		}
	}
}

// maxTransactionTimeAhead is how far after bankbridge's clock a
// transaction time may lie (the contract's
// transaction.transaction_time_not_future rule).
const maxTransactionTimeAhead = 24 * time.Hour
