package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
)

// t0 is the suite's clock: microsecond precision, like the columns.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

func open(t testing.TB, db *storage.DB) *store.Store {
	t.Helper()
	if err := events.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(context.Background(), db, events.NewOutbox(db))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func eur(cents int64) app.Money {
	return app.Money{CurrencyCode: "EUR", Units: cents / 100, Nanos: int32(cents%100) * 10_000_000}
}

func content(merchant string, at time.Time, cents int64) app.Content {
	sub := eur(cents)
	return app.Content{
		MerchantName: merchant,
		OrderNumber:  "ORD-1",
		OrderURL:     "https://shop.example/orders/1",
		PaymentMethod: &app.PaymentMethod{Type: "CARD", CardNetwork: "VISA",
			MaskedNumber: &app.MaskedNumber{Last4: "1043", Display: "•••• 1043"}},
		LineItems:       []app.LineItem{{Title: "Shoes", Subtitle: "42", Quantity: 1, UnitPrice: eur(cents), ImageURL: "https://shop.example/i.png"}},
		Summary:         app.Summary{Subtotal: &sub, TotalCost: eur(cents)},
		ShippingAddress: &app.Address{Street1: "Hauptstraße 5", City: "Berlin", PostalCode: "10115", Country: "DE"},
		PurchaseTime:    at,
	}
}

// partnerReceipt is version 1 of a partner's receipt.
func partnerReceipt(user, id, partner, prid string, c app.Content) app.Receipt {
	return app.Receipt{User: user, ID: id, ChainID: id, Version: 1, Partner: partner, PartnerUserID: "puid-" + user + "-" + partner,
		PartnerReceiptID: prid, Client: "chat-app", Content: c, ContentHash: "h-" + id, CreateTime: t0}
}

// ingest stores r as the ingest does: the row, its job, its key (when
// key is set) and its created event, in one transaction.
func ingest(t *testing.T, st *store.Store, r app.Receipt, key string) error {
	t.Helper()
	return st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.Insert(t.Context(), r); err != nil {
			return err
		}
		if err := tx.QueueMatch(t.Context(), app.MatchJob{User: r.User, ReceiptID: r.ID, Due: t0, Deadline: t0.Add(14 * 24 * time.Hour)}); err != nil {
			return err
		}
		if key != "" {
			k := app.IdempotencyKey{Partner: r.Partner, Key: key, User: r.User, PartnerUserID: r.PartnerUserID, RequestHash: "rh-" + key,
				Answer: app.IngestResult{ReceiptID: r.PartnerReceiptID, Version: r.Version, CreateTime: r.CreateTime}, Time: t0}
			if err := tx.Remember(t.Context(), k); err != nil {
				return err
			}
		}
		return tx.AddEvent(t.Context(), app.Event{ID: "ev-" + r.ID, Type: app.EventCreated, User: r.User, Client: r.Client, Receipt: r.Name(), Time: t0})
	})
}

func mustIngest(t *testing.T, st *store.Store, r app.Receipt, key string) {
	t.Helper()
	if err := ingest(t, st, r, key); err != nil {
		t.Fatal(err)
	}
}

