package shipmentpb_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

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
		TrackingState: app.TrackingState{Status: app.StatusInTransit}, CreateTime: t0, UpdateTime: t0}
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

// TestEventDataOfACheckpoint: a parcel's audience event, which every user
// tracking the parcel receives, carries the parcel's tracking state and
// the TrackingMask, and nothing of any one user's shipment (no name, no
// receipt, no partner, no checkpoints); a user's own tracked event
// carries the shipment's whole state.
func TestEventDataOfACheckpoint(t *testing.T) {
	t.Parallel()
	// The shipment is a whole one on purpose: whatever the caller fills,
	// the audience event must not tell one recipient of another's.
	sh := app.Shipment{User: "alice", ID: "s1", TrackingNumber: "1Z999AA10123456784", Carrier: "ups", CarrierDetected: true,
		Receipt: "users/alice/receipts/r1", Partner: "shop", PartnerUserID: "puid-alice", Client: "chat-app",
		TrackingState: app.TrackingState{Status: app.StatusOutForDelivery, Substatus: "out_for_delivery.on_vehicle", SignedBy: "A. Example",
			EstimatedDelivery: t0.Add(8 * time.Hour), StatusTime: t0.Add(-time.Minute), LastEventTime: t0},
		CreateTime: t0.Add(-48 * time.Hour), UpdateTime: t0,
		Checkpoints: []app.Checkpoint{{Time: t0.Add(-2 * time.Hour), Status: app.StatusInTransit}, {Time: t0.Add(-time.Minute), Status: app.StatusOutForDelivery}}}
	cp := app.Checkpoint{Time: t0.Add(-time.Minute), Status: app.StatusOutForDelivery, Substatus: "out_for_delivery.on_vehicle",
		CarrierMessage: "Out for delivery", Location: &app.Location{City: "Leipzig", CountryCode: "DE"}}
	read := func(t *testing.T, e app.Event) (*shippingv1.ShipmentEvent, map[string]any) {
		t.Helper()
		b, err := shipmentpb.EventData(e)
		if err != nil {
			t.Fatal(err)
		}
		ev := new(shippingv1.ShipmentEvent)
		if err := protojson.Unmarshal(b, ev); err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Shipment map[string]any `json:"shipment"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		return ev, raw.Shipment
	}

	t.Run("parcel tracked: the mask's fields, no name", func(t *testing.T) {
		ev, raw := read(t, app.Event{ID: "p1", Type: app.EventParcelTracked, Shipment: sh, Checkpoint: &cp, Time: t0,
			Audience: []string{"users/alice/shipments/s1", "users/bob/shipments/s9"}})
		want := &shippingv1.Shipment{TrackingNumber: sh.TrackingNumber, Carrier: "ups",
			Status: shippingv1.ShipmentStatus_SHIPMENT_STATUS_OUT_FOR_DELIVERY, Substatus: sh.Substatus, SignedBy: sh.SignedBy,
			EstimatedDeliveryTime: timestamppb.New(sh.EstimatedDelivery), UpdateTime: timestamppb.New(t0)}
		if !proto.Equal(ev.GetShipment(), want) {
			t.Errorf("shipment = %v\nwant only the parcel's tracking state %v", ev.GetShipment(), want)
		}
		if _, ok := raw["name"]; ok {
			t.Errorf("the payload names a shipment: %v", raw)
		}
		if got := ev.GetUpdateMask().GetPaths(); !slices.Equal(got, shipmentpb.TrackingMask) {
			t.Errorf("update_mask = %v, want %v", got, shipmentpb.TrackingMask)
		}
		// Every path is one of Shipment's fields: a client applies it.
		if _, err := fieldmaskpb.New(&shippingv1.Shipment{}, ev.GetUpdateMask().GetPaths()...); err != nil {
			t.Errorf("update_mask: %v", err)
		}
		if ev.GetType() != shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED || !proto.Equal(ev.GetCheckpoint(), shipmentpb.CheckpointProto(cp)) ||
			!ev.GetEventTime().AsTime().Equal(t0) {
			t.Errorf("event = %v, want an update caused by the checkpoint, at t0", ev)
		}
	})

	t.Run("shipment tracked: the whole state, no mask", func(t *testing.T) {
		ev, _ := read(t, app.Event{ID: "t1", Type: app.EventTracked, User: "alice", Client: "chat-app", Shipment: sh, Checkpoint: &cp, Time: t0})
		if !proto.Equal(ev.GetShipment(), shipmentpb.ShipmentProto(sh)) {
			t.Errorf("shipment = %v\nwant the whole state %v", ev.GetShipment(), shipmentpb.ShipmentProto(sh))
		}
		if got := ev.GetShipment(); got.GetName() != "users/alice/shipments/s1" || len(got.GetCheckpoints()) != 2 || got.GetReceipt() == "" || got.GetCreateTime() == nil {
			t.Errorf("shipment = %v, want its name, checkpoints, receipt and create time", got)
		}
		if ev.GetUpdateMask() != nil || ev.GetType() != shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED || !proto.Equal(ev.GetCheckpoint(), shipmentpb.CheckpointProto(cp)) {
			t.Errorf("event = %v, want an update with no mask, caused by the checkpoint", ev)
		}
	})
}
