package transport

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

// alertOf reads an alert's name; one that does not parse names nothing.
func alertOf(name string) (app.BankKey, error) {
	r, err := names.ParseBankResource(name, names.Alerts)
	if err != nil {
		return app.BankKey{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such alert")
	}
	return app.BankKey{User: r.User, BankID: r.BankID, ID: r.ID}, nil
}

// ListAlerts returns one page of the user's fraud alerts.
func (s *Server) ListAlerts(ctx context.Context, req *supportv1.ListAlertsRequest) (*supportv1.ListAlertsResponse, error) {
	as, next, err := s.app.ListAlerts(ctx, grant(ctx), supportpb.AppAlertState(req.GetState()), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &supportv1.ListAlertsResponse{NextPageToken: next}
	for _, a := range as {
		out.Alerts = append(out.Alerts, supportpb.AlertProto(a))
	}
	return out, nil
}

// GetAlert returns one fraud alert.
func (s *Server) GetAlert(ctx context.Context, req *supportv1.GetAlertRequest) (*supportv1.GetAlertResponse, error) {
	k, err := alertOf(req.GetName())
	if err != nil {
		return nil, err
	}
	a, err := s.app.GetAlert(ctx, grant(ctx), k)
	if err != nil {
		return nil, err
	}
	return &supportv1.GetAlertResponse{Alert: supportpb.AlertProto(a)}, nil
}

// AcknowledgeAlert records the user's answer to an alert.
func (s *Server) AcknowledgeAlert(ctx context.Context, req *supportv1.AcknowledgeAlertRequest) (*supportv1.AcknowledgeAlertResponse, error) {
	k, err := alertOf(req.GetName())
	if err != nil {
		return nil, err
	}
	a, offer, err := s.app.AcknowledgeAlert(ctx, grant(ctx), k, supportpb.AppAlertResponse(req.GetResponse()))
	if err != nil {
		return nil, err
	}
	return &supportv1.AcknowledgeAlertResponse{Alert: supportpb.AlertProto(a), CardBlockOffer: offer}, nil
}

// WatchAlerts streams the user's alert events from the bus: each alert
// raised, and each answer given.
func (s *Server) WatchAlerts(req *supportv1.WatchAlertsRequest, srv grpc.ServerStreamingServer[supportv1.WatchAlertsResponse]) error {
	return stream.Serve(srv, s.feed, stream.Options[supportv1.WatchAlertsResponse]{
		Types:     app.AlertTypes(),
		Cursor:    req.GetResumeCursor(),
		ToMessage: watchAlertsResponse,
	})
}

// watchAlertsResponse is an alert event as WatchAlerts sends it.
func watchAlertsResponse(d events.Delivered) (*supportv1.WatchAlertsResponse, error) {
	resp, err := supportpb.AlertEvent(d.Data)
	if err != nil {
		return nil, fmt.Errorf("read %s event: %w", d.Type, err)
	}
	resp.Cursor = d.Cursor
	return resp, nil
}
