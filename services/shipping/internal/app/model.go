package app

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// The domain: what the shipping service knows of a shipment, whatever the
// public contract or a carrier's push call its parts. Enum values are the
// contract's names without their prefix, so each side maps them by name.

// The event types the service writes to the outbox.
const (
	EventCreated = "shipping.shipment.created"
	// EventUpdated is a change the user's own action or the expiry made:
	// the carrier chosen, the shipment expired.
	EventUpdated = "shipping.shipment.updated"
	EventDeleted = "shipping.shipment.deleted"
	// EventTracked is a carrier's checkpoint, for one user's shipment with
	// its whole state: what webhooks and resumed streams carry. It is
	// written moments after EventParcelTracked, off the push's path.
	EventTracked = "shipping.shipment.tracked"
	// EventParcelTracked is a carrier's checkpoint, once for every
	// shipment of the parcel (an audience event): what live streams carry.
	EventParcelTracked = "shipping.parcel.tracked"
)

// Status is a carrier-independent status: the contract's ShipmentStatus
// without its prefix.
type Status string

// The statuses. A checkpoint never carries Pending or Expired: bankbridge
// alone decides those.
const (
	StatusPending            Status = "PENDING"
	StatusInfoReceived       Status = "INFO_RECEIVED"
	StatusInTransit          Status = "IN_TRANSIT"
	StatusOutForDelivery     Status = "OUT_FOR_DELIVERY"
	StatusAttemptFailed      Status = "ATTEMPT_FAILED"
	StatusAvailableForPickup Status = "AVAILABLE_FOR_PICKUP"
	StatusDelivered          Status = "DELIVERED"
	StatusException          Status = "EXCEPTION"
	StatusReturned           Status = "RETURNED"
	StatusExpired            Status = "EXPIRED"
)

// Final reports a status tracking ends in: delivered, returned or expired.
// The expiry sweep leaves such shipments alone; a newer checkpoint still
// moves them, as the status follows the newest checkpoint.
func (s Status) Final() bool {
	return s == StatusDelivered || s == StatusReturned || s == StatusExpired
}

// FinalStatuses are the statuses Final reports.
var FinalStatuses = []Status{StatusDelivered, StatusReturned, StatusExpired}

// Location is where a checkpoint happened; every field is optional.
type Location struct {
	City, Region, PostalCode, CountryCode string
}

// Checkpoint is one event the carrier recorded for a parcel.
type Checkpoint struct {
	Time              time.Time
	Status            Status
	Substatus         string
	CarrierStatusCode string
	CarrierMessage    string
	// Location is nil when the carrier did not say.
	Location *Location
}

// CarrierEvent is one event of a carrier's push, as the carrier sent it.
type CarrierEvent struct {
	// EventID is the carrier's unique id of the event.
	EventID string
	// TrackingNumber is the parcel's number as sent (normalised on ingest).
	TrackingNumber string
	Checkpoint     Checkpoint
	// EstimatedDelivery is zero when the carrier keeps its estimate.
	EstimatedDelivery time.Time
	SignedBy          string
}

// TrackingEvent is a carrier event as stored, once per (carrier, tracking
// number) whoever tracks the parcel.
type TrackingEvent struct {
	Carrier string
	CarrierEvent
	// ReceiveTime is when bankbridge got it.
	ReceiveTime time.Time
}

// Shipment is one parcel a user tracks.
type Shipment struct {
	User string
	// ID is the server-minted, opaque, random id in the shipment's name.
	ID string
	// TrackingNumber is normalised (carrier.Normalize).
	TrackingNumber string
	// Carrier is "" while the number fits several carriers, listed in
	// CarrierCandidates (sorted).
	Carrier           string
	CarrierDetected   bool
	CarrierCandidates []string
	// Receipt is users/{user}/receipts/{receipt}, or "".
	Receipt string
	// Partner and PartnerUserID are set when a partner registered it: its
	// client id and the partner-scoped user id it used.
	Partner       string
	PartnerUserID string
	// Client is the product the user uses bankbridge through: the events
	// (and so webhooks) go to it.
	Client string
	// TrackingState is what the carrier's checkpoints moved.
	TrackingState
	CreateTime time.Time
	UpdateTime time.Time
	// Checkpoints are the carrier's checkpoints, oldest first by time, at
	// most MaxCheckpoints; filled on reads only.
	Checkpoints []Checkpoint
}

