// Package transport serves bankbridge.webhooks.v1.WebhooksService: proto
// in, domain out. The server kit has already bound every request to the
// client of its token (the name or parent it checked), so a handler takes
// the client from the validated name and never reads the token.
package transport

import (
	"context"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

// Server implements webhooksv1.WebhooksServiceServer.
type Server struct {
	webhooksv1.UnimplementedWebhooksServiceServer
	svc *app.Service
}

// New returns the handlers of svc.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// malformed answers a name the contract's pattern let through but names
// cannot read: a bug between the two, reported as the caller's field.
func malformed(field string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": malformed resource name",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: "malformed resource name", Reason: "name.malformed"}))
}

func endpointName(field, name string) (names.Endpoint, error) {
	e, err := names.ParseEndpoint(name)
	if err != nil {
		return names.Endpoint{}, malformed(field)
	}
	return e, nil
}

// CreateEndpoint registers an endpoint and returns its secret once.
func (s *Server) CreateEndpoint(ctx context.Context, req *webhooksv1.CreateEndpointRequest) (*webhooksv1.CreateEndpointResponse, error) {
	client, err := names.ParseClient(req.GetParent())
	if err != nil {
		return nil, malformed("parent")
	}
	in := req.GetEndpoint()
	e, secret, err := s.svc.CreateEndpoint(ctx, client,
		app.Endpoint{URL: in.GetUrl(), EventTypes: in.GetEventTypes(), Description: in.GetDescription()}, req.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	return &webhooksv1.CreateEndpointResponse{Endpoint: endpointProto(e), Secret: secret}, nil
}

// GetEndpoint returns one endpoint.
func (s *Server) GetEndpoint(ctx context.Context, req *webhooksv1.GetEndpointRequest) (*webhooksv1.GetEndpointResponse, error) {
	name, err := endpointName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	e, err := s.svc.GetEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	return &webhooksv1.GetEndpointResponse{Endpoint: endpointProto(e)}, nil
}

// ListEndpoints returns one page of the client's endpoints.
func (s *Server) ListEndpoints(ctx context.Context, req *webhooksv1.ListEndpointsRequest) (*webhooksv1.ListEndpointsResponse, error) {
	client, err := names.ParseClient(req.GetParent())
	if err != nil {
		return nil, malformed("parent")
	}
	eps, next, err := s.svc.ListEndpoints(ctx, client, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &webhooksv1.ListEndpointsResponse{NextPageToken: next}
	for _, e := range eps {
		out.Endpoints = append(out.Endpoints, endpointProto(e))
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint.
func (s *Server) DeleteEndpoint(ctx context.Context, req *webhooksv1.DeleteEndpointRequest) (*webhooksv1.DeleteEndpointResponse, error) {
	name, err := endpointName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeleteEndpoint(ctx, name); err != nil {
		return nil, err
	}
	return &webhooksv1.DeleteEndpointResponse{}, nil
}

// RotateEndpointSecret gives an endpoint a new secret.
func (s *Server) RotateEndpointSecret(ctx context.Context, req *webhooksv1.RotateEndpointSecretRequest) (*webhooksv1.RotateEndpointSecretResponse, error) {
	name, err := endpointName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	var overlap *time.Duration
	if req.GetOverlap() != nil {
		d := req.GetOverlap().AsDuration()
		overlap = &d
	}
	e, secret, err := s.svc.RotateSecret(ctx, name, overlap, req.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	return &webhooksv1.RotateEndpointSecretResponse{Endpoint: endpointProto(e), Secret: secret}, nil
}

// ReplayEvents queues an endpoint's events again.
func (s *Server) ReplayEvents(ctx context.Context, req *webhooksv1.ReplayEventsRequest) (*webhooksv1.ReplayEventsResponse, error) {
	name, err := endpointName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	var start time.Time
	if req.GetStartTime() != nil {
		start = req.GetStartTime().AsTime()
	}
	n, next, err := s.svc.Replay(ctx, name, req.GetCursor(), start, req.GetIdempotencyKey())
	if err != nil {
		return nil, err
	}
	return &webhooksv1.ReplayEventsResponse{EventCount: int32(n), NextCursor: next}, nil
}

// ListDeliveries returns one page of an endpoint's delivery log.
func (s *Server) ListDeliveries(ctx context.Context, req *webhooksv1.ListDeliveriesRequest) (*webhooksv1.ListDeliveriesResponse, error) {
	name, err := endpointName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	ds, next, err := s.svc.ListDeliveries(ctx, name, deliveryState(req.GetState()), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &webhooksv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, deliveryProto(d))
	}
	return out, nil
}
