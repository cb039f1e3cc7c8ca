package transport_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// TestWatchShipments streams a user's shipment events from the bus. Live,
// a checkpoint comes the moment it is stored, as the fields it moved; a
// client that drops after two events and resumes with its last cursor
// gets the rest as its own events, each with the shipment's whole state:
// maybe again what it saw live (a whole state is harmless twice), but
// every change it missed, in order, the last one the shipment as it is,
// and nothing of another user tracking the same parcel. The stream ends
// when the consent covering shipping is revoked. It runs on a NATS server
// embedded in the test and on the real one.
func TestWatchShipments(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]busURL{"embedded": embeddedNATS, "nats-server": func(t *testing.T) string { return testkit.RealNATS(t) }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, url)
			link := e.link("alice")
			e.link("bob")
			ctx, cancel := context.WithTimeout(e.as(t, "alice"), 30*time.Second)
			defer cancel()
			first, drop := context.WithCancel(ctx)
			w := e.watch(t, first, "alice", "")

			sh := e.create(t, "alice", dhlNumber, "")
			bobs := e.create(t, "bob", dhlNumber, "") // the same parcel: nothing of it reaches alice
			at := time.Now().Add(-4 * time.Hour).UTC()
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, infoReceived, at))
			got := []*shippingv1.WatchShipmentsResponse{w.next(), w.next()}
			if ev := got[0].GetEvent(); ev.GetType() != created || ev.GetShipment().GetName() != sh.GetName() || ev.GetShipment().GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_PENDING ||
				ev.GetShipment().GetCarrier() != carrier.DHLExpress || ev.GetCheckpoint() != nil || ev.GetEventTime() == nil || got[0].GetCursor() == "" {
				t.Fatalf("first event = %v", got[0])
			}
			if ev := got[1].GetEvent(); ev.GetType() != updated || ev.GetShipment().GetName() != sh.GetName() || ev.GetShipment().GetStatus() != infoReceived ||
				ev.GetCheckpoint().GetStatus() != infoReceived || len(ev.GetUpdateMask().GetPaths()) == 0 || got[1].GetCursor() == "" {
				t.Fatalf("second event = %v, want the checkpoint, live", got[1])
			}
			drop()

			// While the client is away: two checkpoints, then the delete.
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, inTransit, at.Add(time.Hour)))
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, outForDelivery, at.Add(2*time.Hour)))

			w2 := e.watch(t, ctx, "alice", got[1].GetCursor())
			// The missed checkpoints come as alice's own events, in order,
			// each with the whole shipment as it was when written: never
			// older than the one before. The client is up to date once it
			// has both and the shipment is as stored.
			var causes []shippingv1.ShipmentStatus
			var last *shippingv1.Shipment
			for len(causes) < 2 || len(last.GetCheckpoints()) < 3 {
				if len(causes) > 6 {
					t.Fatalf("resumed events caused by %v, the shipment now %v; want the two missed checkpoints", causes, last)
				}
				ev := w2.next().GetEvent()
				s := ev.GetShipment()
				if ev.GetType() != updated || s.GetName() != sh.GetName() || ev.GetUpdateMask() != nil || s.GetCreateTime() == nil ||
					len(s.GetCheckpoints()) == 0 || s.GetStatus() != s.GetCheckpoints()[len(s.GetCheckpoints())-1].GetStatus() {
					t.Fatalf("resumed event = %v, want alice's shipment, whole, after a checkpoint", ev)
				}
				if len(s.GetCheckpoints()) < len(last.GetCheckpoints()) {
					t.Errorf("resumed event = %v, older than the one before (%d checkpoints)", ev, len(last.GetCheckpoints()))
				}
				last = s
				// What alice saw live may come again, first; the rest once
				// each, in the order they happened.
				if c := ev.GetCheckpoint().GetStatus(); c != infoReceived || len(causes) > 0 {
					causes = append(causes, c)
				}
			}
			if !slices.Equal(causes, []shippingv1.ShipmentStatus{inTransit, outForDelivery}) {
				t.Errorf("resumed events caused by %v, want IN_TRANSIT then OUT_FOR_DELIVERY", causes)
			}
			if stored := e.get(t, "alice", sh.GetName()); last.GetStatus() != outForDelivery || !proto.Equal(last, stored) {
				t.Errorf("last resumed shipment = %v\nwant it as stored %v", last, stored)
			}

			if _, err := e.shipping.DeleteShipment(e.as(t, "alice"), &shippingv1.DeleteShipmentRequest{Name: sh.GetName()}); err != nil {
				t.Fatal(err)
			}
			if ev := w2.next().GetEvent(); ev.GetType() != deleted || ev.GetShipment().GetName() != sh.GetName() || ev.GetShipment().GetTrackingNumber() != "" {
				t.Errorf("event after the checkpoints = %v, want the deletion, naming the shipment alone", ev)
			}
			// Nothing else was waiting: the next event is one made now.
			next := e.create(t, "alice", upsNumber, "")
			if ev := w2.next().GetEvent(); ev.GetType() != created || ev.GetShipment().GetName() != next.GetName() {
				t.Errorf("event after the rest = %v, want the new creation", ev)
			}
			// bob's shipment followed the parcel all along.
			if got := e.get(t, "bob", bobs.GetName()); got.GetStatus() != outForDelivery || len(got.GetCheckpoints()) != 3 {
				t.Errorf("bob's shipment = %v", got)
			}

			// The user revokes the consent covering shipping: the stream ends.
			e.consent.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_REVOKED)
			_, err := w2.s.Recv()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		})
	}
}
