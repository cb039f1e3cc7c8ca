package transport_test

import (
	"context"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// TestWatchShipments streams a user's shipment events from the bus: a
// client that drops after two events and resumes with its last cursor
// gets exactly the rest, in order; the stream ends when the consent
// covering shipping is revoked. It runs on a NATS server embedded in the
// test and on the real one.
func TestWatchShipments(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]busURL{"embedded": embeddedNATS, "nats-server": func(t *testing.T) string { return testkit.RealNATS(t) }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, url)
			link := e.link("alice")
			ctx, cancel := context.WithTimeout(e.as(t, "alice"), 30*time.Second)
			defer cancel()
			first, drop := context.WithCancel(ctx)
			w := e.watch(t, first, "alice", "")

			sh := e.create(t, "alice", dhlNumber, "")
			at := time.Now().Add(-4 * time.Hour).UTC()
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, infoReceived, at))
			got := []*shippingv1.WatchShipmentsResponse{w.next(), w.next()}
			if ev := got[0].GetEvent(); ev.GetType() != created || ev.GetShipment().GetName() != sh.GetName() || ev.GetShipment().GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_PENDING ||
				ev.GetShipment().GetCarrier() != carrier.DHLExpress || ev.GetCheckpoint() != nil || ev.GetEventTime() == nil || got[0].GetCursor() == "" {
				t.Fatalf("first event = %v", got[0])
			}
			if ev := got[1].GetEvent(); ev.GetType() != updated || ev.GetShipment().GetStatus() != infoReceived || ev.GetCheckpoint().GetStatus() != infoReceived {
				t.Fatalf("second event = %v", got[1])
			}
			drop()

			// While the client is away: two checkpoints, then the delete.
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, inTransit, at.Add(time.Hour)))
			e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, outForDelivery, at.Add(2*time.Hour)))
			if _, err := e.shipping.DeleteShipment(e.as(t, "alice"), &shippingv1.DeleteShipmentRequest{Name: sh.GetName()}); err != nil {
				t.Fatal(err)
			}

			w2 := e.watch(t, ctx, "alice", got[1].GetCursor())
			rest := []*shippingv1.WatchShipmentsResponse{w2.next(), w2.next(), w2.next()}
			if ev := rest[0].GetEvent(); ev.GetType() != updated || ev.GetShipment().GetStatus() != inTransit || len(ev.GetShipment().GetCheckpoints()) != 2 {
				t.Errorf("first resumed event = %v", rest[0])
			}
			if ev := rest[1].GetEvent(); ev.GetType() != updated || ev.GetShipment().GetStatus() != outForDelivery || len(ev.GetShipment().GetCheckpoints()) != 3 {
				t.Errorf("second resumed event = %v", rest[1])
			}
			if ev := rest[2].GetEvent(); ev.GetType() != deleted || ev.GetShipment().GetName() != sh.GetName() || ev.GetShipment().GetTrackingNumber() != "" {
				t.Errorf("third resumed event = %v, want the deletion, naming the shipment alone", rest[2])
			}
			// Nothing else was waiting: the next event is one made now.
			next := e.create(t, "alice", upsNumber, "")
			if ev := w2.next().GetEvent(); ev.GetType() != created || ev.GetShipment().GetName() != next.GetName() {
				t.Errorf("event after the rest = %v, want the new creation", ev)
			}

			// The user revokes the consent covering shipping: the stream ends.
			e.consent.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_REVOKED)
			_, err := w2.s.Recv()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		})
	}
}
