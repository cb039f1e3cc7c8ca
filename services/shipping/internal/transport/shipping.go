// Package transport serves bankbridge.shipping.v1 on top of app: the
// user's ShippingService, the partners' PartnerShippingService, and the
// carriers' pushes as the signed HTTP endpoint hands them over
// (CarrierIngester). It reads who calls from the server kit (the grant of a
// user's call, the principal of a partner's), parses names, translates
// between the contract's messages and app's domain (shipmentpb), and
// nothing more. Authentication, user and client binding, validation, the
// purpose and consent checks and the access log of a user's calls run
// before it, in the kit.
package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

// WatchTypes are the event types WatchShipments streams from a cursor:
// the user's own events.
var WatchTypes = []string{app.EventCreated, app.EventUpdated, app.EventDeleted, app.EventTracked}

// LiveWatchTypes are those it streams live, from the process's hub: a
// carrier's checkpoint comes as the parcel's one audience event, the
// moment it is stored, rather than as the user's own a moment later.
var LiveWatchTypes = []string{app.EventCreated, app.EventUpdated, app.EventDeleted, app.EventParcelTracked}

// ShippingServer serves bankbridge.shipping.v1.ShippingService.
type ShippingServer struct {
	shippingv1.UnimplementedShippingServiceServer
	app     *app.Service
	feed    stream.Feed
	parcels parcelEvents
}

// NewShippingServer serves a, its watches from feed.
func NewShippingServer(a *app.Service, feed stream.Feed) *ShippingServer {
	return &ShippingServer{app: a, feed: feed}
}

// user is the user the kit bound the call to.
func user(ctx context.Context) string { return access.GrantFrom(ctx).User }

// shipmentOf reads a shipment name of the call's user; a name the kit let
// through is the user's.
func shipmentOf(ctx context.Context, name string) (string, error) {
	u, id, err := app.ParseShipmentName(name)
	if err != nil || u != user(ctx) {
		return "", app.ShipmentNotFound()
	}
	return id, nil
}

// checkParent reads the parent the kit validated and bound to the user.
func checkParent(ctx context.Context, parent string) (string, error) {
	u := user(ctx)
	if p, err := names.ParseUser(parent); err != nil || p != u {
		return "", errors.New("parent passed validation and binding, yet names no user of the grant") // a bug: masked as INTERNAL
	}
	return u, nil
}

