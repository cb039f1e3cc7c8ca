// Package shipmentpb is the one translation between the shipping domain
// (app) and the contract's messages (bankbridge.shipping.v1): transport
// speaks it on the wire, and the store writes the events' payloads with
// it. Enum values map by name: the domain's are the contract's without
// their prefix.
package shipmentpb

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
)

const statusPrefix = "SHIPMENT_STATUS_"

// Status reads a contract status; "" for UNSPECIFIED.
func Status(s shippingv1.ShipmentStatus) app.Status {
	if s == shippingv1.ShipmentStatus_SHIPMENT_STATUS_UNSPECIFIED {
		return ""
	}
	return app.Status(strings.TrimPrefix(s.String(), statusPrefix))
}

// StatusProto is s as the contract's status.
func StatusProto(s app.Status) shippingv1.ShipmentStatus {
	return shippingv1.ShipmentStatus(shippingv1.ShipmentStatus_value[statusPrefix+string(s)])
}

// Checkpoint reads a contract checkpoint.
func Checkpoint(c *shippingv1.Checkpoint) app.Checkpoint {
	out := app.Checkpoint{
		Status: Status(c.GetStatus()), Substatus: c.GetSubstatus(),
		CarrierStatusCode: c.GetCarrierStatusCode(), CarrierMessage: c.GetCarrierMessage(),
	}
	if c.GetTime() != nil {
		out.Time = c.GetTime().AsTime()
	}
	if l := c.GetLocation(); l != nil {
		out.Location = &app.Location{City: l.GetCity(), Region: l.GetRegion(), PostalCode: l.GetPostalCode(), CountryCode: l.GetCountryCode()}
	}
	return out
}

// CheckpointProto is c as the contract's checkpoint.
func CheckpointProto(c app.Checkpoint) *shippingv1.Checkpoint {
	out := &shippingv1.Checkpoint{
		Time: ts(c.Time), Status: StatusProto(c.Status), Substatus: c.Substatus,
		CarrierStatusCode: c.CarrierStatusCode, CarrierMessage: c.CarrierMessage,
	}
	if l := c.Location; l != nil {
		out.Location = &shippingv1.Location{City: l.City, Region: l.Region, PostalCode: l.PostalCode, CountryCode: l.CountryCode}
	}
	return out
}

// CarrierEvents reads a carrier's push.
func CarrierEvents(p *shippingv1.CarrierPush) []app.CarrierEvent {
	out := make([]app.CarrierEvent, 0, len(p.GetEvents()))
	for _, e := range p.GetEvents() {
		ce := app.CarrierEvent{
			EventID: e.GetEventId(), TrackingNumber: e.GetTrackingNumber(),
			Checkpoint: Checkpoint(e.GetCheckpoint()), SignedBy: e.GetSignedBy(),
		}
		if e.GetEstimatedDeliveryTime() != nil {
			ce.EstimatedDelivery = e.GetEstimatedDeliveryTime().AsTime()
		}
		out = append(out, ce)
	}
	return out
}

// ShipmentProto is sh as the contract returns it, output-only fields set.
func ShipmentProto(sh app.Shipment) *shippingv1.Shipment {
	out := &shippingv1.Shipment{
		Name:                  sh.Name(),
		TrackingNumber:        sh.TrackingNumber,
		Carrier:               sh.Carrier,
		CarrierDetected:       sh.CarrierDetected,
		Status:                StatusProto(sh.Status),
		EstimatedDeliveryTime: ts(sh.EstimatedDelivery),
		Receipt:               sh.Receipt,
		CreateTime:            ts(sh.CreateTime),
		UpdateTime:            ts(sh.UpdateTime),
		CarrierCandidates:     sh.CarrierCandidates,
		Substatus:             sh.Substatus,
		SignedBy:              sh.SignedBy,
		Partner:               sh.Partner,
	}
	if len(sh.Checkpoints) > 0 {
		out.Checkpoints = make([]*shippingv1.Checkpoint, len(sh.Checkpoints))
		for i, c := range sh.Checkpoints {
			out.Checkpoints[i] = CheckpointProto(c)
		}
	}
	return out
}

var eventTypes = map[string]shippingv1.ShipmentEventType{
	app.EventCreated: shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_CREATED,
	app.EventUpdated: shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
	app.EventDeleted: shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_DELETED,
	app.EventTracked: shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
	// The parcel's event is an update of each shipment it reaches.
	app.EventParcelTracked: shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
}

// TrackingMask is the update_mask of a parcel's audience event: the
// fields its shipment holds, the same for every user tracking the parcel
// (name is each recipient's own, set when the stream sends it).
var TrackingMask = []string{"name", "tracking_number", "carrier", "status", "substatus",
	"estimated_delivery_time", "signed_by", "update_time"}

// EventData is the payload of e: the contract's ShipmentEvent, in
// protojson, with the shipment's whole state (only its name for a
// deletion; for a parcel's audience event, the TrackingMask fields but
// name, which each recipient's stream sets). A parcel's checkpoints can outgrow what one event may carry
// on the bus (events.MaxDataBytes): then the oldest are left out, the
// newest and the shipment's every other field always kept.
func EventData(e app.Event) ([]byte, error) {
	typ, ok := eventTypes[e.Type]
	if !ok {
		return nil, fmt.Errorf("encode event: unknown type %q", e.Type)
	}
	ev := &shippingv1.ShipmentEvent{Type: typ, EventTime: ts(e.Time)}
	switch {
	case typ == shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_DELETED:
		ev.Shipment = &shippingv1.Shipment{Name: e.Shipment.Name()}
	case e.Type == app.EventParcelTracked:
		sh := e.Shipment
		ev.Shipment = &shippingv1.Shipment{
			TrackingNumber: sh.TrackingNumber, Carrier: sh.Carrier, Status: StatusProto(sh.Status), Substatus: sh.Substatus,
			EstimatedDeliveryTime: ts(sh.EstimatedDelivery), SignedBy: sh.SignedBy, UpdateTime: ts(sh.UpdateTime),
		}
		ev.UpdateMask = &fieldmaskpb.FieldMask{Paths: TrackingMask}
	default:
		ev.Shipment = ShipmentProto(e.Shipment)
	}
	if e.Checkpoint != nil {
		ev.Checkpoint = CheckpointProto(*e.Checkpoint)
	}
	for {
		b, err := protojson.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		cps := ev.GetShipment().GetCheckpoints()
		if len(b) <= events.MaxDataBytes || len(cps) == 0 {
			return b, nil
		}
		// Drop the oldest, in proportion to the excess and at least one.
		drop := max(1, len(cps)*(len(b)-events.MaxDataBytes)/len(b)+1)
		ev.Shipment.Checkpoints = cps[min(drop, len(cps)):]
	}
}

// ts is an optional timestamp: unset for the zero time.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