// Name is the shipment's resource name.
func (s Shipment) Name() string { return ShipmentName(s.User, s.ID) }

// ActiveTime is when the shipment last heard from its carrier, or its
// creation when never: expiry counts from it.
func (s Shipment) ActiveTime() time.Time {
	if s.LastEventTime.IsZero() {
		return s.CreateTime
	}
	return s.LastEventTime
}

// MaxCheckpoints is how many checkpoints a parcel keeps: the newest.
const MaxCheckpoints = 500

// ShipmentName formats users/{user}/shipments/{shipment}.
func ShipmentName(user, id string) string { return names.User(user) + "/shipments/" + id }

// ParseShipmentName reads users/{user}/shipments/{shipment}.
func ParseShipmentName(name string) (user, id string, err error) {
	user, ok := names.UserOf(name)
	rest, found := strings.CutPrefix(name, names.User(user)+"/shipments/")
	if !ok || !found || rest == "" || strings.Contains(rest, "/") {
		return "", "", fmt.Errorf("%w: %q: want users/{}/shipments/{}", names.ErrMalformed, name)
	}
	return user, rest, nil
}

// Event is a shipment event for the outbox; the store renders its payload
// (the contract's ShipmentEvent).
//
// An EventParcelTracked event is for a parcel, not a user: Shipment holds
// the parcel (TrackingNumber, Carrier) and its tracking state after the
// checkpoint, Audience the names of the shipments it reaches, and User
// and Client are empty.
type Event struct {
	ID   string
	Type string
	User string
	// Client is the product the event goes to (webhooks).
	Client string
	// Shipment is the shipment's state after the change; for EventDeleted
	// only its name counts.
	Shipment Shipment
	// Checkpoint is the one that caused the change, or nil.
	Checkpoint *Checkpoint
	Time       time.Time
	// Audience are the shipments (names) an EventParcelTracked reaches.
	Audience []string
}

// ParcelTopic is what a parcel's audience events are about: their order
// and their subject's pseudonym.
func ParcelTopic(carrier, trackingNumber string) string {
	return "parcels/" + carrier + "/" + trackingNumber
}

// TrackingState is the part of a shipment a carrier's checkpoints move.
type TrackingState struct {
	Status    Status
	Substatus string
	SignedBy  string
	// EstimatedDelivery is zero while the carrier has not said.
	EstimatedDelivery time.Time
	// StatusTime is the time of the checkpoint Status comes from; zero
	// before any.
	StatusTime time.Time
	// LastEventTime is when bankbridge last received a carrier event for
	// the parcel; zero before any. Expiry counts from it (or CreateTime).
	LastEventTime time.Time
}

// ParcelState is the shipments of a parcel whose rows hold one tracking
// state, as a carrier's push sees them.
type ParcelState struct {
	State TrackingState
	// Shipments are their names, in no particular order.
	Shipments []string
}

// Filter selects a user's shipments in a list; zero fields select all.
type Filter struct {
	// Statuses selects shipments in one of them.
	Statuses []Status
}

// key is f as a page token's filter: the same set, whatever its order.
func (f Filter) key() string {
	s := make([]string, len(f.Statuses))
	for i, st := range f.Statuses {
		s[i] = string(st)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// IdempotencyKey is a caller's idempotency key and the shipment its first
// request answered with. Keys of a user's product are per client and
// user; a partner's are per partner (Subject "").
type IdempotencyKey struct {
	Client  string
	Subject string
	Key     string
	// User is whose shipment the key answered with.
	User string
	// RequestHash identifies the request: the key with another is
	// IDEMPOTENCY_KEY_REUSED.
	RequestHash string
	ShipmentID  string
	// TrackingNumber is the number as the partner sent it, for its answer.
	TrackingNumber string
	Time           time.Time
}

// PartnerSubject is one partner-scoped user id some stored shipments were
// registered under.
type PartnerSubject struct {
	User, Partner, PartnerUserID string
}
