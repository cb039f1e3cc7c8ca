package stream_test

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// The platform's own implementations are what a service hands the helper.
var (
	_ stream.Bus     = (*events.Bus)(nil)
	_ stream.Consent = (*consentcheck.Checker)(nil)
)

// The event types of shipment changes, as the shipping service writes them.
const (
	typeCreated = "shipping.shipment.created"
	typeUpdated = "shipping.shipment.updated"
	typeDeleted = "shipping.shipment.deleted"
	// typeTracked is a carrier's checkpoint written for one user (for
	// webhooks and resumed streams); typeParcelTracked is the same
	// checkpoint written once for the parcel, an audience event of every
	// shipment that tracks it.
	typeTracked       = "shipping.shipment.tracked"
	typeParcelTracked = "shipping.parcel.tracked"
)

// watchServer is a ShippingService whose WatchShipments is the helper, as
// the shipping service's transport serves it; the other methods are not
// needed here.
type watchServer struct {
	shippingv1.UnimplementedShippingServiceServer
	feed stream.Feed
	// types, when set, replace the method's types (shipmentTypes); live
	// are its LiveTypes.
	types, live []string
}

func (s *watchServer) WatchShipments(req *shippingv1.WatchShipmentsRequest, srv grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	types := s.types
	if types == nil {
		types = []string{typeCreated, typeUpdated, typeDeleted}
	}
	return stream.Serve(srv, s.feed, stream.Options[shippingv1.WatchShipmentsResponse]{
		Types:     types,
		LiveTypes: s.live,
		Cursor:    req.GetResumeCursor(),
		ToMessage: toWatchResponse,
	})
}

// toWatchResponse reads the event's thin payload, a ShipmentEvent, and
// sends it with the event's cursor. A parcel's event is shared by the
// shipments tracking it: each stream's copy names its own, the event's
// Resource, as the shipping service's does.
func toWatchResponse(d events.Delivered) (*shippingv1.WatchShipmentsResponse, error) {
	ev := &shippingv1.ShipmentEvent{}
	if err := protojson.Unmarshal(d.Data, ev); err != nil {
		return nil, err
	}
	if d.Type == typeParcelTracked {
		if ev.Shipment == nil {
			ev.Shipment = &shippingv1.Shipment{}
		}
		ev.Shipment.Name = d.Resource
	}
	return &shippingv1.WatchShipmentsResponse{Event: ev, Cursor: d.Cursor}, nil
}

// fakeConsent is the consent service as the kit and the streams reach it:
// every user in allowed has a VALID link covering every scope; revoke
// takes it away and tells the user's Changes subscribers, as the consent
// checker does when the change stream reports it. It is also the access
// log.
type fakeConsent struct {
	mu        sync.Mutex
	allowed   map[string]bool
	subs      map[string][]chan struct{}
	decisions int
	// denyAfter, when > 0, denies every decision after that many, without
	// telling anybody: a change the stream could only catch by asking.
	denyAfter int
	entries   []access.Entry
}

func newFakeConsent(users ...string) *fakeConsent {
	f := &fakeConsent{allowed: map[string]bool{}, subs: map[string][]chan struct{}{}}
	for _, u := range users {
		f.allowed[u] = true
	}
	return f
}

func (f *fakeConsent) Decide(_ context.Context, user string, _ access.Need, _ commonv1.Purpose) (access.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions++
	if !f.allowed[user] || (f.denyAfter > 0 && f.decisions > f.denyAfter) {
		return access.Decision{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the user revoked the consent")
	}
	return access.Decision{Link: names.Link{User: user, ID: "l1"}.String(), BankConsentID: "bc-" + user}, nil
}

func (f *fakeConsent) ReportBankRevocation(context.Context, string) error { return nil }

func (f *fakeConsent) Record(_ context.Context, e access.Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	return nil
}

func (f *fakeConsent) Changes(user string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[user] = append(f.subs[user], ch)
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, c := range f.subs[user] {
			if c == ch {
				f.subs[user] = append(f.subs[user][:i], f.subs[user][i+1:]...)
				break
			}
		}
	}
}

// revoke takes user's consent away and notifies the user's subscribers.
func (f *fakeConsent) revoke(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allowed[user] = false
	f.notifyLocked(user)
}

// touch notifies user's subscribers of a change that leaves the consent
// in force (e.g. another link verified).
func (f *fakeConsent) touch(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notifyLocked(user)
}

func (f *fakeConsent) notifyLocked(user string) {
	for _, ch := range f.subs[user] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *fakeConsent) subscribers(user string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[user])
}

func (f *fakeConsent) decisionCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.decisions
}

func (f *fakeConsent) setDenyAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denyAfter = n
}
