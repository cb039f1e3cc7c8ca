package transport_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

const (
	infoReceived   = shippingv1.ShipmentStatus_SHIPMENT_STATUS_INFO_RECEIVED
	inTransit      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT
	outForDelivery = shippingv1.ShipmentStatus_SHIPMENT_STATUS_OUT_FOR_DELIVERY
	delivered      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED
	exception      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_EXCEPTION
	expired        = shippingv1.ShipmentStatus_SHIPMENT_STATUS_EXPIRED
	updated        = shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED
	created        = shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_CREATED
	deleted        = shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_DELETED
)

// TestFanOut: a carrier's event reaches the live stream of every user who
// tracks the parcel at once, each told of their own shipment alone (the
// checkpoint and the fields it moves, named in update_mask), and nobody
// else; a stream resumed from before it gets the user's own event with
// the shipment's whole state.
func TestFanOut(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	watchers := map[string]watcher{}
	mine := map[string]*shippingv1.Shipment{}
	// cursors are where each user's stream stood before the push.
	cursors := map[string]string{}
	for user, number := range map[string]string{"alice": upsNumber, "bob": upsNumber, "carol": upsOther} {
		e.link(user)
		watchers[user] = e.watch(t, nil, user, "")
		mine[user] = e.create(t, user, number, "")
		r := watchers[user].next()
		if got := r.GetEvent(); got.GetType() != created || got.GetShipment().GetName() != mine[user].GetName() {
			t.Fatalf("%s's first event = %v, want the creation of %s", user, got, mine[user].GetName())
		}
		cursors[user] = r.GetCursor()
	}

	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	estimate := at.Add(48 * time.Hour)
	push := ev(upsNumber, inTransit, at)
	push.Checkpoint.Location = &shippingv1.Location{City: "Leipzig", PostalCode: "04109", CountryCode: "DE"}
	push.EstimatedDeliveryTime = timestamppb.New(estimate)
	if r := e.mustPush(t, carrier.UPS, push); r.GetRecordedCount() != 1 || r.GetDuplicateCount() != 0 {
		t.Errorf("push = %v, want 1 recorded", r)
	}
	for _, user := range []string{"alice", "bob"} {
		got := watchers[user].next().GetEvent()
		// Live, the change comes as the fields it moved: nothing of the
		// shipment's own (receipt, creation, checkpoints) nor of anyone
		// else's.
		want := &shippingv1.Shipment{Name: mine[user].GetName(), TrackingNumber: upsNumber, Carrier: carrier.UPS, Status: inTransit,
			EstimatedDeliveryTime: timestamppb.New(estimate), UpdateTime: got.GetShipment().GetUpdateTime()}
		if got.GetType() != updated || !proto.Equal(got.GetShipment(), want) || got.GetShipment().GetUpdateTime() == nil {
			t.Errorf("%s's live shipment = %v\nwant %v", user, got.GetShipment(), want)
		}
		if paths := got.GetUpdateMask().GetPaths(); !slices.Equal(paths, shipmentpb.TrackingMask) {
			t.Errorf("%s's update_mask = %v, want %v", user, paths, shipmentpb.TrackingMask)
		}
		if cp := got.GetCheckpoint(); cp.GetStatus() != inTransit || cp.GetLocation().GetCity() != "Leipzig" || !cp.GetTime().AsTime().Equal(at) || got.GetEventTime() == nil {
			t.Errorf("%s's live event = %v, want the Leipzig checkpoint", user, got)
		}
		if read := e.get(t, user, mine[user].GetName()); read.GetStatus() != inTransit || len(read.GetCheckpoints()) != 1 ||
			!read.GetUpdateTime().AsTime().Equal(got.GetShipment().GetUpdateTime().AsTime()) {
			t.Errorf("%s's shipment = %v, want it as the event said", user, read)
		}
	}

	// A stream resumed from before the push gets the user's own event, with
	// the shipment's whole state, and nothing of the other user's.
	for _, user := range []string{"alice", "bob"} {
		w := e.watch(t, nil, user, cursors[user])
		got := w.next().GetEvent()
		sh := got.GetShipment()
		if got.GetType() != updated || sh.GetName() != mine[user].GetName() || sh.GetStatus() != inTransit || len(sh.GetCheckpoints()) != 1 ||
			sh.GetCheckpoints()[0].GetLocation().GetCity() != "Leipzig" || !sh.GetEstimatedDeliveryTime().AsTime().Equal(estimate) ||
			!sh.GetCreateTime().AsTime().Equal(mine[user].GetCreateTime().AsTime()) || !sh.GetCarrierDetected() ||
			got.GetUpdateMask() != nil || got.GetCheckpoint().GetLocation().GetCity() != "Leipzig" {
			t.Errorf("%s's resumed event = %v, want the whole shipment after the Leipzig checkpoint", user, got)
		}
		// Nothing else was waiting for the user, and a live stream is not
		// told of the change twice: the next event on both is one made now.
		again := e.create(t, user, dhlNumber, "")
		for name, s := range map[string]watcher{"resumed": w, "live": watchers[user]} {
			if got := s.next().GetEvent(); got.GetType() != created || got.GetShipment().GetName() != again.GetName() {
				t.Errorf("%s's %s stream then = %v, want the creation of %s", user, name, got, again.GetName())
			}
		}
	}

	// carol's parcel moves next: the first event she hears of is hers, so
	// nothing of the other parcel reached her.
	e.mustPush(t, carrier.UPS, ev(upsOther, infoReceived, at))
	if got := watchers["carol"].next().GetEvent(); got.GetShipment().GetName() != mine["carol"].GetName() || got.GetShipment().GetStatus() != infoReceived {
		t.Errorf("carol's event = %v, want her own parcel's", got)
	}
	if got := e.get(t, "carol", mine["carol"].GetName()); len(got.GetCheckpoints()) != 1 {
		t.Errorf("carol's shipment = %v", got)
	}
	var rows int
	_ = e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM tracking_events WHERE tracking_number = $1`, upsNumber).Scan(&rows)
	if rows != 1 {
		t.Errorf("%d rows for one checkpoint of a parcel two users track, want 1", rows)
	}

	t.Run("a user who starts tracking the parcel later gets its checkpoints", func(t *testing.T) {
		e.link("dave")
		got := e.create(t, "dave", upsNumber, "")
		if got.GetStatus() != inTransit || len(got.GetCheckpoints()) != 1 || got.GetEstimatedDeliveryTime() == nil {
			t.Errorf("dave's new shipment = %v", got)
		}
	})
}

// TestCheckpointOrder: a resent event is stored once; a late one takes its
// place in time but never moves the status back.
func TestCheckpointOrder(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	sh := e.create(t, "alice", dhlNumber, "")
	now := time.Now().UTC().Truncate(time.Millisecond)
	first := ev(dhlNumber, inTransit, now.Add(-3*time.Hour))
	second := ev(dhlNumber, outForDelivery, now.Add(-time.Hour))
	if r := e.mustPush(t, carrier.DHLExpress, second, first, first); r.GetRecordedCount() != 2 || r.GetDuplicateCount() != 1 {
		t.Errorf("push = %v, want 2 recorded and the resent one a duplicate", r)
	}
	if r := e.mustPush(t, carrier.DHLExpress, second); r.GetRecordedCount() != 0 || r.GetDuplicateCount() != 1 {
		t.Errorf("resent push = %v, want 1 duplicate", r)
	}
	got := e.get(t, "alice", sh.GetName())
	if got.GetStatus() != outForDelivery || len(got.GetCheckpoints()) != 2 || got.GetCheckpoints()[0].GetStatus() != inTransit {
		t.Fatalf("shipment = %v, want OUT_FOR_DELIVERY after two checkpoints, oldest first", got)
	}
	before := got.GetUpdateTime().AsTime()

	late := ev(dhlNumber, infoReceived, now.Add(-5*time.Hour))
	e.clock.Add(time.Second)
	if r := e.mustPush(t, carrier.DHLExpress, late); r.GetRecordedCount() != 1 {
		t.Errorf("late push = %v", r)
	}
	got = e.get(t, "alice", sh.GetName())
	if got.GetStatus() != outForDelivery || len(got.GetCheckpoints()) != 3 || got.GetCheckpoints()[0].GetStatus() != infoReceived ||
		!got.GetUpdateTime().AsTime().After(before) {
		t.Errorf("after a late checkpoint = %v, want it first among the checkpoints and the status unchanged", got)
	}

	done := ev(dhlNumber, delivered, now.Add(-10*time.Minute))
	done.Checkpoint.Substatus, done.SignedBy = "delivered.signed", "A. Example"
	e.mustPush(t, carrier.DHLExpress, done)
	e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, exception, now.Add(-2*time.Hour)))
	got = e.get(t, "alice", sh.GetName())
	if got.GetStatus() != delivered || got.GetSubstatus() != "delivered.signed" || got.GetSignedBy() != "A. Example" || len(got.GetCheckpoints()) != 5 {
		t.Errorf("after delivery and a late exception = %v, want DELIVERED, signed", got)
	}
}

// TestReplayedPush: a push id the carrier used before is refused, and
// nothing of it is stored; another carrier may use the same id.
func TestReplayedPush(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	sh := e.create(t, "alice", upsNumber, "")
	at := time.Now().Add(-time.Hour).UTC()
	if p := e.push(t, carrier.UPS, "msg_1", ev(upsNumber, inTransit, at)); p.code != http.StatusOK {
		t.Fatalf("push = %d %s", p.code, p.body)
	}
	p := e.push(t, carrier.UPS, "msg_1", ev(upsNumber, delivered, at.Add(time.Minute)))
	if p.code != http.StatusUnauthorized {
		t.Errorf("replayed push = %d %s, want 401", p.code, p.body)
	}
	if got := e.get(t, "alice", sh.GetName()); got.GetStatus() != inTransit || len(got.GetCheckpoints()) != 1 {
		t.Errorf("after a replay = %v, want nothing of it stored", got)
	}
	if p := e.push(t, carrier.FedEx, "msg_1", ev("012345678983", inTransit, at)); p.code != http.StatusOK {
		t.Errorf("another carrier's msg_1 = %d %s", p.code, p.body)
	}
}

// TestUntrackedParcels: bankbridge keeps nothing of a parcel nobody
// tracks, nor of one whose last shipment was deleted.
func TestUntrackedParcels(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	at := time.Now().Add(-time.Hour).UTC()
	if r := e.mustPush(t, carrier.UPS, ev(upsNumber, inTransit, at)); r.GetRecordedCount() != 0 || r.GetDuplicateCount() != 0 {
		t.Errorf("push for an untracked parcel = %v, want nothing recorded", r)
	}
	sh := e.create(t, "alice", upsNumber, "")
	e.mustPush(t, carrier.UPS, ev(upsNumber, inTransit, at))
	if _, err := e.shipping.DeleteShipment(e.as(t, "alice"), &shippingv1.DeleteShipmentRequest{Name: sh.GetName()}); err != nil {
		t.Fatal(err)
	}
	if r := e.mustPush(t, carrier.UPS, ev(upsNumber, delivered, at)); r.GetRecordedCount() != 0 {
		t.Errorf("push after the delete = %v, want it dropped", r)
	}
	if n := e.rows(t, "tracking_events"); n != 0 {
		t.Errorf("%d tracking events kept for a parcel nobody tracks", n)
	}
}

// TestConcurrentPushes: pushes of one parcel and users starting to track
// it, all at once, on SQLite and PostgreSQL: every push is stored, and
// every shipment ends with every checkpoint and the newest one's status.
func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		e := startOn(t, embeddedNATS, db)
		users := []string{"u0", "u1", "u2", "u3", "u4"}
		for _, u := range users {
			e.link(u)
		}
		e.create(t, "u0", upsNumber, "")
		e.create(t, "u1", upsNumber, "")
		base := time.Now().Add(-2 * time.Hour).UTC()
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		newest := base.Add(time.Duration(8*3) * time.Minute)
		for i := range 8 {
			wg.Go(func() {
				var evs []*shippingv1.CarrierEvent
				for j := range 3 {
					status := inTransit
					at := base.Add(time.Duration(i*3+j+1) * time.Minute)
					if at.Equal(newest) {
						status = outForDelivery
					}
					evs = append(evs, ev(upsNumber, status, at))
				}
				if p := e.push(t, carrier.UPS, "", evs...); p.code != http.StatusOK || p.resp.GetRecordedCount() != 3 {
					errs <- fmt.Sprintf("push %d = %d %s", i, p.code, p.body)
				}
			})
		}
		for _, u := range users[2:] {
			wg.Go(func() {
				if _, err := e.shipping.CreateShipment(e.as(t, u), &shippingv1.CreateShipmentRequest{Parent: "users/" + u, IdempotencyKey: newKey(),
					Shipment: &shippingv1.Shipment{TrackingNumber: upsNumber}}); err != nil {
					errs <- fmt.Sprintf("create for %s: %v", u, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for msg := range errs {
			t.Error(msg)
		}
		for _, u := range users {
			shs := e.list(t, u, nil)
			if len(shs) != 1 {
				t.Errorf("%s has %d shipments of one parcel", u, len(shs))
				continue
			}
			if shs[0].GetStatus() != outForDelivery || len(shs[0].GetCheckpoints()) != 24 {
				t.Errorf("%s's shipment: %v with %d checkpoints; want OUT_FOR_DELIVERY with 24", u, shs[0].GetStatus(), len(shs[0].GetCheckpoints()))
			}
		}
	})
}
