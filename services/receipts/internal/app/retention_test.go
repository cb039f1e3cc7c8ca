package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// TestRetentionSweep deletes receipts 13 months after their purchase, and
// idempotency keys after their TTL: the rows are gone.
func TestRetentionSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.optIn("alice", "puid-alice-0001")
	e.ingest(t, "puid-alice-0001", "OLD", receipt("Shop", now.AddDate(0, 0, -397), 10_00, ""))
	e.ingest(t, "puid-alice-0001", "NEW", receipt("Shop", now.AddDate(0, 0, -395), 10_00, ""))
	_, err := e.svc.Ingest(t.Context(), app.IngestInput{Partner: "shop", PartnerUserID: "puid-alice-0001", ReceiptID: "KEYED",
		IdempotencyKey: "key-00000001", RequestHash: "h", Content: receipt("Shop", now, 10_00, "")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Sweep(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the one past 396 days", n, err)
	}
	if got := strings.Join(partnerIDs(e.receipts(t, "alice")), " "); got != "shop/KEYED shop/NEW" {
		t.Errorf("left = %s", got)
	}
	if n := e.count(t, "receipts", "partner_receipt_id = $1", "OLD"); n != 0 {
		t.Errorf("the expired receipt's row is still there")
	}
	if n := e.count(t, "idempotency_keys", "idem_key = $1", "key-00000001"); n != 1 {
		t.Fatalf("the key went before its TTL")
	}
	e.clock.Add(7*24*time.Hour + time.Second)
	if _, err := e.svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "idempotency_keys", "idem_key = $1", "key-00000001"); n != 0 {
		t.Errorf("the key outlived its TTL")
	}
}

// TestRevocationDeletes follows consent changes: what a partner sent goes
// with the opt-in, every receipt goes when the user revoked the last
// consent covering receipts, and an issuer's receipts go with their link.
func TestRevocationDeletes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	paid := now.Add(-time.Hour)

	// alice: receipts from two partners and one from her card issuer.
	e.optIn("alice", "puid-alice-shop")
	e.consent.OptIn("alice", "other", "puid-alice-other")
	e.ingest(t, "puid-alice-shop", "S1", receipt("Shop", paid, 10_00, ""))
	if _, err := e.ingestFrom("other", "puid-alice-other", "O1", receipt("Other", paid, 10_00, "")); err != nil {
		t.Fatal(err)
	}
	e.banks.AddTransactions("sandbox", "chk", card("tx-1", 20_00, paid, "Kiosk", "1043"))
	e.banks.SetDetails("tx-1", details("Kiosk", paid, app.LineItem{Title: "Pens", Quantity: 1, UnitPrice: eur(20_00)}))
	if err := e.svc.SyncIssuer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.receipts(t, "alice")); n != 3 {
		t.Fatalf("alice has %d receipts, want 3", n)
	}

	go func() { _ = e.svc.FollowChanges(ctx) }()
	left := func(user string) string { return strings.Join(partnerIDs(e.receipts(t, user)), " ") }
	settled := func(user, want string) {
		t.Helper()
		if !testkit.Within(5*time.Second, func() bool { return left(user) == want }) {
			t.Fatalf("%s's receipts = %q, want %q", user, left(user), want)
		}
	}

	e.consent.RevokeOptIn("shop", "puid-alice-shop")
	e.consent.Send(app.Change{User: "alice", PartnerOptIn: "users/alice/partnerOptIns/o1", Partner: "shop", PartnerState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED})
	settled("alice", "/"+chk+"tx-1 other/O1")
	if n := e.count(t, "match_jobs", "user_id = $1", "alice"); n != 1 {
		t.Errorf("%d match jobs left, want other's receipt's only", n)
	}

	// The link expires: its issuer receipt goes; partners' receipts stay,
	// since the user revoked nothing.
	link := "users/alice/links/l-sandbox-0"
	e.consent.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_EXPIRED)
	e.consent.Send(app.Change{User: "alice", Link: link, LinkState: consentv1.ConsentState_CONSENT_STATE_EXPIRED})
	settled("alice", "other/O1")

	// bob revokes one of two links covering receipts: nothing goes; the
	// other expires: nothing goes; he revokes a third: everything goes.
	// (Handled one by one: each is judged on the links left when it is.)
	e.optIn("bob", "puid-bob-shop")
	acme := e.consent.AddLink("bob", "acme")
	e.ingest(t, "puid-bob-shop", "B1", receipt("Shop", paid, 10_00, ""))
	handle := func(link string, state consentv1.ConsentState) {
		t.Helper()
		e.consent.SetLinkState(link, state)
		if err := e.svc.HandleChange(ctx, app.Change{User: "bob", Link: link, LinkState: state}); err != nil {
			t.Fatal(err)
		}
	}
	handle("users/bob/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_REVOKED)
	if got := left("bob"); got != "shop/B1" {
		t.Fatalf("after revoking one of two links: %q", got)
	}
	handle(acme, consentv1.ConsentState_CONSENT_STATE_EXPIRED)
	if got := left("bob"); got != "shop/B1" {
		t.Fatalf("after the other expired: %q", got)
	}
	third := e.consent.AddLink("bob", "third", commonv1.Scope_SCOPE_RECEIPTS)
	handle(third, consentv1.ConsentState_CONSENT_STATE_REVOKED)
	if got := left("bob"); got != "" {
		t.Fatalf("after revoking the last: %q", got)
	}
	for _, table := range []string{"receipts", "match_jobs", "idempotency_keys"} {
		if n := e.count(t, table, "user_id = $1", "bob"); n != 0 {
			t.Errorf("%d rows of bob's in %s", n, table)
		}
	}
}

// TestReconcile finds what changes missed: a revoked opt-in, a revoked
// consent; an expired one keeps the receipts for their retention.
func TestReconcile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	paid := now.Add(-time.Hour)
	for _, u := range []string{"carol", "dave", "erin"} {
		e.optIn(u, "puid-"+u+"-shop")
		e.ingest(t, "puid-"+u+"-shop", "R-"+u, receipt("Shop", paid, 10_00, ""))
	}
	e.consent.RevokeOptIn("shop", "puid-carol-shop")
	e.consent.SetLinkState("users/dave/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_REVOKED)
	e.consent.SetLinkState("users/erin/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_EXPIRED)
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]int{"carol": 0, "dave": 0, "erin": 1} {
		if n := e.count(t, "receipts", "user_id = $1", user); n != want {
			t.Errorf("%s has %d receipts after reconciling, want %d", user, n, want)
		}
	}
	if err := e.svc.HandleChange(ctx, app.Change{Resync: true}); err != nil {
		t.Fatal(err)
	}
}
