package app

import (
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// The domain: what balance knows of accounts, balances and transactions,
// whatever the bank's adapter protocol or the public contract call them.
// Enum values are the names both contracts share (after ISO 20022 and
// Berlin Group), so each side maps them by name.

// AccountType is the kind of an account.
type AccountType string

// Account types.
const (
	AccountCurrent     AccountType = "CURRENT"
	AccountSavings     AccountType = "SAVINGS"
	AccountCreditCard  AccountType = "CREDIT_CARD"
	AccountLoan        AccountType = "LOAN"
	AccountMortgage    AccountType = "MORTGAGE"
	AccountMoneyMarket AccountType = "MONEY_MARKET"
	AccountOther       AccountType = "OTHER"
)

// AccountStatus is whether the bank still operates an account.
type AccountStatus string

// Account statuses.
const (
	AccountActive  AccountStatus = "ACTIVE"
	AccountBlocked AccountStatus = "BLOCKED"
	AccountClosed  AccountStatus = "CLOSED"
)

// BalanceType is the kind of a balance (ISO 20022 BalanceType12Code).
type BalanceType string

// Balance types.
const (
	BalanceClosingBooked    BalanceType = "CLOSING_BOOKED"
	BalanceExpected         BalanceType = "EXPECTED"
	BalanceOpeningBooked    BalanceType = "OPENING_BOOKED"
	BalanceInterimAvailable BalanceType = "INTERIM_AVAILABLE"
	BalanceInterimBooked    BalanceType = "INTERIM_BOOKED"
	BalanceForwardAvailable BalanceType = "FORWARD_AVAILABLE"
	BalanceNonInvoiced      BalanceType = "NON_INVOICED"
	BalanceCreditLimit      BalanceType = "CREDIT_LIMIT"
)

// TransactionStatus is whether the bank has booked a transaction; "" as a
// filter means both.
type TransactionStatus string

// Transaction statuses.
const (
	TransactionPending TransactionStatus = "PENDING"
	TransactionBooked  TransactionStatus = "BOOKED"
)

// Money is an exact amount: Units whole units and Nanos billionths of the
// currency, both of the same sign.
type Money struct {
	CurrencyCode string
	Units        int64
	Nanos        int32
}

// MaskedNumber is an account number as it may leave bankbridge: its last
// four characters and a display form.
type MaskedNumber struct {
	Last4   string
	Display string
}

// BankAccount is an account as its bank describes it.
type BankAccount struct {
	// ID is the bank's id for the account, never its number.
	ID           string
	DisplayName  string
	MaskedNumber MaskedNumber
	Type         AccountType
	CurrencyCode string
}

// Account is one of the user's accounts: the bank's account, named, with
// the link whose consent shared it.
type Account struct {
	Name names.Account
	// Link is the consent link, users/{user}/links/{link}.
	Link   string
	Status AccountStatus
	BankAccount
}

// Balance is one balance of an account, as the bank reports it.
type Balance struct {
	Type   BalanceType
	Amount Money
	// AsOf is the moment the bank says the amount refers to.
	AsOf                time.Time
	CreditLimitIncluded bool
	// Display marks the one balance to show as the account's balance
	// (markDisplay).
	Display bool
}

// AccountBalance is an account's balances as read from the bank at AsOf;
// Stale when they are the last ones read, served while the bank is down.
type AccountBalance struct {
	Account  names.Account
	Balances []Balance
	AsOf     time.Time
	Stale    bool
}

func (b AccountBalance) clone() AccountBalance {
	b.Balances = slices.Clone(b.Balances)
	return b
}

// Transaction is one movement of money on an account.
type Transaction struct {
	// ID is the bank's id for the transaction.
	ID string
	// PendingID, for a booked transaction that replaced a pending one, is
	// the pending one's id.
	PendingID string
	Status    TransactionStatus
	// Amount is negative when money leaves the account.
	Amount Money
	// BookingTime is set exactly when Status is booked.
	BookingTime time.Time
	ValueTime   time.Time
	// TransactionTime is when the transaction took place (e.g. a card
	// authorisation), as the bank reports it; zero when it does not. The
	// date to show for a pending transaction.
	TransactionTime      time.Time
	Description          string
	CounterpartyName     string
	MerchantCategoryCode string
}

// TransactionChanges are the changes to an account's transactions since a
// cursor, as the bank reports them.
type TransactionChanges struct {
	Added, Modified []Transaction
	// Removed are the ids of transactions gone since.
	Removed    []string
	NextCursor string
	HasMore    bool
}
