package app_test

import (
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// details is what an issuer tells of a purchase of items at merchant.
func details(merchant string, at time.Time, items ...app.LineItem) app.PurchaseDetails {
	d := app.PurchaseDetails{MerchantName: merchant, PurchaseTime: at, LineItems: items}
	var cents int64
	for _, it := range items {
		cents += int64(it.Quantity) * (it.UnitPrice.Units*100 + int64(it.UnitPrice.Nanos)/10_000_000)
	}
	d.Subtotal, d.Total = ptr(eur(cents)), eur(cents)
	return d
}

// TestIssuerReceipts imports the purchase details card issuers give as
// receipts matched to their transactions, and drops what does not add up.
func TestIssuerReceipts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	paid := now.Add(-2 * time.Hour)
	e.consent.AddLink("alice", "sandbox") // covers receipts too
	e.consent.AddLink("alice", "acme")    // an issuer without purchase details
	e.consent.AddLink("alice", "plain", commonv1.Scope_SCOPE_TRANSACTIONS)
	e.banks.WithoutDetails("acme")

	good := card("tx-good", 59_99, paid, "NORDIC OUTDOOR", "1043")
	bad := card("tx-bad", 86_40, paid, "Corner Grocery", "1043")
	none := card("tx-none", 4_50, paid, "Blue Door Coffee", "1043")
	old := card("tx-old", 12_00, now.AddDate(0, 0, -100), "Old Shop", "1043")
	transfer := card("tx-rent", 1_150_00, paid, "Landlord", "")
	transfer.BankCardID = ""
	pending := card("tx-p1", 8_00, paid, "Kiosk", "1043")
	pending.Booked, pending.BookingDate = false, time.Time{}
	e.banks.AddTransactions("sandbox", "chk", good, bad, none, old, transfer, pending)
	e.banks.AddTransactions("acme", "card", card("tx-acme", 10_00, paid, "Acme", "7712"))
	e.banks.AddTransactions("plain", "chk", card("tx-plain", 10_00, paid, "Plain", "5555"))
	e.banks.SetDetails("tx-good", details("Nordic Outdoor Online", paid,
		app.LineItem{Title: "Trail running socks", Quantity: 2, UnitPrice: eur(12_50)},
		app.LineItem{Title: "Headlamp", Quantity: 1, UnitPrice: eur(34_99)}))
	wrong := details("Corner Grocery", paid, app.LineItem{Title: "Milk", Quantity: 4, UnitPrice: eur(1_29)})
	wrong.Total = eur(86_40) // the items do not add up to what the card was charged
	e.banks.SetDetails("tx-bad", wrong)
	e.banks.SetDetails("tx-p1", details("Kiosk", paid, app.LineItem{Title: "Paper", Quantity: 1, UnitPrice: eur(8_00)}))
	e.banks.SetDetails("tx-old", details("Old Shop", paid, app.LineItem{Title: "Thing", Quantity: 1, UnitPrice: eur(12_00)}))

	if err := e.svc.SyncIssuer(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	rs := e.receipts(t, "alice")
	if got := strings.Join(partnerIDs(rs), " "); got != "/"+chk+"tx-good /"+chk+"tx-p1" {
		t.Fatalf("issuer receipts = %s", got)
	}
	for _, r := range rs {
		if r.BankID != "sandbox" || r.Partner != "" || r.Version != 1 || r.Match == nil ||
			r.Match.Confidence != app.ConfidenceIssuer || r.Match.Transaction != r.SourceTransaction {
			t.Errorf("issuer receipt = %+v", r)
		}
		if got := strings.Join(e.eventTypes(t, r), " "); got != app.EventCreated+" "+app.EventMatched {
			t.Errorf("events = %s", got)
		}
		if r.SourceTransaction == chk+"tx-good" && (r.Content.MerchantName != "Nordic Outdoor Online" || len(r.Content.LineItems) != 2 ||
			r.Content.Last4() != "1043" || !r.Content.Summary.TotalCost.Equal(eur(59_99))) {
			t.Errorf("content = %+v", r.Content)
		}
	}
	logs := testkit.WithoutRandomFields(e.logs.String())
	if !strings.Contains(logs, "purchase details that do not add up dropped") || !strings.Contains(logs, "summary.total_cost:receipt.total_adds_up") {
		t.Errorf("the dropped answer is not logged:\n%s", logs)
	}
	for _, private := range []string{"alice", "86", "Corner", "Milk", "1043"} {
		if strings.Contains(logs, private) {
			t.Errorf("the logs hold %q:\n%s", private, logs)
		}
	}

	// The pending payment posts: the booked one is the same purchase and
	// gets no second receipt. Nothing is asked twice, and the issuer that
	// has no details is not asked again.
	posted := card("tx-b1", 8_00, paid, "Kiosk", "1043")
	posted.PendingID = "tx-p1"
	e.banks.AddTransactions("sandbox", "chk", posted)
	e.banks.SetDetails("tx-b1", details("Kiosk", paid, app.LineItem{Title: "Paper", Quantity: 1, UnitPrice: eur(8_00)}))
	e.clock.Add(7 * time.Hour)
	if err := e.svc.SyncIssuer(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.receipts(t, "alice")); n != 2 {
		t.Errorf("%d receipts after the second sync, want 2", n)
	}
	asked := map[string]int{}
	for _, c := range e.banks.Calls() {
		if c.Method == "GetPurchaseDetails" {
			asked[c.BankID+"/"+c.TransactionID]++
		}
	}
	want := map[string]int{"sandbox/tx-good": 1, "sandbox/tx-bad": 1, "sandbox/tx-none": 1, "sandbox/tx-p1": 1, "acme/tx-acme": 1}
	if len(asked) != len(want) {
		t.Errorf("asked %v, want %v", asked, want)
	}
	for k, n := range want {
		if asked[k] != n {
			t.Errorf("asked %v, want %v", asked, want)
			break
		}
	}
	last, err := e.st.IssuerSyncTime(t.Context(), "alice")
	if err != nil || !last.Equal(now.Add(7*time.Hour)) {
		t.Errorf("last sync = %v, %v", last, err)
	}
	var receiptsReads int
	for _, en := range e.consent.Entries() {
		if en.Method == app.MethodIssuer && en.Scope == commonv1.Scope_SCOPE_RECEIPTS {
			receiptsReads++
		}
	}
	if receiptsReads != 2 {
		t.Errorf("%d reads of purchase details recorded, want 2 (sandbox and acme, first sync)", receiptsReads)
	}
}

// TestIssuerSyncOnListAndOnLinkValid: a list starts a sync in the
// background when the last is old; a link becoming VALID starts one.
func TestIssuerSyncOnListAndOnLinkValid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	go func() { _ = e.svc.RunIssuer(ctx) }()
	paid := now.Add(-time.Hour)
	e.banks.AddTransactions("sandbox", "chk", card("tx-1", 10_00, paid, "Kiosk", "1043"))
	e.banks.SetDetails("tx-1", details("Kiosk", paid, app.LineItem{Title: "Paper", Quantity: 1, UnitPrice: eur(10_00)}))
	link := e.consent.AddLink("alice", "sandbox")
	if rs := e.receipts(t, "alice"); len(rs) != 0 {
		t.Fatalf("the list waited for the sync: %d receipts", len(rs))
	}
	testkit.Eventually(t, func() bool { return len(e.receipts(t, "alice")) == 1 }, 5*time.Second)

	e.banks.AddTransactions("sandbox", "chk", card("tx-2", 20_00, paid, "Kiosk", "1043"))
	e.banks.SetDetails("tx-2", details("Kiosk", paid, app.LineItem{Title: "Pens", Quantity: 1, UnitPrice: eur(20_00)}))
	if err := e.svc.HandleChange(ctx, app.Change{User: "alice", Link: link, LinkState: consentv1.ConsentState_CONSENT_STATE_VALID}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool { return len(e.receipts(t, "alice")) == 2 }, 5*time.Second)
}