// hash identifies a request by the parts that make it what it is.
func hash(parts ...any) string {
	b, _ := json.Marshal(parts) // strings always marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CreateShipment starts tracking a parcel for the user, or returns the
// shipment the user tracks it with already.
func (s *ShippingServer) CreateShipment(ctx context.Context, req *shippingv1.CreateShipmentRequest) (*shippingv1.CreateShipmentResponse, error) {
	u, err := checkParent(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetShipment()
	// Output-only fields are ignored, so they are no part of the request
	// an idempotency key stands for.
	sh, err := s.app.CreateShipment(ctx, app.CreateInput{
		User: u, Client: access.GrantFrom(ctx).Principal.Client,
		TrackingNumber: in.GetTrackingNumber(), Carrier: in.GetCarrier(), Receipt: in.GetReceipt(),
		IdempotencyKey: req.GetIdempotencyKey(),
		RequestHash:    hash(req.GetParent(), in.GetTrackingNumber(), in.GetCarrier(), in.GetReceipt()),
	})
	if err != nil {
		return nil, err
	}
	return &shippingv1.CreateShipmentResponse{Shipment: shipmentpb.ShipmentProto(sh)}, nil
}

// GetShipment returns one shipment with its checkpoints.
func (s *ShippingServer) GetShipment(ctx context.Context, req *shippingv1.GetShipmentRequest) (*shippingv1.GetShipmentResponse, error) {
	id, err := shipmentOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	sh, err := s.app.GetShipment(ctx, user(ctx), id)
	if err != nil {
		return nil, err
	}
	return &shippingv1.GetShipmentResponse{Shipment: shipmentpb.ShipmentProto(sh)}, nil
}

// ListShipments returns a page of the user's shipments, newest first.
func (s *ShippingServer) ListShipments(ctx context.Context, req *shippingv1.ListShipmentsRequest) (*shippingv1.ListShipmentsResponse, error) {
	u, err := checkParent(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	var f app.Filter
	for _, st := range req.GetStatuses() {
		f.Statuses = append(f.Statuses, shipmentpb.Status(st))
	}
	shs, next, err := s.app.ListShipments(ctx, app.ListInput{User: u, Filter: f, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	resp := &shippingv1.ListShipmentsResponse{NextPageToken: next, Shipments: make([]*shippingv1.Shipment, len(shs))}
	for i, sh := range shs {
		resp.Shipments[i] = shipmentpb.ShipmentProto(sh)
	}
	return resp, nil
}

// DeleteShipment stops tracking a shipment and deletes it.
func (s *ShippingServer) DeleteShipment(ctx context.Context, req *shippingv1.DeleteShipmentRequest) (*shippingv1.DeleteShipmentResponse, error) {
	id, err := shipmentOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteShipment(ctx, user(ctx), id); err != nil {
		return nil, err
	}
	return &shippingv1.DeleteShipmentResponse{}, nil
}

// SelectCarrier chooses the carrier of a shipment among its candidates.
func (s *ShippingServer) SelectCarrier(ctx context.Context, req *shippingv1.SelectCarrierRequest) (*shippingv1.SelectCarrierResponse, error) {
	id, err := shipmentOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	sh, err := s.app.SelectCarrier(ctx, user(ctx), id, req.GetCarrier())
	if err != nil {
		return nil, err
	}
	return &shippingv1.SelectCarrierResponse{Shipment: shipmentpb.ShipmentProto(sh)}, nil
}

// WatchShipments streams the user's shipment events from the bus.
func (s *ShippingServer) WatchShipments(req *shippingv1.WatchShipmentsRequest, srv grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	return stream.Serve(srv, s.feed, stream.Options[shippingv1.WatchShipmentsResponse]{
		Types:     WatchTypes,
		LiveTypes: LiveWatchTypes,
		Cursor:    req.GetResumeCursor(),
		ToMessage: s.watchResponse,
	})
}

// watchResponse is an event of the bus as the stream sends it. A parcel's
// audience event reaches every stream of its recipients at once: it is
// read once for all of them, and each stream's message is a copy naming
// its own shipment.
func (s *ShippingServer) watchResponse(d events.Delivered) (*shippingv1.WatchShipmentsResponse, error) {
	if d.Type != app.EventParcelTracked {
		ev, err := readEvent(d)
		if err != nil {
			return nil, err
		}
		return &shippingv1.WatchShipmentsResponse{Event: ev, Cursor: d.Cursor}, nil
	}
	shared, err := s.parcels.read(d)
	if err != nil {
		return nil, err
	}
	ev := proto.CloneOf(shared)
	ev.Shipment.Name = d.Resource
	return &shippingv1.WatchShipmentsResponse{Event: ev, Cursor: d.Cursor}, nil
}

// readEvent reads an event's payload.
func readEvent(d events.Delivered) (*shippingv1.ShipmentEvent, error) {
	ev := new(shippingv1.ShipmentEvent)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(d.Data, ev); err != nil {
		return nil, fmt.Errorf("read %s event: %w", d.Type, err)
	}
	if ev.GetShipment() == nil {
		return nil, fmt.Errorf("read %s event: no shipment", d.Type)
	}
	return ev, nil
}

// parcelEvents reads each parcel event once for every stream it reaches:
// the few latest, by id. Those streams read it within moments of each
// other, so a handful suffice.
type parcelEvents struct {
	mu   sync.Mutex
	byID map[string]*parcelEvent
	ids  []string
}

// parcelEvent is one parcel event, read once.
type parcelEvent struct {
	once sync.Once
	ev   *shippingv1.ShipmentEvent
	err  error
}

// keptParcelEvents is how many parcel events parcelEvents keeps read.
const keptParcelEvents = 64

func (p *parcelEvents) read(d events.Delivered) (*shippingv1.ShipmentEvent, error) {
	p.mu.Lock()
	if p.byID == nil {
		p.byID = map[string]*parcelEvent{}
	}
	pe, ok := p.byID[d.ID]
	if !ok {
		pe = new(parcelEvent)
		p.byID[d.ID] = pe
		p.ids = append(p.ids, d.ID)
		if len(p.ids) > keptParcelEvents {
			delete(p.byID, p.ids[0])
			p.ids = p.ids[1:]
		}
	}
	p.mu.Unlock()
	pe.once.Do(func() { pe.ev, pe.err = readEvent(d) })
	return pe.ev, pe.err
}

// PartnerServer serves bankbridge.shipping.v1.PartnerShippingService.
type PartnerServer struct {
	shippingv1.UnimplementedPartnerShippingServiceServer
	app *app.Service
}

// NewPartnerServer serves a to partners.
func NewPartnerServer(a *app.Service) *PartnerServer { return &PartnerServer{app: a} }

// RegisterShipment starts tracking a parcel for the user behind the
// partner-scoped id. The partner is the client of its token, which the kit
// bound parent to.
func (s *PartnerServer) RegisterShipment(ctx context.Context, req *shippingv1.RegisterShipmentRequest) (*shippingv1.RegisterShipmentResponse, error) {
	p, ok := auth.PrincipalFrom(ctx)
	parent, err := names.ParseClient(req.GetParent())
	if !ok || err != nil || parent != p.Client || !p.ClientCredentials() {
		// The kit refuses these first; never serve one it let through.
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, "parent must name the partner of the token")
	}
	res, err := s.app.RegisterShipment(ctx, app.RegisterInput{
		Method:         shippingv1.PartnerShippingService_RegisterShipment_FullMethodName,
		Partner:        p.Client,
		PartnerUserID:  req.GetPartnerUserId(),
		TrackingNumber: req.GetTrackingNumber(),
		Carrier:        req.GetCarrier(),
		IdempotencyKey: req.GetIdempotencyKey(),
		RequestHash:    hash(req.GetParent(), req.GetPartnerUserId(), req.GetTrackingNumber(), req.GetCarrier()),
	})
	if err != nil {
		return nil, err
	}
	return &shippingv1.RegisterShipmentResponse{
		TrackingNumber: res.TrackingNumber, Carrier: res.Carrier, CarrierCandidates: res.Candidates, CreateTime: timestamppb.New(res.CreateTime),
	}, nil
}
