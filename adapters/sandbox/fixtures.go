package sandbox

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// behaviour is how a sandbox customer's data calls go.
type behaviour int

const (
	// behaveNormally serves data.
	behaveNormally behaviour = iota
	// behaveLoginRequired fails every data call with BANK_LOGIN_REQUIRED.
	behaveLoginRequired
	// behaveUnavailable fails every data call with BANK_UNAVAILABLE.
	behaveUnavailable
	// behaveSlowly takes SlowCustomerDelay before each data call.
	behaveSlowly
)

// FailingCustomers names the fixture customers whose calls fail or drag on
// purpose, for a server's start-up line: on-call reading a failure of
// theirs knows it is injected.
const FailingCustomers = "carol: every data call BANK_LOGIN_REQUIRED; dave: every data call BANK_UNAVAILABLE; erin: every data call slow"

// SlowCustomerDelay is how long every data call of erin takes.
const SlowCustomerDelay = 3 * time.Second

// customer is one fixture: a bank login and what it owns. Fixtures never
// change after New; what calls change lives in Bank.
type customer struct {
	login     string
	behaviour behaviour
	accounts  []*account
	// extensionNeedsSCA makes ExtendConsent always ask for a new SCA, as
	// banks that do not offer reconfirmation without one do.
	extensionNeedsSCA bool
}

func (c *customer) account(id string) *account {
	for _, a := range c.accounts {
		if a.id == id {
			return a
		}
	}
	return nil
}

type account struct {
	id       string
	name     string
	masked   *commonv1.MaskedAccountNumber
	typ      adapterv1.AccountType
	currency string
	balances []*adapterv1.Balance
	// history is the account's transactions before any posting, oldest
	// first.
	history []*adapterv1.Transaction
	// posting, when set, is the booked transaction that replaces the
	// pending one it names on the first sync after the initial one.
	posting *adapterv1.Transaction
	cards   []card
}

type card struct {
	id     string
	masked *commonv1.MaskedAccountNumber
}

// transactions returns the account's transactions as the bank shows them
// before (posted false) or after the posting.
func (a *account) transactions(posted bool) []*adapterv1.Transaction {
	out := make([]*adapterv1.Transaction, 0, len(a.history)+1)
	for _, t := range a.history {
		if posted && a.posting != nil && t.GetTransactionId() == a.posting.GetPendingTransactionId() {
			continue
		}
		out = append(out, t)
	}
	if posted && a.posting != nil {
		out = append(out, a.posting)
	}
	return out
}

func (a *account) hasTransaction(id string) bool {
	return a.transaction(id) != nil
}

// transaction returns the account's transaction with id, pending or
// booked, before or after the posting; nil when it never had one.
func (a *account) transaction(id string) *adapterv1.Transaction {
	for _, t := range a.history {
		if t.GetTransactionId() == id {
			return t
		}
	}
	if a.posting != nil && a.posting.GetTransactionId() == id {
		return a.posting
	}
	return nil
}

func (a *account) card(id string) (card, bool) {
	for _, c := range a.cards {
		if c.id == id {
			return c, true
		}
	}
	return card{}, false
}

func masked(last4, display string) *commonv1.MaskedAccountNumber {
	return &commonv1.MaskedAccountNumber{Last4: last4, Display: display}
}

// eur is an amount in euro cents.
func eur(cents int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "EUR", Units: cents / 100, Nanos: int32(cents%100) * 10_000_000}
}

