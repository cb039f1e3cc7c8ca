package app_test

import (
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

const chk = "users/alice/accounts/sandbox~chk/transactions/"

// TestMatching matches one receipt against the card payments the bank
// reports, and checks what the user would see on it: the transaction and
// how sure, or no match when none or two could be it.
func TestMatching(t *testing.T) {
	t.Parallel()
	paid := now.Add(-3 * time.Hour)
	pending := card("p1", 59_99, paid, "NORDIC OUTDOOR", "1043")
	pending.Booked = false
	pending.BookingDate = time.Time{}
	booked := card("b1", 59_99, paid, "NORDIC OUTDOOR", "1043")
	booked.PendingID = "p1"
	dateOnly := card("d1", 59_99, time.Time{}, "Nordic Outdoor", "1043")
	dateOnly.BookingDate = paid.AddDate(0, 0, 1).Truncate(24 * time.Hour)
	notCard := card("t1", 59_99, paid, "Nordic Outdoor", "1043")
	notCard.BankCardID, notCard.CardLast4 = "", ""
	usd := card("t1", 59_99, paid, "Nordic Outdoor", "1043")
	usd.Amount.CurrencyCode = "USD"

	tests := []struct {
		name    string
		receipt app.Content
		txs     []app.Transaction
		acme    []app.Transaction // at a second bank
		want    string            // transaction id; "" for no match
		conf    app.Confidence
	}{
		{"exactly one candidate, card last 4 given: HIGH", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid.Add(time.Minute), "NORDIC OUTDOOR", "1043"), card("t2", 12_00, paid, "NORDIC OUTDOOR", "1043")}, nil, "t1", app.ConfidenceHigh},
		{"no last 4 on the receipt: MEDIUM", receipt("Nordic Outdoor Online", paid, 59_99, ""),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "1043")}, nil, "t1", app.ConfidenceMedium},
		{"two candidates: no guess", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "1043"), card("t2", 59_99, paid.Add(time.Hour), "Nordic Outdoor", "1043")}, nil, "", ""},
		{"two candidates at two banks: no guess", receipt("Nordic Outdoor Online", paid, 59_99, ""),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "1043")}, []app.Transaction{card("a1", 59_99, paid, "Nordic Outdoor", "7712")}, "", ""},
		{"the card's last 4 tells two apart", receipt("Nordic Outdoor Online", paid, 59_99, "7712"),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "1043")}, []app.Transaction{card("a1", 59_99, paid, "Nordic Outdoor", "7712")}, "a1", app.ConfidenceHigh},
		{"a booked payment replacing its pending one is one candidate: the booked", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{pending, booked}, nil, "b1", app.ConfidenceHigh},
		{"a booking date stands in for a missing time", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{dateOnly}, nil, "d1", app.ConfidenceHigh},
		{"within a day before the purchase", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid.Add(-23*time.Hour), "Nordic Outdoor", "1043")}, nil, "t1", app.ConfidenceHigh},
		{"more than a day before the purchase", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid.Add(-25*time.Hour), "Nordic Outdoor", "1043")}, nil, "", ""},
		{"more than 3 days after the purchase", receipt("Nordic Outdoor Online", paid.Add(-5*24*time.Hour), 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "1043")}, nil, "", ""},
		{"another currency", receipt("Nordic Outdoor Online", paid, 59_99, "1043"), []app.Transaction{usd}, nil, "", ""},
		{"another amount, by a cent", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_98, paid, "Nordic Outdoor", "1043")}, nil, "", ""},
		{"another card", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Outdoor", "9999")}, nil, "", ""},
		{"not a card payment", receipt("Nordic Outdoor Online", paid, 59_99, ""), []app.Transaction{notCard}, nil, "", ""},
		{"a refund is no purchase", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", -59_99, paid, "Nordic Outdoor", "1043")}, nil, "", ""},
		{"another merchant", receipt("Nordic Outdoor Online", paid, 59_99, "1043"),
			[]app.Transaction{card("t1", 59_99, paid, "Nordic Bakery", "1043")}, nil, "", ""},
		{"a legal form and punctuation are no difference", receipt("Corner Grocery GmbH", paid, 86_40, ""),
			[]app.Transaction{card("t1", 86_40, paid, "CORNER-GROCERY", "1043")}, nil, "t1", app.ConfidenceMedium},
		{"accents and a web suffix are no difference", receipt("Café Lumière", paid, 8_40, ""),
			[]app.Transaction{card("t1", 8_40, paid, "WWW.CAFELUMIERE.COM", "1043"), card("t2", 8_40, paid, "CAFE LUMIERE LTD", "1043")}, nil, "t2", app.ConfidenceMedium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.optIn("alice", "puid-alice-0001")
			e.banks.AddTransactions("sandbox", "chk", tt.txs...)
			if tt.acme != nil {
				e.consent.AddLink("alice", "acme")
				e.banks.AddTransactions("acme", "card", tt.acme...)
			}
			e.ingest(t, "puid-alice-0001", "ORD-1", tt.receipt)
			if _, err := e.svc.MatchDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			r := e.only(t, "alice")
			switch {
			case tt.want == "" && r.Match != nil:
				t.Fatalf("matched %+v, want no match", r.Match)
			case tt.want == "":
				return
			case r.Match == nil:
				t.Fatalf("no match, want %s", tt.want)
			}
			if !strings.HasSuffix(r.Match.Transaction, "/transactions/"+tt.want) || r.Match.Confidence != tt.conf || !r.Match.Time.Equal(now) {
				t.Errorf("match = %+v, want %s %s", r.Match, tt.want, tt.conf)
			}
		})
	}
}

