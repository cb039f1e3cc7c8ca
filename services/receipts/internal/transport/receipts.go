// Package transport serves bankbridge.receipts.v1 on top of app: the
// user's ReceiptsService and the partners' PartnerReceiptsService. It reads
// who calls from the server kit (the grant of a user's call, the principal
// of a partner's), parses names, translates between the contract's
// messages and app's domain (receiptpb), and nothing more.
// Authentication, user and client binding, validation, the purpose and
// consent checks and the access log of reads run before it, in the kit.
package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/receiptpb"
)

// WatchTypes are the event types WatchReceipts streams.
var WatchTypes = []string{app.EventCreated, app.EventMatched}

// ReceiptsServer serves bankbridge.receipts.v1.ReceiptsService.
type ReceiptsServer struct {
	receiptsv1.UnimplementedReceiptsServiceServer
	app  *app.Service
	feed stream.Feed
}

// NewReceiptsServer serves a, its watches from feed.
func NewReceiptsServer(a *app.Service, feed stream.Feed) *ReceiptsServer {
	return &ReceiptsServer{app: a, feed: feed}
}

// user is the user the kit bound the call to.
func user(ctx context.Context) string { return access.GrantFrom(ctx).User }

// receiptOf reads a receipt name of the call's user; a name the kit let
// through is the user's.
func receiptOf(ctx context.Context, name string) (string, error) {
	u, id, err := app.ParseReceiptName(name)
	if err != nil || u != user(ctx) {
		return "", app.ReceiptNotFound()
	}
	return id, nil
}

// ListReceipts returns a page of the user's receipts, newest first.
func (s *ReceiptsServer) ListReceipts(ctx context.Context, req *receiptsv1.ListReceiptsRequest) (*receiptsv1.ListReceiptsResponse, error) {
	u := user(ctx)
	if parent, err := names.ParseUser(req.GetParent()); err != nil || parent != u {
		return nil, errors.New("parent passed validation and binding, yet names no user of the grant") // a bug: masked as INTERNAL
	}
	f := app.Filter{Transaction: req.GetTransaction(), Start: timeOf(req.GetStartTime()), End: timeOf(req.GetEndTime())}
	if req.GetMerchantName() != "" {
		f.MerchantKey = app.MerchantKey(req.GetMerchantName())
	}
	switch req.GetMatchFilter() {
	case receiptsv1.MatchFilter_MATCH_FILTER_MATCHED:
		f.Match = app.MatchMatched
	case receiptsv1.MatchFilter_MATCH_FILTER_UNMATCHED:
		f.Match = app.MatchUnmatched
	}
	rs, next, err := s.app.ListReceipts(ctx, app.ListInput{User: u, Filter: f, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	resp := &receiptsv1.ListReceiptsResponse{NextPageToken: next, Receipts: make([]*receiptsv1.Receipt, len(rs))}
	for i, r := range rs {
		resp.Receipts[i] = receiptpb.ReceiptProto(r)
	}
	return resp, nil
}

// GetReceipt returns one version of a receipt.
func (s *ReceiptsServer) GetReceipt(ctx context.Context, req *receiptsv1.GetReceiptRequest) (*receiptsv1.GetReceiptResponse, error) {
	id, err := receiptOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	r, err := s.app.GetReceipt(ctx, user(ctx), id)
	if err != nil {
		return nil, err
	}
	return &receiptsv1.GetReceiptResponse{Receipt: receiptpb.ReceiptProto(r)}, nil
}

// DeleteReceipt deletes a receipt with every version of it.
func (s *ReceiptsServer) DeleteReceipt(ctx context.Context, req *receiptsv1.DeleteReceiptRequest) (*receiptsv1.DeleteReceiptResponse, error) {
	id, err := receiptOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.app.DeleteReceipt(ctx, user(ctx), id); err != nil {
		return nil, err
	}
	return &receiptsv1.DeleteReceiptResponse{}, nil
}

// WatchReceipts streams the user's receipt events from the bus.
func (s *ReceiptsServer) WatchReceipts(req *receiptsv1.WatchReceiptsRequest, srv grpc.ServerStreamingServer[receiptsv1.WatchReceiptsResponse]) error {
	return stream.Serve(srv, s.feed, stream.Options[receiptsv1.WatchReceiptsResponse]{
		Types:     WatchTypes,
		Cursor:    req.GetResumeCursor(),
		ToMessage: watchResponse,
	})
}

// watchResponse is an event of the bus as the stream sends it.
func watchResponse(d events.Delivered) (*receiptsv1.WatchReceiptsResponse, error) {
	var ev receiptsv1.ReceiptEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(d.Data, &ev); err != nil {
		return nil, fmt.Errorf("read %s event: %w", d.Type, err)
	}
	return &receiptsv1.WatchReceiptsResponse{Event: &ev, Cursor: d.Cursor}, nil
}

// PartnerServer serves bankbridge.receipts.v1.PartnerReceiptsService.
type PartnerServer struct {
	receiptsv1.UnimplementedPartnerReceiptsServiceServer
	app *app.Service
}

// NewPartnerServer serves a to partners.
func NewPartnerServer(a *app.Service) *PartnerServer { return &PartnerServer{app: a} }

// IngestReceipt stores a partner's receipt for the user behind its
// partner-scoped id. The partner is the client of its token, which the kit
// bound parent to.
func (s *PartnerServer) IngestReceipt(ctx context.Context, req *receiptsv1.IngestReceiptRequest) (*receiptsv1.IngestReceiptResponse, error) {
	p, ok := auth.PrincipalFrom(ctx)
	parent, err := names.ParseClient(req.GetParent())
	if !ok || err != nil || parent != p.Client || !p.ClientCredentials() {
		// The kit refuses these first; never serve one it let through.
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, "parent must name the partner of the token")
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("hash the request: %w", err)
	}
	sum := sha256.Sum256(b)
	res, err := s.app.Ingest(ctx, app.IngestInput{
		Method:          receiptsv1.PartnerReceiptsService_IngestReceipt_FullMethodName,
		Partner:         p.Client,
		PartnerUserID:   req.GetPartnerUserId(),
		ReceiptID:       req.GetReceiptId(),
		AmendsReceiptID: req.GetAmendsReceiptId(),
		IdempotencyKey:  req.GetIdempotencyKey(),
		RequestHash:     hex.EncodeToString(sum[:]),
		Content:         receiptpb.Content(req.GetReceipt()),
	})
	if err != nil {
		return nil, err
	}
	return &receiptsv1.IngestReceiptResponse{ReceiptId: res.ReceiptID, Version: int32(res.Version), CreateTime: timestamppb.New(res.CreateTime)}, nil
}

// timeOf is the time of an optional timestamp: zero when unset.
func timeOf(t *timestamppb.Timestamp) (out time.Time) {
	if t != nil {
		out = t.AsTime()
	}
	return out
}
