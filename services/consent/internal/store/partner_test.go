package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

func newOptIn(user, id, partner string, created time.Time) app.PartnerOptIn {
	return app.PartnerOptIn{
		User: user, ID: id, Partner: partner, Client: "chat-app",
		Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS},
		PartnerUserID: "pu-" + user + "-" + id,
		State:         app.OptInActive,
		CreateTime:    created,
	}
}

func insertOptIns(t *testing.T, st *store.Store, optIns ...app.PartnerOptIn) error {
	t.Helper()
	return st.Tx(t.Context(), func(tx app.Tx) error {
		for _, o := range optIns {
			if err := tx.InsertPartnerOptIn(t.Context(), o); err != nil {
				return err
			}
		}
		return nil
	})
}

// revokeOptIn revokes an opt-in as the service does: locked, then saved.
func revokeOptIn(t *testing.T, st *store.Store, user, id string, at time.Time) app.PartnerOptIn {
	t.Helper()
	var out app.PartnerOptIn
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		o, err := tx.LockPartnerOptIn(t.Context(), user, id)
		if err != nil {
			return err
		}
		o.State, o.RevokeTime = app.OptInRevoked, at
		out = o
		return tx.SavePartnerOptIn(t.Context(), o)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testOptInRoundTrip(t *testing.T, st *store.Store) {
	o := newOptIn("ort", "o1", "demo-partner", t0)
	o.Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_SHIPPING, commonv1.Scope_SCOPE_RECEIPTS}
	if err := insertOptIns(t, st, o); err != nil {
		t.Fatal(err)
	}
	got, err := st.PartnerOptInByPartnerUserID(t.Context(), "demo-partner", o.PartnerUserID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", o) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, o)
	}
	if _, err := st.PartnerOptInByPartnerUserID(t.Context(), "other-partner", o.PartnerUserID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("another partner's id: %v, want ErrNotFound", err)
	}
	if _, err := st.PartnerOptInByPartnerUserID(t.Context(), "demo-partner", "pu-never-minted"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("an unknown id: %v, want ErrNotFound", err)
	}

	revoked := revokeOptIn(t, st, "ort", "o1", t0.Add(time.Hour))
	got, err = st.PartnerOptInByPartnerUserID(t.Context(), "demo-partner", o.PartnerUserID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", revoked) || got.State != app.OptInRevoked || !got.RevokeTime.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked opt-in reads\n%+v\nwant\n%+v", got, revoked)
	}
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		_, err := tx.LockPartnerOptIn(t.Context(), "someone-else", "o1")
		return err
	})
	if !errors.Is(err, app.ErrNotFound) {
		t.Errorf("another user's opt-in: %v, want ErrNotFound", err)
	}
}

