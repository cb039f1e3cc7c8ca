package app_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/fakes"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
)

// These tests run the logic on a real store (SQLite) with fakes for the
// consent service and the banks, and a clock they set.

// now is when the tests start; purchases are around it.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type env struct {
	svc     *app.Service
	st      *store.Store
	db      *storage.DB
	consent *consenttest.Consent
	banks   *fakes.Banks
	clock   *testkit.Clock
	logs    *testkit.SyncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: storagetest.OpenSQLite(t), consent: consenttest.New(fakes.Scopes...), banks: fakes.NewBanks(), clock: testkit.NewClock(now), logs: &testkit.SyncBuffer{}}
	if err := events.Migrate(t.Context(), e.db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), e.db, events.NewOutbox(e.db))
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.svc, err = app.New(app.Config{
		Store: st, Consent: e.consent, Banks: e.banks, Pages: pagetoken.Random(pagetoken.WithClock(e.clock.Now)),
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Now: e.clock.Now, ClientID: "receipts",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func eur(cents int64) app.Money {
	return app.Money{CurrencyCode: "EUR", Units: cents / 100, Nanos: int32(cents%100) * 10_000_000}
}

func ptr[T any](v T) *T { return &v }

// receipt is a one-line receipt of cents at merchant, paid at at with the
// card ending last4 ("" for none given).
func receipt(merchant string, at time.Time, cents int64, last4 string) app.Content {
	c := app.Content{
		MerchantName: merchant,
		LineItems:    []app.LineItem{{Title: "Item", Quantity: 1, UnitPrice: eur(cents)}},
		Summary:      app.Summary{Subtotal: ptr(eur(cents)), TotalCost: eur(cents)},
		PurchaseTime: at,
	}
	if last4 != "" {
		c.PaymentMethod = &app.PaymentMethod{Type: "CARD", MaskedNumber: &app.MaskedNumber{Last4: last4, Display: "•••• " + last4}}
	}
	return c
}

// card is a card payment of cents at merchant at when, on the card ending
// last4.
func card(id string, cents int64, when time.Time, merchant, last4 string) app.Transaction {
	return app.Transaction{ID: id, Booked: true, Amount: eur(-cents), Time: when, BookingDate: when.Truncate(24 * time.Hour),
		CounterpartyName: merchant, BankCardID: "card-" + last4, CardLast4: last4}
}

// optIn gives user a VALID link to the sandbox covering everything and an
// opt-in to partner "shop" under puid.
func (e *env) optIn(user, puid string) {
	e.consent.AddLink(user, "sandbox")
	e.consent.OptIn(user, "shop", puid)
}

// ingest sends c from partner "shop" to puid as receiptID.
func (e *env) ingest(t *testing.T, puid, receiptID string, c app.Content) app.IngestResult {
	t.Helper()
	res, err := e.ingestFrom("shop", puid, receiptID, c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) ingestFrom(partner, puid, receiptID string, c app.Content) (app.IngestResult, error) {
	return e.svc.Ingest(context.Background(), app.IngestInput{
		Method: "/bankbridge.receipts.v1.PartnerReceiptsService/IngestReceipt", Partner: partner, PartnerUserID: puid,
		ReceiptID: receiptID, RequestHash: "h-" + receiptID, Content: c,
	})
}

// receipts lists the user's receipts, all of them.
func (e *env) receipts(t *testing.T, user string) []app.Receipt {
	t.Helper()
	rs, _, err := e.svc.ListReceipts(t.Context(), app.ListInput{User: user, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (e *env) only(t *testing.T, user string) app.Receipt {
	t.Helper()
	rs := e.receipts(t, user)
	if len(rs) != 1 {
		t.Fatalf("%s has %d receipts, want 1", user, len(rs))
	}
	return rs[0]
}

// count counts rows straight from the database.
func (e *env) count(t *testing.T, table, cond string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table+" WHERE "+cond, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventTypes are the outbox's events about a receipt, in order.
func (e *env) eventTypes(t *testing.T, r app.Receipt) []string {
	t.Helper()
	rows, err := e.db.QueryContext(t.Context(), `SELECT event_type FROM events_outbox WHERE resource = $1 ORDER BY seq`, r.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

func partnerIDs(rs []app.Receipt) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Partner+"/"+r.PartnerReceiptID+r.SourceTransaction)
	}
	slices.Sort(out)
	return out
}