func ids(rs []app.Receipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// count counts the rows of table where cond holds, straight from the
// database: what a deletion left behind.
func count(t *testing.T, db *storage.DB, table, cond string, args ...any) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if cond != "" {
		q += " WHERE " + cond
	}
	var n int
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// outboxTypes lists the types of the events the outbox holds for resource.
func outboxTypes(t *testing.T, db *storage.DB, resource string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT event_type, source, data FROM events_outbox WHERE resource = $1 ORDER BY seq`, resource)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, source, data string
		if err := rows.Scan(&typ, &source, &data); err != nil {
			t.Fatal(err)
		}
		if source != store.Source || !strings.Contains(data, `"receipt":"`+resource+`"`) {
			t.Errorf("event %s from %s with data %s", typ, source, data)
		}
		out = append(out, typ)
	}
	return out
}

// TestStore is the storage contract, run on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		ctx := t.Context()

		r1 := partnerReceipt("alice", "r1", "shop", "ORD-1", content("Nordic Outdoor Online", t0, 59_99))
		mustIngest(t, st, r1, "key-00000001")

		t.Run("a receipt reads back as stored, bytes and all", func(t *testing.T) {
			got, err := st.Receipt(ctx, "alice", "r1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r1) {
				t.Errorf("Receipt =\n%+v\nwant\n%+v", got, r1)
			}
			if _, err := st.Receipt(ctx, "bob", "r1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another user's receipt = %v, want ErrNotFound", err)
			}
			if got := outboxTypes(t, db, r1.Name()); !slices.Equal(got, []string{app.EventCreated}) {
				t.Errorf("outbox = %v", got)
			}
		})

		t.Run("idempotency keys and partner receipt ids are taken once", func(t *testing.T) {
			k, err := st.Recall(ctx, "shop", "key-00000001")
			if err != nil || k.RequestHash != "rh-key-00000001" || k.User != "alice" || k.Answer.ReceiptID != "ORD-1" ||
				k.Answer.Version != 1 || !k.Answer.CreateTime.Equal(t0) {
				t.Fatalf("Recall = %+v, %v", k, err)
			}
			if _, err := st.Recall(ctx, "other-shop", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("a key is another partner's too: %v", err)
			}
			dup := partnerReceipt("alice", "r1-dup", "shop", "ORD-1", r1.Content)
			if err := ingest(t, st, dup, ""); !errors.Is(err, app.ErrConflict) {
				t.Errorf("a second receipt under ORD-1 = %v, want ErrConflict", err)
			}
			again := partnerReceipt("alice", "r1-again", "shop", "ORD-99", r1.Content)
			if err := ingest(t, st, again, "key-00000001"); !errors.Is(err, app.ErrConflict) {
				t.Errorf("a reused key = %v, want ErrConflict", err)
			}
			for _, id := range []string{"r1-dup", "r1-again"} {
				if _, err := st.Receipt(ctx, "alice", id); !errors.Is(err, app.ErrNotFound) {
					t.Errorf("a refused ingest left %s behind: %v", id, err)
				}
			}
			// Another partner, or another user, may use the same id.
			mustIngest(t, st, partnerReceipt("alice", "r1-other", "other-shop", "ORD-1", r1.Content), "")
			_ = st.Tx(ctx, func(tx app.Tx) error {
				got, err := tx.PartnerReceipt(ctx, "alice", "other-shop", "ORD-1")
				if err != nil || got.ID != "r1-other" {
					t.Errorf("PartnerReceipt = %s, %v", got.ID, err)
				}
				return nil
			})
			if err := st.DeleteChain(ctx, "alice", "r1-other"); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("an amendment is a new version; a version is amended once", func(t *testing.T) {
			v2 := partnerReceipt("alice", "r1v2", "shop", "ORD-1-R", content("Nordic Outdoor Online", t0, 40_00))
			v2.Version, v2.ChainID, v2.Amends = 2, "r1", "r1"
			mustIngest(t, st, v2, "")
			fork := partnerReceipt("alice", "r1v2b", "shop", "ORD-1-S", content("Nordic Outdoor Online", t0, 30_00))
			fork.Version, fork.ChainID, fork.Amends = 2, "r1", "r1"
			if err := ingest(t, st, fork, ""); !errors.Is(err, app.ErrConflict) {
				t.Errorf("a second amendment of r1 = %v, want ErrConflict", err)
			}
			_ = st.Tx(ctx, func(tx app.Tx) error {
				if by, err := tx.AmendedBy(ctx, "alice", "r1"); by != "r1v2" || err != nil {
					t.Errorf("AmendedBy(r1) = %q, %v", by, err)
				}
				if by, err := tx.AmendedBy(ctx, "alice", "r1v2"); by != "" || err != nil {
					t.Errorf("AmendedBy(r1v2) = %q, %v", by, err)
				}
				return nil
			})
			old, _ := st.Receipt(ctx, "alice", "r1")
			cur, _ := st.Receipt(ctx, "alice", "r1v2")
			if old.AmendedBy != "r1v2" || cur.Amends != "r1" || cur.AmendedBy != "" || cur.Version != 2 {
				t.Errorf("v1 amended by %q; v2 amends %q, amended by %q, version %d", old.AmendedBy, cur.Amends, cur.AmendedBy, cur.Version)
			}
			list, err := st.ListReceipts(ctx, "alice", app.Filter{}, nil, 10)
			if err != nil || !slices.Equal(ids(list), []string{"r1v2"}) {
				t.Errorf("list = %v, %v; want the latest version only", ids(list), err)
			}
			if err := st.DeleteChain(ctx, "alice", "r1v2"); err != nil {
				t.Fatal(err)
			}
			if n := count(t, db, "receipts", "user_id = $1", "alice"); n != 0 {
				t.Errorf("%d rows of alice's receipt left after deleting it", n)
			}
			if n := count(t, db, "match_jobs", "user_id = $1", "alice"); n != 0 {
				t.Errorf("%d match jobs of a deleted receipt left", n)
			}
			if err := st.DeleteChain(ctx, "alice", "r1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("second delete = %v", err)
			}
		})

		t.Run("lists: newest first, keyset pages, filters", func(t *testing.T) {
			u := "lister"
			at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
			for i, m := range []string{"Corner Grocery GmbH", "Nordic Outdoor", "Corner Grocery", "Blue Door Coffee", "Nordic Outdoor Online"} {
				h := i
				if i == 4 {
					h = 1 // a tie with the 2nd on purchase time: the id breaks it
				}
				mustIngest(t, st, partnerReceipt(u, fmt.Sprintf("l%d", i), "shop", fmt.Sprintf("O%d", i), content(m, at(h), int64(100+i))), "")
			}
			var got []string
			var after *pagetoken.Position
			for {
				page, err := st.ListReceipts(ctx, u, app.Filter{}, after, 2)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(page)...)
				if len(page) < 2 {
					break
				}
				last := page[len(page)-1]
				after = &pagetoken.Position{Time: last.Content.PurchaseTime, ID: last.ID}
			}
			if want := []string{"l3", "l2", "l4", "l1", "l0"}; !slices.Equal(got, want) {
				t.Errorf("pages = %v, want %v", got, want)
			}
			m := &app.Match{Transaction: "users/lister/accounts/sandbox~chk/transactions/tx1", Confidence: app.ConfidenceHigh, Time: t0}
			if ok, err := st.SetMatch(ctx, u, "l1", *m, app.Event{ID: "ev-m-l1", Type: app.EventMatched, User: u, Client: "chat-app",
				Receipt: app.ReceiptName(u, "l1"), Match: m, Time: t0}); !ok || err != nil {
				t.Fatalf("SetMatch = %v, %v", ok, err)
			}
			tests := []struct {
				name string
				f    app.Filter
				want []string
			}{
				{"merchant", app.Filter{MerchantKey: app.MerchantKey("NORDIC OUTDOOR")}, []string{"l4", "l1"}},
				{"merchant with a legal form", app.Filter{MerchantKey: app.MerchantKey("corner grocery")}, []string{"l2", "l0"}},
				{"transaction", app.Filter{Transaction: m.Transaction}, []string{"l1"}},
				{"matched", app.Filter{Match: app.MatchMatched}, []string{"l1"}},
				{"unmatched", app.Filter{Match: app.MatchUnmatched}, []string{"l3", "l2", "l4", "l0"}},
				{"time window", app.Filter{Start: at(1), End: at(3)}, []string{"l2", "l4", "l1"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := st.ListReceipts(ctx, u, tt.f, nil, 10)
					if err != nil || !slices.Equal(ids(got), tt.want) {
						t.Errorf("ListReceipts = %v, %v; want %v", ids(got), err, tt.want)
					}
				})
			}
			r, _ := st.Receipt(ctx, u, "l1")
			if r.Match == nil || *r.Match != *m {
				t.Errorf("match = %+v, want %+v", r.Match, m)
			}
			if got := outboxTypes(t, db, r.Name()); !slices.Equal(got, []string{app.EventCreated, app.EventMatched}) {
				t.Errorf("outbox = %v", got)
			}
			if ok, err := st.SetMatch(ctx, u, "l1", *m, app.Event{ID: "ev-m-l1-again", Type: app.EventMatched, User: u, Receipt: r.Name(), Match: m, Time: t0}); ok || err != nil {
				t.Errorf("SetMatch of a matched receipt = %v, %v; want false and no second event", ok, err)
			}
		})

		t.Run("match jobs are claimed, leased, rescheduled and dropped", func(t *testing.T) {
			u := "matcher"
			mustIngest(t, st, partnerReceipt(u, "m1", "shop", "M1", content("Shop", t0, 100)), "")
			mustIngest(t, st, partnerReceipt(u, "m2", "shop", "M2", content("Shop", t0, 200)), "")
			mine := func(js []app.MatchJob) []string {
				var out []string
				for _, j := range js {
					if j.User == u {
						out = append(out, j.ReceiptID)
					}
				}
				slices.Sort(out)
				return out
			}
			if got, err := st.ClaimMatchJobs(ctx, t0.Add(-time.Second), time.Minute, 100); err != nil || len(mine(got)) != 0 {
				t.Fatalf("claimed before due: %v, %v", mine(got), err)
			}
			got, err := st.ClaimMatchJobs(ctx, t0, time.Minute, 100)
			if err != nil || !slices.Equal(mine(got), []string{"m1", "m2"}) {
				t.Fatalf("ClaimMatchJobs = %v, %v", mine(got), err)
			}
			if again, _ := st.ClaimMatchJobs(ctx, t0.Add(30*time.Second), time.Minute, 100); len(mine(again)) != 0 {
				t.Errorf("claimed again within the lease: %v", mine(again))
			}
			if err := st.RescheduleMatch(ctx, app.MatchJob{User: u, ReceiptID: "m1", Attempts: 1, Due: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := st.DropMatchJob(ctx, u, "m2"); err != nil {
				t.Fatal(err)
			}
			got, _ = st.ClaimMatchJobs(ctx, t0.Add(2*time.Hour), time.Minute, 100)
			if !slices.Equal(mine(got), []string{"m1"}) {
				t.Fatalf("after reschedule and drop: %v", mine(got))
			}
			for _, j := range got {
				if j.User == u && (j.Attempts != 1 || !j.Deadline.Equal(t0.Add(14*24*time.Hour))) {
					t.Errorf("job = %+v", j)
				}
			}
		})

		t.Run("issuer receipts: one per transaction, misses, sync times", func(t *testing.T) {
			u := "issuer"
			tx := "users/issuer/accounts/sandbox~chk/transactions/tx-p02"
			m := &app.Match{Transaction: tx, Confidence: app.ConfidenceIssuer, Time: t0}
			r := app.Receipt{User: u, ID: "i1", ChainID: "i1", Version: 1, BankID: "sandbox", Link: "users/issuer/links/l1",
				SourceTransaction: tx, Client: "chat-app", Content: content("Nordic Outdoor Online", t0, 59_99), ContentHash: "h", Match: m, CreateTime: t0}
			evs := []app.Event{
				{ID: "ev-i1-c", Type: app.EventCreated, User: u, Client: "chat-app", Receipt: r.Name(), Time: t0},
				{ID: "ev-i1-m", Type: app.EventMatched, User: u, Client: "chat-app", Receipt: r.Name(), Match: m, Time: t0},
			}
			if ok, err := st.AddIssuerReceipt(ctx, r, evs); !ok || err != nil {
				t.Fatalf("AddIssuerReceipt = %v, %v", ok, err)
			}
			r2 := r
			r2.ID, r2.ChainID = "i2", "i2"
			if ok, err := st.AddIssuerReceipt(ctx, r2, []app.Event{{ID: "ev-i2", Type: app.EventCreated, User: u, Receipt: r2.Name(), Time: t0}}); ok || err != nil {
				t.Errorf("a second issuer receipt of one transaction = %v, %v; want false", ok, err)
			}
			if got := outboxTypes(t, db, r2.Name()); len(got) != 0 {
				t.Errorf("the refused receipt's events were written: %v", got)
			}
			got, _ := st.Receipt(ctx, u, "i1")
			if !reflect.DeepEqual(got, r) {
				t.Errorf("issuer receipt =\n%+v\nwant\n%+v", got, r)
			}
			if err := st.AddIssuerMiss(ctx, u, "users/issuer/accounts/sandbox~chk/transactions/tx-003", t0); err != nil {
				t.Fatal(err)
			}
			if err := st.AddIssuerMiss(ctx, u, "users/issuer/accounts/sandbox~chk/transactions/tx-003", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			known, err := st.IssuerKnown(ctx, u, []string{tx, "users/issuer/accounts/sandbox~chk/transactions/tx-003", "users/issuer/accounts/sandbox~chk/transactions/tx-new"})
			if err != nil || len(known) != 2 || !known[tx] {
				t.Errorf("IssuerKnown = %v, %v", known, err)
			}
			if last, err := st.IssuerSyncTime(ctx, u); err != nil || !last.IsZero() {
				t.Errorf("never synced = %v, %v", last, err)
			}
			for _, s := range []struct {
				user string
				at   time.Time
			}{{u, t0}, {"issuer-b", t0.Add(-time.Hour)}, {"issuer-c", t0.Add(time.Hour)}} {
				if err := st.SetIssuerSyncTime(ctx, s.user, s.at); err != nil {
					t.Fatal(err)
				}
			}
			if last, _ := st.IssuerSyncTime(ctx, u); !last.Equal(t0) {
				t.Errorf("sync time = %v", last)
			}
			if users, err := st.UsersToSync(ctx, t0.Add(time.Minute), 10); err != nil || !slices.Equal(users, []string{"issuer-b", u}) {
				t.Errorf("UsersToSync = %v, %v", users, err)
			}
			if err := st.SetIssuerSyncTime(ctx, "issuer-b", time.Time{}); err != nil {
				t.Fatal(err)
			}
			if users, _ := st.UsersToSync(ctx, t0.Add(time.Minute), 10); !slices.Equal(users, []string{u}) {
				t.Errorf("after forgetting issuer-b: %v", users)
			}
			if n, err := st.DeleteLinkReceipts(ctx, u, "users/issuer/links/l1"); err != nil || n != 1 {
				t.Errorf("DeleteLinkReceipts = %d, %v", n, err)
			}
			if n := count(t, db, "receipts", "user_id = $1", u); n != 0 {
				t.Errorf("%d receipts read under an ended link left", n)
			}
		})

		t.Run("deletions remove the rows", func(t *testing.T) {
			u := "deleter"
			old := partnerReceipt(u, "d-old", "shop", "D0", content("Shop", t0.Add(-400*24*time.Hour), 100))
			mustIngest(t, st, old, "key-d-old")
			mustIngest(t, st, partnerReceipt(u, "d-shop", "shop", "D1", content("Shop", t0, 100)), "key-d-shop")
			other := partnerReceipt(u, "d-other", "other", "D1", content("Shop", t0, 100))
			other.PartnerUserID = "puid-new"
			mustIngest(t, st, other, "key-d-other")
			older := partnerReceipt(u, "d-other-old", "other", "D2", content("Shop", t0, 100))
			older.PartnerUserID = "puid-old"
			mustIngest(t, st, older, "key-d-other-old")

			subs, err := st.PartnerSubjects(ctx, app.PartnerSubject{User: "deleted", Partner: "", PartnerUserID: ""}, 100)
			if err != nil {
				t.Fatal(err)
			}
			want := []app.PartnerSubject{
				{User: u, Partner: "other", PartnerUserID: "puid-new"},
				{User: u, Partner: "other", PartnerUserID: "puid-old"},
				{User: u, Partner: "shop", PartnerUserID: "puid-deleter-shop"},
			}
			if !slices.Equal(subs[:min(3, len(subs))], want) {
				t.Errorf("PartnerSubjects = %v, want %v first", subs, want)
			}
			if users, err := st.UsersWithReceipts(ctx, "deleteq", 100); err != nil || !slices.Contains(users, u) || slices.Contains(users, "alice") {
				t.Errorf("UsersWithReceipts = %v, %v", users, err)
			}

			if n, err := st.DeletePartnerReceipts(ctx, u, "other", "puid-old"); err != nil || n != 1 {
				t.Errorf("DeletePartnerReceipts(puid-old) = %d, %v", n, err)
			}
			if _, err := st.Recall(ctx, "other", "key-d-other-old"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("the key of a deleted opt-in's receipt is kept: %v", err)
			}
			if _, err := st.Recall(ctx, "other", "key-d-other"); err != nil {
				t.Errorf("the key of the current opt-in went: %v", err)
			}
			if n, err := st.DeletePartnerReceipts(ctx, u, "other", ""); err != nil || n != 1 {
				t.Errorf("DeletePartnerReceipts(other) = %d, %v", n, err)
			}
			if n := count(t, db, "receipts", "user_id = $1 AND partner = $2", u, "other"); n != 0 {
				t.Errorf("%d of the revoked partner's receipts left", n)
			}
			if n := count(t, db, "idempotency_keys", "user_id = $1 AND partner = $2", u, "other"); n != 0 {
				t.Errorf("%d of the revoked partner's keys left", n)
			}
			n, err := st.DeleteExpired(ctx, t0.Add(-396*24*time.Hour), t0.Add(-7*24*time.Hour), t0)
			if err != nil || n < 1 {
				t.Fatalf("DeleteExpired = %d, %v", n, err)
			}
			if _, err := st.Receipt(ctx, u, "d-old"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("a receipt past its retention: %v", err)
			}
			if _, err := st.Recall(ctx, "shop", "key-d-shop"); err != nil {
				t.Errorf("a fresh key was swept: %v", err)
			}
			if _, err := st.DeleteExpired(ctx, t0.Add(-396*24*time.Hour), t0.Add(time.Second), t0); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recall(ctx, "shop", "key-d-shop"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("a key past its TTL: %v", err)
			}
			mustIngest(t, st, partnerReceipt(u, "d-shop2", "shop", "D3", content("Shop", t0, 100)), "key-d-shop2")

			if err := st.AddIssuerMiss(ctx, u, "users/deleter/accounts/a~b/transactions/t", t0); err != nil {
				t.Fatal(err)
			}
			if err := st.SetIssuerSyncTime(ctx, u, t0); err != nil {
				t.Fatal(err)
			}
			if n, err := st.DeleteUserReceipts(ctx, u); err != nil || n != 2 {
				t.Errorf("DeleteUserReceipts = %d, %v", n, err)
			}
			for _, table := range []string{"receipts", "match_jobs", "idempotency_keys", "issuer_misses", "issuer_syncs"} {
				if n := count(t, db, table, "user_id = $1", u); n != 0 {
					t.Errorf("%d rows of %s left for a user whose receipts were deleted", n, table)
				}
			}
		})
	})
}