func testOptInUnique(t *testing.T, st *store.Store) {
	if err := insertOptIns(t, st, newOptIn("oun", "a", "demo-partner", t0), newOptIn("oun", "b", "other-partner", t0)); err != nil {
		t.Fatalf("one ACTIVE opt-in to each of two partners: %v", err)
	}
	err := insertOptIns(t, st, newOptIn("oun", "c", "demo-partner", t0))
	if !storage.IsUniqueViolation(err) {
		t.Fatalf("a second ACTIVE opt-in to the same partner: %v, want a unique violation", err)
	}
	taken := newOptIn("oun2", "d", "demo-partner", t0)
	taken.PartnerUserID = "pu-oun-a"
	if err := insertOptIns(t, st, taken); !storage.IsUniqueViolation(err) {
		t.Fatalf("a partner user id taken already: %v, want a unique violation", err)
	}

	// Revoked, the first makes room for a new one, found as the ACTIVE one.
	revokeOptIn(t, st, "oun", "a", t0.Add(time.Minute))
	if err := insertOptIns(t, st, newOptIn("oun", "c", "demo-partner", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		o, err := tx.LockActivePartnerOptIn(t.Context(), "oun", "demo-partner")
		if err != nil {
			return err
		}
		if o.ID != "c" {
			return fmt.Errorf("ACTIVE opt-in %s, want c", o.ID)
		}
		if _, err := tx.LockActivePartnerOptIn(t.Context(), "oun", "nobody"); !errors.Is(err, app.ErrNotFound) {
			return fmt.Errorf("no opt-in to a partner: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListOptIns(t *testing.T, st *store.Store) {
	const user = "lo"
	var all []app.PartnerOptIn
	for i := range 5 {
		all = append(all, newOptIn(user, fmt.Sprintf("o%d", i), fmt.Sprintf("p%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	all[4].CreateTime = all[3].CreateTime // the id breaks the tie
	if err := insertOptIns(t, st, append(all, newOptIn("someone-else", "x", "p0", t0))...); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after *app.OptInCursor
	for {
		page, err := st.ListPartnerOptIns(t.Context(), user, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			got = append(got, o.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = &app.OptInCursor{CreateTime: last.CreateTime, ID: last.ID}
	}
	if want := "o4 o3 o2 o1 o0"; strings.Join(got, " ") != want {
		t.Errorf("pages hold %v, want %s", got, want)
	}
}

func testOptInChanges(t *testing.T, st *store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := subscribe(ctx, t, st)
	boom := errors.New("boom")
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.InsertPartnerOptIn(t.Context(), newOptIn("och", "rolled-back", "demo-partner", t0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	if err := insertOptIns(t, st, newOptIn("och", "o1", "demo-partner", t0)); err != nil {
		t.Fatal(err)
	}
	revokeOptIn(t, st, "och", "o1", t0.Add(time.Minute))
	// The suite's other subtests write opt-ins of their own users to the
	// same store meanwhile: this one reads its user's changes only.
	mine := make(chan app.Change, 16)
	go func() {
		for c := range changes {
			if c.User == "och" {
				mine <- c
			}
		}
	}()
	for _, want := range []app.Change{
		{User: "och", OptInID: "o1", Partner: "demo-partner", OptInState: app.OptInActive},
		{User: "och", OptInID: "o1", Partner: "demo-partner", OptInState: app.OptInRevoked},
	} {
		select {
		case c := <-mine:
			if c != want {
				t.Errorf("change = %+v, want %+v", c, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change arrived, want %+v", want)
		}
	}
	// Saving an opt-in whose state did not change publishes nothing.
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		o, err := tx.LockPartnerOptIn(t.Context(), "och", "o1")
		if err != nil {
			return err
		}
		return tx.SavePartnerOptIn(t.Context(), o)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-mine:
		t.Errorf("unexpected change %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}

// testOptInEvents: an opt-in's event is in the outbox once its transaction
// commits, addressed to the product, and never carries the partner user id.
func testOptInEvents(t *testing.T, st *store.Store, db *storage.DB) {
	o := newOptIn("oev", "o1", "demo-partner", t0)
	o.PartnerUserID = "pu-secret-oev"
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.InsertPartnerOptIn(t.Context(), o); err != nil {
			return err
		}
		return tx.AddOptInEvent(t.Context(), app.OptInEvent{Type: app.EventPartnerOptInCreated, EventID: "oev-created", OptIn: o, EventTime: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	var typ, source, user, client, resource, data string
	err = db.QueryRowContext(t.Context(), `SELECT event_type, source, user_id, client_id, resource, data FROM events_outbox WHERE event_id = 'oev-created'`).
		Scan(&typ, &source, &user, &client, &resource, &data)
	if err != nil {
		t.Fatal(err)
	}
	if typ != app.EventPartnerOptInCreated || source != "consent" || user != "oev" || client != "chat-app" ||
		resource != "users/oev/partnerOptIns/o1" || !strings.Contains(data, `"partner":"demo-partner"`) ||
		!strings.Contains(data, `"state":"PARTNER_OPT_IN_STATE_ACTIVE"`) {
		t.Errorf("outbox row %s %s %s %s %s %s", typ, source, user, client, resource, data)
	}
	if strings.Contains(data, o.PartnerUserID) {
		t.Errorf("the event carries the partner user id: %s", data)
	}

	boom := errors.New("boom")
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.AddOptInEvent(t.Context(), app.OptInEvent{Type: app.EventPartnerOptInRevoked, EventID: "oev-rolled-back", OptIn: o, EventTime: t0}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM events_outbox WHERE event_id = 'oev-rolled-back'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the event of a failed transaction is in the outbox %d times", n)
	}
}

func testSaveOptInUnlocked(t *testing.T, st *store.Store) {
	o := newOptIn("osu", "o1", "demo-partner", t0)
	if err := insertOptIns(t, st, o); err != nil {
		t.Fatal(err)
	}
	o.State = app.OptInRevoked
	if err := st.Tx(t.Context(), func(tx app.Tx) error { return tx.SavePartnerOptIn(t.Context(), o) }); err == nil {
		t.Fatal("SavePartnerOptIn of an opt-in not locked in the transaction succeeded")
	}
}

// testConcurrentOptIns: retries of one opt-in racing each other, on
// separate connections, make one ACTIVE opt-in, which every one returns.
func testConcurrentOptIns(t *testing.T, st *store.Store) {
	svc, err := app.New(st, nil, app.Config{Partners: map[string]bool{"demo-partner": true}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	var (
		g   errgroup.Group
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	for range 8 {
		g.Go(func() error {
			o, err := svc.CreatePartnerOptIn(t.Context(), app.CreatePartnerOptInInput{
				User: "oconc", Client: "chat-app", Partner: "demo-partner", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS},
			})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			ids[o.PartnerUserID] = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListPartnerOptIns(t.Context(), "oconc", nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || len(list) != 1 {
		t.Errorf("concurrent creates returned %d ids and stored %d opt-ins, want 1 and 1", len(ids), len(list))
	}
}
