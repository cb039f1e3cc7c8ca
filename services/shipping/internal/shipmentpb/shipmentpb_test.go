package shipmentpb_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// TestStatusesMapByName: every contract status has its domain name, and
// back.
func TestStatusesMapByName(t *testing.T) {
	t.Parallel()
	for v, name := range shippingv1.ShipmentStatus_name {
		s := shippingv1.ShipmentStatus(v)
		if got := shipmentpb.StatusProto(shipmentpb.Status(s)); got != s && s != shippingv1.ShipmentStatus_SHIPMENT_STATUS_UNSPECIFIED {
			t.Errorf("%s round-trips to %v", name, got)
		}
	}
	if shipmentpb.Status(shippingv1.ShipmentStatus_SHIPMENT_STATUS_EXPIRED) != app.StatusExpired {
		t.Error("EXPIRED does not map to app.StatusExpired")
	}
}

// TestEventData: an event carries the shipment's whole state; when a
// parcel's checkpoints outgrow what the bus carries, the oldest are left
// out and the rest kept.
func TestEventData(t *testing.T) {
	t.Parallel()
	sh := app.Shipment{User: "alice", ID: "s1", TrackingNumber: "1Z999AA10123456784", Carrier: "ups", Client: "chat-app",
		Status: app.StatusInTransit, CreateTime: t0, UpdateTime: t0}
	for i := range app.MaxCheckpoints {
		sh.Checkpoints = append(sh.Checkpoints, app.Checkpoint{Time: t0.Add(time.Duration(i) * time.Minute), Status: app.StatusInTransit,
			CarrierMessage: strings.Repeat("m", 1024), Location: &app.Location{City: "Leipzig"}})
	}
	cp := sh.Checkpoints[len(sh.Checkpoints)-1]
	b, err := shipmentpb.EventData(app.Event{Type: app.EventUpdated, Shipment: sh, Checkpoint: &cp, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > events.MaxDataBytes {
		t.Fatalf("payload is %d bytes, more than the bus carries", len(b))
	}
	var ev shippingv1.ShipmentEvent
	if err := protojson.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	cps := ev.GetShipment().GetCheckpoints()
	if len(cps) == 0 || len(cps) >= app.MaxCheckpoints || !cps[len(cps)-1].GetTime().AsTime().Equal(cp.Time) ||
		ev.GetShipment().GetName() != "users/alice/shipments/s1" || ev.GetCheckpoint() == nil {
		t.Errorf("event keeps %d checkpoints, the last at %v; want the newest that fit", len(cps), cps[len(cps)-1].GetTime().AsTime())
	}

	sh.Checkpoints = sh.Checkpoints[:3]
	b, _ = shipmentpb.EventData(app.Event{Type: app.EventUpdated, Shipment: sh, Time: t0})
	_ = protojson.Unmarshal(b, &ev)
	if len(ev.GetShipment().GetCheckpoints()) != 3 {
		t.Errorf("a small event keeps %d of 3 checkpoints", len(ev.GetShipment().GetCheckpoints()))
	}
}
