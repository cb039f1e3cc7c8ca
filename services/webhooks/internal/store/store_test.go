package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/store"
)

// t0 is the suite's clock: microsecond precision, like the columns.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

func open(t *testing.T, db *storage.DB) *store.Store {
	t.Helper()
	st, err := store.New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func endpoint(client, id string, created time.Time, types ...string) app.Endpoint {
	return app.Endpoint{Client: client, ID: id, URL: "https://hooks.example.com/" + id, EventTypes: types,
		Description: "d " + id, CreateTime: created, SecretCreateTime: created}
}

func event(client, id string, at time.Time, typ string) app.Event {
	return app.Event{ID: id, Type: typ, Client: client, Resource: "users/alice/links/l1", Time: at, Data: []byte(`{"link":"users/alice/links/l1"}`)}
}

func delivery(ep app.Endpoint, ev app.Event, id string, at time.Time) app.Delivery {
	return app.Delivery{ID: id, Client: ep.Client, EndpointID: ep.ID, EventID: ev.ID, EventType: ev.Type,
		State: app.DeliveryPending, CreateTime: at, NextAttemptTime: at, Deadline: at.Add(24 * time.Hour)}
}

// TestStore is the storage contract, run on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		ctx := t.Context()

		a1 := endpoint("acme", "ep_a1", t0, "consent.link.expiring")
		a2 := endpoint("acme", "ep_a2", t0.Add(time.Second), "*")
		b1 := endpoint("beta", "ep_b1", t0, "consent.link.expiring")
		key := app.IdempotencyKey{Client: "acme", Key: "key-00001", Method: "CreateEndpoint", Hash: "h1", Result: "ep_a1", Time: t0}
		if err := st.CreateEndpoint(ctx, a1, key); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateEndpoint(ctx, endpoint("acme", "ep_dup", t0), key); !errors.Is(err, app.ErrKeyTaken) {
			t.Fatalf("a reused key = %v, want ErrKeyTaken", err)
		}
		if _, err := st.GetEndpoint(ctx, "acme", "ep_dup"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("the endpoint of a refused key was kept: %v", err)
		}
		for _, e := range []app.Endpoint{a2, b1} {
			if err := st.CreateEndpoint(ctx, e, app.IdempotencyKey{}); err != nil {
				t.Fatal(err)
			}
		}
		if k, err := st.Recall(ctx, "acme", "key-00001"); err != nil || k.Result != "ep_a1" || k.Hash != "h1" {
			t.Fatalf("Recall = %+v, %v", k, err)
		}
		if _, err := st.Recall(ctx, "beta", "key-00001"); !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("a key is another client's too: %v", err)
		}

		t.Run("endpoints", func(t *testing.T) {
			got, err := st.GetEndpoint(ctx, "acme", "ep_a1")
			if err != nil || got.URL != a1.URL || !got.CreateTime.Equal(t0) || len(got.EventTypes) != 1 || !got.PreviousSecretExpireTime.IsZero() {
				t.Fatalf("GetEndpoint = %+v, %v", got, err)
			}
			if _, err := st.GetEndpoint(ctx, "beta", "ep_a1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another client's endpoint = %v, want ErrNotFound", err)
			}
			page, err := st.ListEndpoints(ctx, "acme", nil, 1)
			if err != nil || len(page) != 1 || page[0].ID != "ep_a1" {
				t.Fatalf("first page = %+v, %v", page, err)
			}
			page, err = st.ListEndpoints(ctx, "acme", &pagetoken.Position{Time: page[0].CreateTime, ID: page[0].ID}, 5)
			if err != nil || len(page) != 1 || page[0].ID != "ep_a2" {
				t.Fatalf("second page = %+v, %v", page, err)
			}
			if n, err := st.CountEndpoints(ctx, "acme"); err != nil || n != 2 {
				t.Errorf("CountEndpoints = %d, %v", n, err)
			}
			if err := st.UpdateSecretTimes(ctx, "acme", "ep_a1", t0.Add(time.Hour), t0.Add(25*time.Hour)); err != nil {
				t.Fatal(err)
			}
			got, _ = st.GetEndpoint(ctx, "acme", "ep_a1")
			if !got.SecretCreateTime.Equal(t0.Add(time.Hour)) || !got.PreviousSecretExpireTime.Equal(t0.Add(25*time.Hour)) {
				t.Errorf("after rotation = %+v", got)
			}
		})

		t.Run("events are kept once, deliveries claimed and recorded", func(t *testing.T) {
			ev := event("acme", "evt-1", t0, "consent.link.expiring")
			d1, d2 := delivery(a1, ev, "dl_1", t0), delivery(a2, ev, "dl_2", t0)
			added, err := st.AddEvent(ctx, ev, []app.Delivery{d1, d2})
			if err != nil || !added {
				t.Fatalf("AddEvent = %v, %v", added, err)
			}
			added, err = st.AddEvent(ctx, ev, []app.Delivery{delivery(a1, ev, "dl_again", t0)})
			if err != nil || added {
				t.Fatalf("AddEvent of the same event again = %v, %v; want nothing added", added, err)
			}
			if due, err := st.ClaimDue(ctx, t0.Add(-time.Second), time.Minute, 10); err != nil || len(due) != 0 {
				t.Fatalf("ClaimDue before the deliveries are due = %+v, %v", due, err)
			}
			due, err := st.ClaimDue(ctx, t0, time.Minute, 10)
			if err != nil || len(due) != 2 {
				t.Fatalf("ClaimDue = %+v, %v", due, err)
			}
			for _, d := range due {
				if d.Event.ID != "evt-1" || string(d.Event.Data) != string(ev.Data) || d.URL == "" || d.Attempts != 0 || !d.Delivery.Deadline.Equal(t0.Add(24*time.Hour)) {
					t.Errorf("claimed %+v", d)
				}
			}
			if again, _ := st.ClaimDue(ctx, t0.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
				t.Fatalf("a claimed delivery was claimed again within its lease: %+v", again)
			}
			if again, _ := st.ClaimDue(ctx, t0.Add(2*time.Minute), time.Minute, 1); len(again) != 1 {
				t.Fatalf("after the lease, a delivery is due again: got %d", len(again))
			}
			fail := app.Attempt{Time: t0, Duration: 120 * time.Millisecond, StatusCode: 503, Outcome: app.OutcomeHTTPError}
			if err := st.RecordAttempt(ctx, "dl_1", fail, app.DeliveryPending, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			ok := app.Attempt{Time: t0.Add(time.Hour), Duration: time.Millisecond, StatusCode: 204, Outcome: app.OutcomeSucceeded}
			if err := st.RecordAttempt(ctx, "dl_1", ok, app.DeliverySucceeded, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordAttempt(ctx, "dl_none", ok, app.DeliverySucceeded, time.Time{}); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("RecordAttempt of no delivery = %v", err)
			}
			log, err := st.ListDeliveries(ctx, "acme", "ep_a1", 0, nil, 10)
			if err != nil || len(log) != 1 {
				t.Fatalf("ListDeliveries = %+v, %v", log, err)
			}
			d := log[0]
			if d.State != app.DeliverySucceeded || !d.NextAttemptTime.IsZero() || len(d.Attempts) != 2 ||
				d.Attempts[0] != fail || d.Attempts[1] != ok || d.EventID != "evt-1" || d.Replay {
				t.Errorf("delivery log = %+v", d)
			}
			if pending, _ := st.ListDeliveries(ctx, "acme", "ep_a1", app.DeliveryPending, nil, 10); len(pending) != 0 {
				t.Errorf("PENDING filter = %+v", pending)
			}
		})

		t.Run("replay reads events in order after a position", func(t *testing.T) {
			for i := 2; i <= 5; i++ {
				typ := "consent.link.expiring"
				if i%2 == 1 {
					typ = "consent.link.revoked"
				}
				if _, err := st.AddEvent(ctx, event("acme", fmt.Sprintf("evt-%d", i), t0.Add(time.Duration(i)*time.Minute), typ), nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.AddEvent(ctx, event("beta", "evt-b", t0.Add(3*time.Minute), "consent.link.expiring"), nil); err != nil {
				t.Fatal(err)
			}
			ids := func(evs []app.Event, err error) string {
				if err != nil {
					t.Fatal(err)
				}
				s := ""
				for _, e := range evs {
					s += e.ID + " "
				}
				return s
			}
			if got := ids(st.EventsAfter(ctx, "acme", nil, t0.Add(2*time.Minute), "", 10)); got != "evt-2 evt-3 evt-4 evt-5 " {
				t.Errorf("since a time = %q", got)
			}
			if got := ids(st.EventsAfter(ctx, "acme", []string{"consent.link.expiring"}, t0, "evt-1", 10)); got != "evt-2 evt-4 " {
				t.Errorf("after evt-1, one type = %q", got)
			}
			if got := ids(st.EventsAfter(ctx, "acme", nil, t0, "evt-1", 2)); got != "evt-2 evt-3 " {
				t.Errorf("limited = %q", got)
			}
			if _, err := st.Event(ctx, "beta", "evt-1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another client's event = %v", err)
			}
			ev, _ := st.Event(ctx, "acme", "evt-3")
			rd := delivery(a1, ev, "dl_r1", t0.Add(time.Hour))
			rd.Replay = true
			rkey := app.IdempotencyKey{Client: "acme", Key: "replay-0001", Method: "ReplayEvents", Hash: "h", Result: "1 ", Time: t0}
			if err := st.Replay(ctx, []app.Delivery{rd}, rkey); err != nil {
				t.Fatal(err)
			}
			rd.ID = "dl_r2"
			if err := st.Replay(ctx, []app.Delivery{rd}, rkey); !errors.Is(err, app.ErrKeyTaken) {
				t.Fatalf("a replay with a used key = %v", err)
			}
			log, _ := st.ListDeliveries(ctx, "acme", "ep_a1", app.DeliveryPending, nil, 10)
			if len(log) != 1 || log[0].ID != "dl_r1" || !log[0].Replay {
				t.Errorf("replayed delivery = %+v", log)
			}
		})

		t.Run("deleting an endpoint takes its deliveries", func(t *testing.T) {
			if err := st.DeleteEndpoint(ctx, "acme", "ep_a2"); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteEndpoint(ctx, "acme", "ep_a2"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("second delete = %v", err)
			}
			if log, _ := st.ListDeliveries(ctx, "acme", "ep_a2", 0, nil, 10); len(log) != 0 {
				t.Errorf("deliveries of a deleted endpoint: %+v", log)
			}
			if err := st.RecordAttempt(ctx, "dl_2", app.Attempt{Time: t0, Outcome: app.OutcomeSucceeded}, app.DeliverySucceeded, time.Time{}); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("an attempt on a deleted endpoint's delivery = %v", err)
			}
		})

		t.Run("prune", func(t *testing.T) {
			if err := st.Prune(ctx, t0.Add(150*time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Event(ctx, "acme", "evt-2"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("an event older than the retention is still kept: %v", err)
			}
			if _, err := st.Event(ctx, "acme", "evt-3"); err != nil {
				t.Errorf("a recent event was pruned: %v", err)
			}
			if log, _ := st.ListDeliveries(ctx, "acme", "ep_a1", 0, nil, 10); len(log) != 1 || log[0].ID != "dl_r1" {
				t.Errorf("after pruning, the log = %+v", log)
			}
		})
	})
}
