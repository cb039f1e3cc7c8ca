package store_test

import (
	"context"
	"encoding/json"
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
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/store"
)

// t0 is the suite's clock: microsecond precision, like the columns.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

const (
	ups     = "1Z999AA10123456784"
	ambig   = "9600009098765431234565"
	dhl     = "3318810025"
	partner = "shop"
)

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

// shipment is a new shipment of user, of number with carrier ("" for
// the ambiguous number's candidates).
func shipment(user, id, number, carrier string) app.Shipment {
	sh := app.Shipment{User: user, ID: id, TrackingNumber: number, Carrier: carrier, CarrierDetected: carrier != "",
		Client: "chat-app", TrackingState: app.TrackingState{Status: app.StatusPending}, CreateTime: t0, UpdateTime: t0}
	if carrier == "" {
		sh.CarrierCandidates = []string{"fedex", "usps"}
	}
	return sh
}

// event is a carrier event of number at t0+minutes.
func event(carrier, id, number string, minutes int, status app.Status) app.TrackingEvent {
	return app.TrackingEvent{Carrier: carrier, ReceiveTime: t0.Add(time.Hour), CarrierEvent: app.CarrierEvent{
		EventID: id, TrackingNumber: number,
		Checkpoint: app.Checkpoint{Time: t0.Add(time.Duration(minutes) * time.Minute), Status: status, Substatus: "in_transit.departed",
			CarrierStatusCode: "DP", CarrierMessage: "Departed facility"},
	}}
}