// TestMatchRetriesUntilTheTransactionAppears: the receipt comes before the
// bank reports the payment; matching is tried again after a backoff, and
// the match then made is an event.
func TestMatchRetriesUntilTheTransactionAppears(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.optIn("alice", "puid-alice-0001")
	paid := now.Add(-time.Hour)
	e.ingest(t, "puid-alice-0001", "ORD-1", receipt("Nordic Outdoor Online", paid, 59_99, "1043"))
	e.ingest(t, "puid-alice-0001", "ORD-2", receipt("Nowhere Shop", paid, 1_00, ""))
	if n, err := e.svc.MatchDue(t.Context()); err != nil || n != 2 {
		t.Fatalf("MatchDue = %d, %v; want both jobs run at once", n, err)
	}
	for _, r := range e.receipts(t, "alice") {
		if r.Match != nil {
			t.Fatalf("matched before the bank reported anything: %+v", r.Match)
		}
	}

	e.banks.AddTransactions("sandbox", "chk", card("tx-9", 59_99, paid, "NORDIC OUTDOOR", "1043"))
	e.clock.Add(30 * time.Second)
	if n, _ := e.svc.MatchDue(t.Context()); n != 0 {
		t.Fatalf("%d jobs run before their backoff", n)
	}
	e.clock.Add(30 * time.Second)
	if n, err := e.svc.MatchDue(t.Context()); err != nil || n != 2 {
		t.Fatalf("MatchDue after a minute = %d, %v", n, err)
	}
	rs, _, _ := e.svc.ListReceipts(t.Context(), app.ListInput{User: "alice", Filter: app.Filter{Match: app.MatchMatched}})
	if len(rs) != 1 || rs[0].Match.Transaction != chk+"tx-9" || rs[0].Match.Confidence != app.ConfidenceHigh {
		t.Fatalf("matched = %+v", rs)
	}
	if got := e.eventTypes(t, rs[0]); strings.Join(got, " ") != app.EventCreated+" "+app.EventMatched {
		t.Errorf("events = %v", got)
	}
	// Each bank read is in alice's access log, as the service's own read
	// of transactions for purchase history.
	var reads int
	for _, en := range e.consent.Entries() {
		if en.Method == app.MethodMatch {
			reads++
			if en.ClientID != "receipts" || en.User != "alice" || en.Scope != commonv1.Scope_SCOPE_TRANSACTIONS ||
				en.Purpose != commonv1.Purpose_PURPOSE_PURCHASE_HISTORY || !en.Allowed || en.Resource != "users/alice/links/l-sandbox-0" {
				t.Errorf("access log entry = %+v", en)
			}
		}
	}
	if reads != 2 {
		t.Errorf("%d bank reads recorded, want 2 (one per run)", reads)
	}

	// The other receipt is retried with a growing backoff until 14 days
	// have passed, then left unmatched for good.
	if n := e.count(t, "match_jobs", "user_id = $1", "alice"); n != 1 {
		t.Fatalf("%d match jobs left, want the unmatched one", n)
	}
	e.clock.Add(15 * 24 * time.Hour)
	if _, err := e.svc.MatchDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "match_jobs", "user_id = $1", "alice"); n != 0 {
		t.Errorf("%d match jobs left after 14 days", n)
	}
}

// TestMatchWaitsForABankThatIsDown: a bank that cannot be read could hold
// a second candidate, so nothing is matched until it can.
func TestMatchWaitsForABankThatIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.optIn("alice", "puid-alice-0001")
	e.consent.AddLink("alice", "acme")
	paid := now.Add(-time.Hour)
	e.banks.AddTransactions("sandbox", "chk", card("tx-1", 59_99, paid, "Nordic Outdoor", "1043"))
	e.banks.SetDown("acme", true)
	e.ingest(t, "puid-alice-0001", "ORD-1", receipt("Nordic Outdoor Online", paid, 59_99, "1043"))
	if _, err := e.svc.MatchDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t, "alice"); r.Match != nil {
		t.Fatalf("matched while a bank was down: %+v", r.Match)
	}
	if logs := testkit.WithoutRandomFields(e.logs.String()); strings.Contains(logs, "alice") || strings.Contains(logs, "59") {
		t.Errorf("the logs name the user or an amount:\n%s", logs)
	}
	e.banks.SetDown("acme", false)
	e.clock.Add(time.Minute)
	if _, err := e.svc.MatchDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.only(t, "alice"); r.Match == nil || r.Match.Transaction != chk+"tx-1" {
		t.Errorf("match once the bank is back = %+v", r.Match)
	}
}
