package xs2asandbox

import "time"

// The sandbox's PSUs, chosen by the PSU-ID header of POST /v1/consents.
// Every one of them accepts [OTP] as the one-time password.
const (
	// PSUAnna has a current account (balances closingBooked, expected and
	// interimAvailable with the credit line included; booked and pending
	// transactions, one of which posts on the second listing) and a
	// savings account.
	PSUAnna = "anna"
	// PSUBen has one current account: the second customer, whose accounts
	// anna's consent must not reach.
	PSUBen = "ben"
	// PSUDora's consents are granted, but her bank's account servers are
	// down: every account call answers 503 with Retry-After.
	PSUDora = "dora"
	// PSUCarl's online banking access is blocked: every account call
	// answers 403 SERVICE_BLOCKED.
	PSUCarl = "carl"
	// PSURita's TPP is over its access limit: every account call answers
	// 429 ACCESS_EXCEEDED with Retry-After.
	PSURita = "rita"
)

// DownRetryAfter and RateLimitRetryAfter are the Retry-After the sandbox
// sends for PSUDora's 503 and PSURita's 429.
const (
	DownRetryAfter      = 30 * time.Second
	RateLimitRetryAfter = 7 * time.Second
)

// failure is how a PSU's account calls fail, if they do.
type failure int

const (
	failNone failure = iota
	failDown
	failBlocked
	failRateLimited
)

type psu struct {
	id       string
	fail     failure
	accounts []*account
}

type account struct {
	resourceID string
	iban       string
	currency   string
	name       string
	product    string
	cashType   string
	balances   []balance
	booked     []transaction
	pending    []transaction
	// posting, when set, is a pending transaction the bank books on the
	// account's second listing (listings counts them).
	posting  *transaction
	listings int
}

type balance struct {
	typ                 string
	amount              string
	creditLimitIncluded bool
	referenceDate       string
	lastChange          time.Time
}

type transaction struct {
	id          string
	entryRef    string
	bookingDate string
	valueDate   string
	amount      string
	creditor    string
	debtor      string
	remittance  string
	bankTxCode  string
	mcc         string
	posted      bool
}

// fixtures builds the PSUs, their dates counted back from today.
func fixtures(now time.Time) map[string]*psu {
	day := func(daysAgo int) string { return now.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	anna := &psu{id: PSUAnna, accounts: []*account{
		{
			resourceID: "acc-anna-cur", iban: "DE89370400440532013000", currency: "EUR",
			name: "Anna's current account", product: "Girokonto", cashType: "CACC",
			balances: []balance{
				{typ: "closingBooked", amount: "1520.35", referenceDate: day(1)},
				{typ: "expected", amount: "1484.10", lastChange: now.Add(-10 * time.Minute)},
				{typ: "interimAvailable", amount: "2984.10", creditLimitIncluded: true, lastChange: now.Add(-10 * time.Minute)},
				// information has no bankbridge balance type: the adapter leaves it out.
				{typ: "information", amount: "1500.00", referenceDate: day(0)},
			},
			booked: []transaction{
				{id: "tx-anna-001", entryRef: "E001", bookingDate: day(20), valueDate: day(20), amount: "2450.00", debtor: "ACME GmbH", remittance: "Salary", bankTxCode: "PMNT-RCDT-ESCT"},
				{id: "tx-anna-002", entryRef: "E002", bookingDate: day(15), valueDate: day(15), amount: "-850.00", creditor: "Hausverwaltung Nord", remittance: "Rent", bankTxCode: "PMNT-ICDT-STDO"},
				{id: "tx-anna-003", entryRef: "E003", bookingDate: day(9), valueDate: day(9), amount: "-42.17", creditor: "Supermarkt Mitte", remittance: "Card payment", bankTxCode: "PMNT-CCRD-POSD", mcc: "5411"},
				{id: "tx-anna-004", entryRef: "E004", bookingDate: day(4), valueDate: day(4), amount: "-19.99", creditor: "Streaming Co", remittance: "Subscription", bankTxCode: "PMNT-CCRD-POSD", mcc: "4899"},
				{id: "tx-anna-005", entryRef: "E005", bookingDate: day(2), valueDate: day(2), amount: "-60.00", creditor: "Tankstelle Ost", remittance: "Fuel", bankTxCode: "PMNT-CCRD-POSD", mcc: "5541"},
			},
			pending: []transaction{
				{id: "tx-anna-006", valueDate: day(0), amount: "-32.85", creditor: "Buchhandlung", remittance: "Card payment", mcc: "5942"},
			},
			posting: &transaction{id: "tx-anna-007", valueDate: day(0), amount: "-3.40", creditor: "Café am Markt", remittance: "Coffee", mcc: "5814"},
		},
		{
			resourceID: "acc-anna-sav", iban: "DE02120300000000202051", currency: "EUR",
			name: "Anna's savings", product: "Tagesgeld", cashType: "SVGS",
			balances: []balance{
				{typ: "closingBooked", amount: "10250.00", referenceDate: day(1)},
				{typ: "interimBooked", amount: "10250.00", lastChange: now.Add(-time.Hour)},
			},
			booked: []transaction{
				{id: "tx-anna-s01", entryRef: "S001", bookingDate: day(30), valueDate: day(30), amount: "250.00", debtor: "Anna", remittance: "Savings plan", bankTxCode: "PMNT-RCDT-ESCT"},
				{id: "tx-anna-s02", entryRef: "S002", bookingDate: day(1), valueDate: day(1), amount: "0.42", remittance: "Interest", bankTxCode: "ACMT-MDOP-INTR"},
			},
		},
	}}
	ben := &psu{id: PSUBen, accounts: []*account{{
		resourceID: "acc-ben-cur", iban: "DE75512108001245126199", currency: "EUR",
		name: "Ben's account", product: "Girokonto", cashType: "CACC",
		balances: []balance{{typ: "closingBooked", amount: "-12.50", referenceDate: day(1)}},
		booked: []transaction{
			{id: "tx-ben-001", entryRef: "B001", bookingDate: day(3), valueDate: day(3), amount: "-12.50", creditor: "Bäckerei", remittance: "Bread", bankTxCode: "PMNT-CCRD-POSD"},
		},
	}}}
	simple := func(id string, f failure) *psu {
		return &psu{id: id, fail: f, accounts: []*account{{
			resourceID: "acc-" + id, iban: "DE44500105175407324931", currency: "EUR",
			name: "Current account", cashType: "CACC",
			balances: []balance{{typ: "closingBooked", amount: "100.00", referenceDate: day(1)}},
		}}}
	}
	return map[string]*psu{
		PSUAnna: anna,
		PSUBen:  ben,
		PSUDora: simple(PSUDora, failDown),
		PSUCarl: simple(PSUCarl, failBlocked),
		PSURita: simple(PSURita, failRateLimited),
	}
}