// tx runs fn in a transaction of st and fails the test on its error.
func tx(t *testing.T, st *store.Store, fn func(tx app.Tx) error) {
	t.Helper()
	if err := st.Tx(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func insert(t *testing.T, st *store.Store, shs ...app.Shipment) {
	t.Helper()
	tx(t, st, func(tx app.Tx) error {
		for _, sh := range shs {
			if err := tx.InsertShipment(t.Context(), sh); err != nil {
				return err
			}
		}
		return nil
	})
}

func addEvents(t *testing.T, st *store.Store, evs ...app.TrackingEvent) []bool {
	t.Helper()
	var added []bool
	tx(t, st, func(tx app.Tx) error {
		for _, e := range evs {
			ok, err := tx.AddTrackingEvent(t.Context(), e)
			if err != nil {
				return err
			}
			added = append(added, ok)
		}
		return nil
	})
	return added
}

func ids(shs []app.Shipment) []string {
	out := make([]string, len(shs))
	for i, sh := range shs {
		out[i] = sh.User + "/" + sh.ID
	}
	return out
}

// count counts the rows of table where cond holds, straight from the
// database: what a deletion left behind.
func count(t *testing.T, db *storage.DB, table, cond string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table+" WHERE "+cond, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStore is the storage contract, run on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		ctx := t.Context()

		t.Run("a shipment reads back as stored; a user tracks a parcel once per carrier", func(t *testing.T) {
			sh := shipment("alice", "s1", ups, "ups")
			sh.Receipt, sh.Partner, sh.PartnerUserID = "users/alice/receipts/r1", partner, "puid-alice"
			sh.Status, sh.Substatus, sh.SignedBy = app.StatusDelivered, "delivered.signed", "A. Example"
			sh.EstimatedDelivery, sh.StatusTime, sh.LastEventTime = t0.Add(48*time.Hour), t0.Add(time.Minute), t0.Add(time.Hour)
			insert(t, st, sh)
			got, err := st.Shipment(ctx, "alice", "s1")
			if err != nil || !reflect.DeepEqual(got, sh) {
				t.Errorf("Shipment =\n%+v, %v\nwant\n%+v", got, err, sh)
			}
			amb := shipment("alice", "s2", ambig, "")
			insert(t, st, amb)
			if got, _ := st.Shipment(ctx, "alice", "s2"); !slices.Equal(got.CarrierCandidates, []string{"fedex", "usps"}) || got.Carrier != "" {
				t.Errorf("ambiguous shipment = %+v", got)
			}
			err = st.Tx(ctx, func(tx app.Tx) error { return tx.InsertShipment(ctx, shipment("alice", "s3", ups, "ups")) })
			if !errors.Is(err, app.ErrConflict) {
				t.Errorf("a second shipment of one parcel = %v, want ErrConflict", err)
			}
			insert(t, st, shipment("bob", "s1", ups, "ups"), shipment("alice", "s4", ups, "fedex"))
			tx(t, st, func(tx app.Tx) error {
				mine, err := tx.UserShipments(ctx, "alice", ups)
				if err != nil || !slices.Equal(ids(mine), []string{"alice/s1", "alice/s4"}) {
					t.Errorf("UserShipments = %v, %v", ids(mine), err)
				}
				if got, err := tx.PeekShipment(ctx, "alice", "s1"); err != nil || got.ID != "s1" || got.TrackingNumber != ups {
					t.Errorf("PeekShipment = %+v, %v", got, err)
				}
				if _, err := tx.LockShipment(ctx, "carol", "s1"); !errors.Is(err, app.ErrNotFound) {
					t.Errorf("another user's shipment = %v", err)
				}
				return nil
			})
			if _, err := st.Shipment(ctx, "carol", "s1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another user's shipment = %v, want ErrNotFound", err)
			}
		})

		t.Run("carrier events: once per id, per parcel, checkpoints by time", func(t *testing.T) {
			n := "1Z5R89390357567127"
			insert(t, st, shipment("ev-a", "s1", n, "ups"), shipment("ev-b", "s1", n, "ups"))
			e1, e2, e3 := event("ups", "e1", n, 10, app.StatusInTransit), event("ups", "e2", n, 5, app.StatusInfoReceived), event("ups", "e3", n, 20, app.StatusDelivered)
			e3.SignedBy, e3.EstimatedDelivery = "A. Example", t0.Add(24*time.Hour)
			e3.Checkpoint.Location = &app.Location{City: "Leipzig", CountryCode: "DE"}
			if got := addEvents(t, st, e1, e2, e3, e1); !slices.Equal(got, []bool{true, true, true, false}) {
				t.Errorf("added = %v, want the resent e1 refused", got)
			}
			// Another carrier's event id is another event.
			if got := addEvents(t, st, event("fedex", "e1", n, 1, app.StatusInTransit)); !got[0] {
				t.Error("another carrier's e1 was refused")
			}
			tx(t, st, func(tx app.Tx) error {
				evs, err := tx.TrackingEvents(ctx, "ups", n)
				if err != nil {
					return err
				}
				var got []string
				for _, e := range evs {
					got = append(got, e.EventID)
				}
				if !slices.Equal(got, []string{"e2", "e1", "e3"}) {
					t.Errorf("events = %v, want oldest first by checkpoint time", got)
				}
				if !reflect.DeepEqual(evs[2], e3) {
					t.Errorf("event =\n%+v\nwant\n%+v", evs[2], e3)
				}
				if evs[0].Checkpoint.Location != nil {
					t.Errorf("location of an event without one = %+v", evs[0].Checkpoint.Location)
				}
				both, err := tx.ParcelShipments(ctx, "ups", n)
				if err != nil || !slices.Equal(parcelIDs(both), []string{"ev-a/s1", "ev-b/s1"}) {
					t.Errorf("ParcelShipments = %v, %v", parcelIDs(both), err)
				}
				return nil
			})
			a, _ := st.Shipment(ctx, "ev-a", "s1")
			b, _ := st.Shipment(ctx, "ev-b", "s1")
			if len(a.Checkpoints) != 3 || !reflect.DeepEqual(a.Checkpoints, b.Checkpoints) || a.Checkpoints[2].Status != app.StatusDelivered {
				t.Errorf("checkpoints = %+v and %+v, want the parcel's three for both", a.Checkpoints, b.Checkpoints)
			}
			if n := count(t, db, "tracking_events", "carrier = $1 AND tracking_number = $2", "ups", n); n != 3 {
				t.Errorf("%d event rows for the parcel, want each stored once whoever tracks it", n)
			}
		})

		t.Run("events are kept while a shipment awaits them, the newest 500", func(t *testing.T) {
			tx(t, st, func(tx app.Tx) error {
				for _, tt := range []struct {
					carrier, number string
					want            bool
				}{
					{"ups", ups, true}, {"fedex", ups, true}, {"dhl-express", ups, false},
					{"fedex", ambig, true}, {"usps", ambig, true}, {"ups", dhl, false},
				} {
					if got, err := tx.Awaited(ctx, tt.carrier, tt.number); got != tt.want || err != nil {
						t.Errorf("Awaited(%s, %s) = %v, %v; want %v", tt.carrier, tt.number, got, err, tt.want)
					}
				}
				// Ambiguous shipments wait for their carrier: no carrier's
				// push reaches them.
				if shs, err := tx.ParcelShipments(ctx, "fedex", ambig); len(shs) != 0 || err != nil {
					t.Errorf("ParcelShipments(fedex, ambiguous) = %v, %v", parcelIDs(shs), err)
				}
				return nil
			})
			n := "PRUNE0001"
			insert(t, st, shipment("pruner", "s1", n, "dhl-express"))
			var evs []app.TrackingEvent
			for i := range 505 {
				evs = append(evs, event("dhl-express", fmt.Sprintf("p%03d", i), n, i, app.StatusInTransit))
			}
			addEvents(t, st, evs...)
			tx(t, st, func(tx app.Tx) error {
				if err := tx.PruneTracking(ctx, "dhl-express", n, app.MaxCheckpoints); err != nil {
					return err
				}
				kept, err := tx.TrackingEvents(ctx, "dhl-express", n)
				if err != nil || len(kept) != 500 || kept[0].EventID != "p005" || kept[499].EventID != "p504" {
					t.Errorf("kept %d, from %s, %v; want the 500 newest", len(kept), kept[0].EventID, err)
				}
				return nil
			})
			if c := count(t, db, "tracking_events", "tracking_number = $1", n); c != 500 {
				t.Errorf("%d rows after pruning", c)
			}
		})

		t.Run("a parcel's transactions take turns", func(t *testing.T) {
			locked, release := make(chan struct{}), make(chan struct{})
			first := make(chan error, 1)
			go func() {
				first <- st.Tx(context.Background(), func(tx app.Tx) error {
					if err := tx.LockParcel(context.Background(), "TURNS0001"); err != nil {
						return err
					}
					close(locked)
					<-release
					return nil
				})
			}()
			<-locked
			second := make(chan error, 1)
			go func() {
				second <- st.Tx(context.Background(), func(tx app.Tx) error { return tx.LockParcel(context.Background(), "TURNS0001") })
			}()
			select {
			case err := <-second:
				t.Fatalf("the second transaction got the parcel while the first held it: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			close(release)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := <-second; err != nil {
				t.Errorf("the second transaction, once the first ended: %v", err)
			}
		})

		t.Run("push ids are taken once per carrier, and forgotten", func(t *testing.T) {
			var got []bool
			tx(t, st, func(tx app.Tx) error {
				for _, p := range []struct {
					carrier, id string
					at          time.Time
				}{{"ups", "msg_1", t0}, {"ups", "msg_1", t0}, {"fedex", "msg_1", t0}, {"ups", "msg_2", t0.Add(-48 * time.Hour)}} {
					ok, err := tx.AddPush(ctx, p.carrier, p.id, p.at)
					if err != nil {
						return err
					}
					got = append(got, ok)
				}
				return nil
			})
			if !slices.Equal(got, []bool{true, false, true, true}) {
				t.Errorf("AddPush = %v", got)
			}
			if err := st.DeleteExpired(ctx, t0.Add(-24*time.Hour), t0.Add(-7*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			tx(t, st, func(tx app.Tx) error {
				if again, _ := tx.AddPush(ctx, "ups", "msg_2", t0); !again {
					t.Error("an old push id was not forgotten")
				}
				if again, _ := tx.AddPush(ctx, "ups", "msg_1", t0); again {
					t.Error("a fresh push id was forgotten")
				}
				return nil
			})
		})

		t.Run("idempotency keys: per client and subject, gone with their shipment or their time", func(t *testing.T) {
			insert(t, st, shipment("keeper", "k1", ups, "ups"))
			k := app.IdempotencyKey{Client: "chat-app", Subject: "keeper", Key: "key-00000001", User: "keeper", RequestHash: "h1", ShipmentID: "k1", Time: t0}
			pk := app.IdempotencyKey{Client: partner, Key: "key-00000001", User: "keeper", RequestHash: "h2", ShipmentID: "k1", TrackingNumber: "1z999aa1-0123456784", Time: t0.Add(-8 * 24 * time.Hour)}
			tx(t, st, func(tx app.Tx) error {
				if err := tx.Remember(ctx, k); err != nil {
					return err
				}
				return tx.Remember(ctx, pk)
			})
			if got, err := st.Recall(ctx, "chat-app", "keeper", "key-00000001"); err != nil || got != k {
				t.Errorf("Recall = %+v, %v", got, err)
			}
			if got, err := st.Recall(ctx, partner, "", "key-00000001"); err != nil || got != pk {
				t.Errorf("Recall(partner) = %+v, %v", got, err)
			}
			if _, err := st.Recall(ctx, "chat-app", "other", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another user's key = %v", err)
			}
			if err := st.Tx(ctx, func(tx app.Tx) error { return tx.Remember(ctx, k) }); !errors.Is(err, app.ErrConflict) {
				t.Errorf("a taken key = %v, want ErrConflict", err)
			}
			if err := st.DeleteExpired(ctx, t0.Add(-24*time.Hour), t0.Add(-7*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recall(ctx, partner, "", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("a key past its TTL = %v", err)
			}
			tx(t, st, func(tx app.Tx) error { return tx.DeleteShipment(ctx, "keeper", "k1") })
			if _, err := st.Recall(ctx, "chat-app", "keeper", "key-00000001"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("the key of a deleted shipment = %v", err)
			}
		})

		t.Run("a deleted shipment takes the events nobody else awaits", func(t *testing.T) {
			n := "DELE00001"
			insert(t, st, shipment("del-a", "s1", n, "dhl-express"), shipment("del-b", "s1", n, "dhl-express"), shipment("del-c", "s1", n, ""))
			addEvents(t, st, event("dhl-express", "d1", n, 1, app.StatusInTransit), event("usps", "d2", n, 1, app.StatusInTransit))
			del := func(user string) error {
				return st.Tx(ctx, func(tx app.Tx) error { return tx.DeleteShipment(ctx, user, "s1") })
			}
			if err := del("del-a"); err != nil {
				t.Fatal(err)
			}
			if c := count(t, db, "tracking_events", "tracking_number = $1", n); c != 2 {
				t.Errorf("%d events left, want both: del-b and del-c await them", c)
			}
			if err := del("del-c"); err != nil {
				t.Fatal(err)
			}
			if c := count(t, db, "tracking_events", "tracking_number = $1 AND carrier = $2", n, "usps"); c != 0 {
				t.Errorf("%d events of a carrier nobody awaits left", c)
			}
			if err := del("del-b"); err != nil {
				t.Fatal(err)
			}
			if c := count(t, db, "tracking_events", "tracking_number = $1", n); c != 0 {
				t.Errorf("%d events left with no shipment of the parcel", c)
			}
			if err := del("del-b"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("second delete = %v, want ErrNotFound", err)
			}
		})

		t.Run("lists: newest first, keyset pages, statuses", func(t *testing.T) {
			u := "lister"
			for i, s := range []app.Status{app.StatusPending, app.StatusInTransit, app.StatusDelivered, app.StatusInTransit, app.StatusExpired} {
				sh := shipment(u, fmt.Sprintf("l%d", i), fmt.Sprintf("LIST%05d", i), "dhl-express")
				sh.Status, sh.CreateTime = s, t0.Add(time.Duration(i)*time.Hour)
				if i == 4 {
					sh.CreateTime = t0.Add(time.Hour) // a tie with l1: the id breaks it
				}
				insert(t, st, sh)
			}
			var got []string
			var after *pagetoken.Position
			for {
				page, err := st.ListShipments(ctx, u, app.Filter{}, after, 2)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(page)...)
				if len(page) < 2 {
					break
				}
				last := page[len(page)-1]
				after = &pagetoken.Position{Time: last.CreateTime, ID: last.ID}
			}
			if want := []string{u + "/l3", u + "/l2", u + "/l4", u + "/l1", u + "/l0"}; !slices.Equal(got, want) {
				t.Errorf("pages = %v, want %v", got, want)
			}
			page, err := st.ListShipments(ctx, u, app.Filter{Statuses: []app.Status{app.StatusInTransit, app.StatusPending}}, nil, 10)
			if want := []string{u + "/l3", u + "/l1", u + "/l0"}; err != nil || !slices.Equal(ids(page), want) {
				t.Errorf("on their way = %v, %v; want %v", ids(page), err, want)
			}
		})

		t.Run("stale shipments: not final, quiet since before", func(t *testing.T) {
			u := "stale"
			quiet := shipment(u, "q1", "STALE0001", "dhl-express")
			heard := shipment(u, "q2", "STALE0002", "dhl-express")
			heard.LastEventTime = t0.Add(20 * 24 * time.Hour)
			done := shipment(u, "q3", "STALE0003", "dhl-express")
			done.Status = app.StatusDelivered
			insert(t, st, quiet, heard, done)
			tx(t, st, func(tx app.Tx) error {
				shs, err := tx.StaleShipments(ctx, t0.Add(10*24*time.Hour), 100)
				var mine []string
				for _, sh := range shs {
					if sh.User == u {
						mine = append(mine, sh.ID)
					}
				}
				if err != nil || !slices.Equal(mine, []string{"q1"}) {
					t.Errorf("StaleShipments = %v, %v; want q1 alone", mine, err)
				}
				heard.Status, heard.UpdateTime = app.StatusExpired, t0.Add(time.Hour)
				return tx.UpdateShipment(ctx, heard)
			})
			if got, _ := st.Shipment(ctx, u, "q2"); got.Status != app.StatusExpired || !got.UpdateTime.Equal(t0.Add(time.Hour)) {
				t.Errorf("updated = %+v", got)
			}
		})

		t.Run("partners' registrations and users, for consent", func(t *testing.T) {
			u := "consent-u"
			a := shipment(u, "c1", "CONS0001", "dhl-express")
			a.Partner, a.PartnerUserID = partner, "puid-new"
			b := shipment(u, "c2", "CONS0002", "dhl-express")
			b.Partner, b.PartnerUserID = partner, "puid-old"
			insert(t, st, a, b, shipment(u, "c3", "CONS0003", "dhl-express"))
			subs, err := st.PartnerSubjects(ctx, app.PartnerSubject{User: "consent-t"}, 100)
			want := []app.PartnerSubject{{User: u, Partner: partner, PartnerUserID: "puid-new"}, {User: u, Partner: partner, PartnerUserID: "puid-old"}}
			if err != nil || len(subs) < 2 || !slices.Equal(subs[:2], want) {
				t.Errorf("PartnerSubjects = %v, %v", subs, err)
			}
			if users, err := st.UsersWithShipments(ctx, "consent-t", 100); err != nil || !slices.Contains(users, u) || slices.Contains(users, "alice") {
				t.Errorf("UsersWithShipments = %v, %v", users, err)
			}
			tx(t, st, func(tx app.Tx) error {
				for _, tt := range []struct {
					partner, puid string
					want          []string
				}{{partner, "puid-old", []string{u + "/c2"}}, {partner, "", []string{u + "/c1", u + "/c2"}}, {"", "", []string{u + "/c1", u + "/c2", u + "/c3"}}} {
					if shs, err := tx.ShipmentsOf(ctx, u, tt.partner, tt.puid); err != nil || !slices.Equal(ids(shs), tt.want) {
						t.Errorf("ShipmentsOf(%q, %q) = %v, %v; want %v", tt.partner, tt.puid, ids(shs), err, tt.want)
					}
				}
				return nil
			})
		})

		t.Run("a parcel's shipments, in their states as their rows hold them", func(t *testing.T) {
			n, other := "1ZSTATE00001", "1ZSTATE00002"
			usual := app.TrackingState{Status: app.StatusInTransit, Substatus: "in_transit.departed",
				StatusTime: t0.Add(10 * time.Minute), LastEventTime: t0.Add(time.Hour)} // no estimate: NULL
			expiredState := usual
			expiredState.Status, expiredState.StatusTime = app.StatusExpired, t0.Add(5*time.Minute)
			estimated := usual
			estimated.EstimatedDelivery, estimated.SignedBy = t0.Add(48*time.Hour), "A. Example"
			with := func(user, number, carrier string, st app.TrackingState) app.Shipment {
				sh := shipment(user, "s1", number, carrier)
				sh.TrackingState = st
				return sh
			}
			want := []parcelRow{
				{Name: "users/ps-a/shipments/s1", State: usual},
				{Name: "users/ps-b/shipments/s1", State: usual},
				{Name: "users/ps-c/shipments/s1", State: expiredState},
				{Name: "users/ps-e/shipments/s1", State: estimated},
				// Never heard of: no status time, no last event (NULLs).
				{Name: "users/ps-p/shipments/s1", State: app.TrackingState{Status: app.StatusPending}},
			}
			// Inserted out of order, with the number's other carriers' (and
			// one waiting for its carrier) and another number's.
			insert(t, st, with("ps-p", n, "ups", want[4].State), with("ps-fedex", n, "fedex", usual), with("ps-c", n, "ups", expiredState),
				with("ps-other", other, "ups", usual), with("ps-b", n, "ups", usual), with("ps-e", n, "ups", estimated),
				with("ps-a", n, "ups", usual), with("ps-amb", n, "", app.TrackingState{Status: app.StatusPending}))
			tx(t, st, func(tx app.Tx) error {
				got, err := tx.ParcelShipments(ctx, "ups", n)
				if err != nil || !reflect.DeepEqual(parcelRows(t, got), want) || len(got) != 4 {
					t.Errorf("ParcelShipments =\n%+v, %v\nwant\n%+v in 4 states", got, err, want)
				}
				return nil
			})

			// The parcel's events since the rows' last (received after t0+1h)
			// are the rows' to absorb: reads show them absorbed, the rows keep
			// what they hold until written.
			absorbed := event("ups", "st-1", n, 1, app.StatusInfoReceived) // received t0+1h: every row but ps-p's has it
			newer := event("ups", "st-2", n, 20, app.StatusOutForDelivery)
			newer.ReceiveTime, newer.EstimatedDelivery = t0.Add(2*time.Hour), t0.Add(30*time.Hour)
			late := event("ups", "st-3", n, 2, app.StatusInTransit)
			late.ReceiveTime, late.SignedBy = t0.Add(3*time.Hour), "B. Example"
			addEvents(t, st, absorbed, newer, late)
			for _, user := range []string{"ps-a", "ps-c", "ps-p"} {
				got, err := st.Shipment(ctx, user, "s1")
				if err != nil || got.Status != app.StatusOutForDelivery || !got.StatusTime.Equal(newer.Checkpoint.Time) ||
					!got.EstimatedDelivery.Equal(newer.EstimatedDelivery) || got.SignedBy != "B. Example" ||
					!got.LastEventTime.Equal(late.ReceiveTime) || len(got.Checkpoints) != 3 {
					t.Errorf("%s's shipment = %+v, %v; want OUT_FOR_DELIVERY since t0+20m, the estimate, the late one's signature, last event t0+3h", user, got, err)
				}
			}
			// A late checkpoint's signature fills only one not known yet.
			if got, _ := st.Shipment(ctx, "ps-e", "s1"); got.SignedBy != "A. Example" || !got.EstimatedDelivery.Equal(newer.EstimatedDelivery) {
				t.Errorf("ps-e's shipment = %+v, want its signature kept and the newer estimate", got)
			}
			if page, err := st.ListShipments(ctx, "ps-c", app.Filter{}, nil, 10); err != nil || len(page) != 1 || page[0].Status != app.StatusOutForDelivery {
				t.Errorf("ListShipments(ps-c) = %+v, %v; want it caught up", page, err)
			}
			tx(t, st, func(tx app.Tx) error {
				got, err := tx.ParcelShipments(ctx, "ups", n)
				if err != nil || !reflect.DeepEqual(parcelRows(t, got), want) {
					t.Errorf("ParcelShipments after reads =\n%+v, %v\nwant the rows unchanged", got, err)
				}
				return nil
			})

			// Written caught up, a row's expiry counts from its last event.
			activeTime := func(user string) time.Time {
				var us int64
				if err := db.QueryRowContext(ctx, `SELECT active_time FROM shipments WHERE user_id = $1`, user).Scan(&us); err != nil {
					t.Fatal(err)
				}
				return storage.FromMicros(us)
			}
			if got := activeTime("ps-p"); !got.Equal(t0) {
				t.Errorf("ps-p's active_time = %v, want its creation, t0", got)
			}
			caught, err := st.Shipment(ctx, "ps-p", "s1")
			if err != nil {
				t.Fatal(err)
			}
			tx(t, st, func(tx app.Tx) error { return tx.UpdateShipment(ctx, caught) })
			if got := activeTime("ps-p"); !got.Equal(late.ReceiveTime) {
				t.Errorf("ps-p's active_time = %v, want its last event's, t0+3h", got)
			}
			stale := func(before time.Time) []string {
				var out []string
				tx(t, st, func(tx app.Tx) error {
					shs, err := tx.StaleShipments(ctx, before, 1000)
					for _, sh := range shs {
						if strings.HasPrefix(sh.User, "ps-") {
							out = append(out, sh.User)
						}
					}
					return err
				})
				return out
			}
			if got := stale(t0.Add(2 * time.Hour)); slices.Contains(got, "ps-p") || !slices.Contains(got, "ps-a") || slices.Contains(got, "ps-c") {
				t.Errorf("quiet before t0+2h: %v; want ps-a (last event t0+1h), not ps-p (t0+3h) nor the expired ps-c", got)
			}
			if got := stale(t0.Add(4 * time.Hour)); !slices.Contains(got, "ps-p") {
				t.Errorf("quiet before t0+4h: %v; want ps-p", got)
			}
		})

		t.Run("a parcel's checkpoint goes to the outbox once, for its audience", func(t *testing.T) {
			cp := app.Checkpoint{Time: t0, Status: app.StatusInTransit}
			parcel := app.Shipment{TrackingNumber: dhl, Carrier: "dhl-express", TrackingState: app.TrackingState{Status: app.StatusInTransit}, UpdateTime: t0}
			audience := []string{"users/aud-a/shipments/s1", "users/aud-b/shipments/s1"}
			tx(t, st, func(tx app.Tx) error {
				return tx.AddEvent(ctx, app.Event{ID: "ev-parcel-1", Type: app.EventParcelTracked, Shipment: parcel, Checkpoint: &cp, Time: t0, Audience: audience})
			})
			var user, client, resource, got string
			if err := db.QueryRowContext(ctx, `SELECT user_id, client_id, resource, audience FROM events_outbox WHERE event_id = $1`, "ev-parcel-1").
				Scan(&user, &client, &resource, &got); err != nil {
				t.Fatal(err)
			}
			topic := app.ParcelTopic("dhl-express", dhl)
			if user != topic || resource != topic || client != "" || got != strings.Join(audience, "\n") {
				t.Errorf("outbox row: user %q, client %q, resource %q, audience %q; want the parcel's, no client, both recipients", user, client, resource, got)
			}
			if n := count(t, db, "events_outbox", "user_id LIKE $1", "aud-%"); n != 0 {
				t.Errorf("%d per-user rows for an audience event, want none", n)
			}
		})

		t.Run("events go to the outbox with the shipment's state", func(t *testing.T) {
			sh := shipment("outboxer", "o1", ups, "ups")
			cp := app.Checkpoint{Time: t0, Status: app.StatusInTransit}
			tx(t, st, func(tx app.Tx) error {
				if err := tx.AddEvent(ctx, app.Event{ID: "ev-1", Type: app.EventUpdated, User: sh.User, Client: sh.Client, Shipment: sh, Checkpoint: &cp, Time: t0}); err != nil {
					return err
				}
				return tx.AddEvent(ctx, app.Event{ID: "ev-2", Type: app.EventDeleted, User: sh.User, Client: sh.Client, Shipment: sh, Time: t0})
			})
			rows, err := db.QueryContext(ctx, `SELECT event_type, source, client_id, data FROM events_outbox WHERE resource = $1 ORDER BY seq`, sh.Name())
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var typ, source, client, data string
				if err := rows.Scan(&typ, &source, &client, &data); err != nil {
					t.Fatal(err)
				}
				var ev struct {
					Type     string         `json:"type"`
					Shipment map[string]any `json:"shipment"`
				}
				if err := json.Unmarshal([]byte(data), &ev); err != nil || source != store.Source || client != "chat-app" || ev.Shipment["name"] != sh.Name() {
					t.Errorf("event %s: %s from %s to %s, %v", typ, data, source, client, err)
				}
				if typ == app.EventDeleted && len(ev.Shipment) != 1 {
					t.Errorf("a deleted event carries more than the name: %s", data)
				}
				got = append(got, ev.Type)
			}
			if !slices.Equal(got, []string{"SHIPMENT_EVENT_TYPE_UPDATED", "SHIPMENT_EVENT_TYPE_DELETED"}) {
				t.Errorf("outbox = %v", got)
			}
		})
	})
}

// parcelIDs are user/id of each of a parcel's shipments, in order.
func parcelIDs(states []app.ParcelState) []string {
	var out []string
	for _, ps := range states {
		for _, name := range ps.Shipments {
			user, id, _ := app.ParseShipmentName(name)
			out = append(out, user+"/"+id)
		}
	}
	slices.Sort(out)
	return out
}

// parcelRow is one of a parcel's shipments with the state its row holds.
type parcelRow struct {
	Name  string
	State app.TrackingState
}

// parcelRows are a parcel's shipments, by name, each with its state; it
// fails t when two of the states are one.
func parcelRows(t *testing.T, states []app.ParcelState) []parcelRow {
	t.Helper()
	var out []parcelRow
	for i, ps := range states {
		for _, other := range states[:i] {
			if other.State == ps.State {
				t.Errorf("state %+v read as two", ps.State)
			}
		}
		for _, name := range ps.Shipments {
			out = append(out, parcelRow{Name: name, State: ps.State})
		}
	}
	slices.SortFunc(out, func(a, b parcelRow) int { return strings.Compare(a.Name, b.Name) })
	return out
}