// fixtures builds the sandbox's customers, their dates counted back from
// today (the day New ran).
func fixtures(today time.Time) map[string]*customer {
	day := func(daysAgo int) string { return today.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	at := func(daysAgo int, hour int) *timestamppb.Timestamp {
		return timestamppb.New(today.AddDate(0, 0, -daysAgo).Add(time.Duration(hour) * time.Hour))
	}
	booked := func(id string, cents int64, daysAgo int, counterparty, description string) *adapterv1.Transaction {
		return &adapterv1.Transaction{
			TransactionId:    id,
			Status:           adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
			Amount:           eur(cents),
			BookingDate:      day(daysAgo),
			ValueDate:        day(daysAgo),
			CounterpartyName: counterparty,
			Description:      description,
		}
	}
	cardPayment := func(t *adapterv1.Transaction, c card, mcc string, daysAgo, hour int) *adapterv1.Transaction {
		t.MerchantCategoryCode = mcc
		t.BankCardId = c.id
		t.MaskedCardNumber = c.masked
		t.TransactionTime = at(daysAgo, hour)
		return t
	}
	pending := func(id string, cents int64, counterparty string) *adapterv1.Transaction {
		return &adapterv1.Transaction{
			TransactionId:    id,
			Status:           adapterv1.TransactionStatus_TRANSACTION_STATUS_PENDING,
			Amount:           eur(cents),
			CounterpartyName: counterparty,
		}
	}
	balance := func(typ adapterv1.BalanceType, cents int64, asOf *timestamppb.Timestamp, creditIncluded bool) *adapterv1.Balance {
		return &adapterv1.Balance{Type: typ, Amount: eur(cents), AsOf: asOf, CreditLimitIncluded: creditIncluded}
	}
	startOfToday := timestamppb.New(today)
	lastNight := timestamppb.New(today.Add(-time.Second))

	aliceDebit := card{id: "card-alice-debit", masked: masked("1043", "•••• 1043")}
	aliceCredit := card{id: "card-alice-credit", masked: masked("7712", "•••• •••• •••• 7712")}
	aliceChecking := &account{
		id:       "acc-alice-checking",
		name:     "Everyday account",
		masked:   masked("4821", "DE•• •••• •••• •••• ••48 21"),
		typ:      adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
		currency: "EUR",
		balances: []*adapterv1.Balance{
			balance(adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, 1_951_60, lastNight, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_INTERIM_BOOKED, 1_951_60, startOfToday, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_EXPECTED, 1_887_11, startOfToday, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE, 2_387_11, startOfToday, true),
			balance(adapterv1.BalanceType_BALANCE_TYPE_CREDIT_LIMIT, 500_00, startOfToday, false),
		},
		history: []*adapterv1.Transaction{
			booked("tx-alice-chk-001", 3_200_00, 12, "ACME Widgets GmbH", "Salary"),
			booked("tx-alice-chk-002", -1_150_00, 10, "Muster Property Management", "Rent"),
			cardPayment(booked("tx-alice-chk-003", -86_40, 4, "Corner Grocery", "Card payment"), aliceDebit, "5411", 4, 18),
			booked("tx-alice-chk-004", -12_00, 2, "City Transit", "Monthly pass"),
			cardPayment(pending("tx-alice-chk-p01", -4_50, "Blue Door Coffee"), aliceDebit, "5814", 0, 8),
			cardPayment(pending("tx-alice-chk-p02", -59_99, "Nordic Outdoor Online"), aliceDebit, "5941", 0, 9),
		},
		posting: func() *adapterv1.Transaction {
			t := cardPayment(booked("tx-alice-chk-005", -4_50, 0, "Blue Door Coffee", "Card payment"), aliceDebit, "5814", 0, 8)
			t.PendingTransactionId = "tx-alice-chk-p01"
			return t
		}(),
		cards: []card{aliceDebit},
	}
	aliceCard := &account{
		id:       "acc-alice-card",
		name:     "Credit card",
		masked:   aliceCredit.masked,
		typ:      adapterv1.AccountType_ACCOUNT_TYPE_CARD,
		currency: "EUR",
		balances: []*adapterv1.Balance{
			balance(adapterv1.BalanceType_BALANCE_TYPE_CREDIT_LIMIT, 3_000_00, startOfToday, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_NON_INVOICED, -245_10, startOfToday, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE, 2_634_90, startOfToday, true),
		},
		history: []*adapterv1.Transaction{
			cardPayment(booked("tx-alice-card-001", -180_60, 9, "Hotel Alpenblick", "Card payment"), aliceCredit, "7011", 9, 21),
			cardPayment(booked("tx-alice-card-002", -64_50, 6, "Trattoria Roma", "Card payment"), aliceCredit, "5812", 6, 20),
			cardPayment(pending("tx-alice-card-p01", -120_00, "SkyJet Airlines"), aliceCredit, "4511", 1, 11),
		},
		cards: []card{aliceCredit},
	}
	bobSavings := &account{
		id:       "acc-bob-savings",
		name:     "Savings account",
		masked:   masked("3390", "•••• 3390"),
		typ:      adapterv1.AccountType_ACCOUNT_TYPE_SAVINGS,
		currency: "EUR",
		balances: []*adapterv1.Balance{
			balance(adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, 10_512_34, lastNight, false),
			balance(adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE, 10_512_34, startOfToday, false),
		},
		history: []*adapterv1.Transaction{
			booked("tx-bob-sav-001", 500_00, 20, "Bob's Everyday account", "Monthly savings"),
			booked("tx-bob-sav-002", 12_34, 1, "Sandbox Bank", "Interest"),
		},
	}
	erinChecking := &account{
		id:       "acc-erin-checking",
		name:     "Everyday account",
		masked:   masked("5567", "•••• 5567"),
		typ:      adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
		currency: "EUR",
		balances: []*adapterv1.Balance{
			balance(adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, 42_00, lastNight, false),
		},
		history: []*adapterv1.Transaction{
			booked("tx-erin-chk-001", 42_00, 3, "Erin's Savings", "Transfer"),
		},
	}

	return map[string]*customer{
		"alice": {login: "alice", accounts: []*account{aliceChecking, aliceCard}},
		"bob":   {login: "bob", accounts: []*account{bobSavings}, extensionNeedsSCA: true},
		"carol": {login: "carol", behaviour: behaveLoginRequired},
		"dave":  {login: "dave", behaviour: behaveUnavailable},
		"erin":  {login: "erin", behaviour: behaveSlowly, accounts: []*account{erinChecking}},
	}
}
