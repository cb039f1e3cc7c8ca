package transport

import (
	"context"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

// cardOf reads a card's name: the bank's card id at the grant's bank.
// Validation has checked its shape, and the kit that it names the caller
// and a configured bank, whose consent it checked; a name that still does
// not parse, or names another bank than the grant's, names nothing.
func cardOf(ctx context.Context, name string) (app.Grant, string, error) {
	g := grant(ctx)
	r, err := names.ParseBankResource(name, names.Cards)
	if err != nil || r.User != g.User || r.BankID != g.BankID {
		return app.Grant{}, "", apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such card")
	}
	return g, r.ID, nil
}

// ListCards returns one page of the user's cards at a bank.
func (s *Server) ListCards(ctx context.Context, req *supportv1.ListCardsRequest) (*supportv1.ListCardsResponse, error) {
	cards, next, err := s.app.ListCards(ctx, grant(ctx), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &supportv1.ListCardsResponse{NextPageToken: next}
	for _, c := range cards {
		out.Cards = append(out.Cards, supportpb.CardProto(c))
	}
	return out, nil
}

// BlockCard blocks one of the user's cards.
func (s *Server) BlockCard(ctx context.Context, req *supportv1.BlockCardRequest) (*supportv1.BlockCardResponse, error) {
	g, id, err := cardOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.app.BlockCard(ctx, g, app.BlockCardInput{
		CardID: id, Reason: supportpb.AppCardBlockReason(req.GetReason()), IdempotencyKey: req.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, err
	}
	return &supportv1.BlockCardResponse{Card: supportpb.CardProto(c)}, nil
}

// StartCardUnblock starts lifting a card's block.
func (s *Server) StartCardUnblock(ctx context.Context, req *supportv1.StartCardUnblockRequest) (*supportv1.StartCardUnblockResponse, error) {
	g, id, err := cardOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.app.StartCardUnblock(ctx, g, app.UnblockInput{CardID: id, IdempotencyKey: req.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return &supportv1.StartCardUnblockResponse{Card: supportpb.CardProto(c)}, nil
}

// VerifyCardUnblock completes an unblock with the code the bank sent.
func (s *Server) VerifyCardUnblock(ctx context.Context, req *supportv1.VerifyCardUnblockRequest) (*supportv1.VerifyCardUnblockResponse, error) {
	g, id, err := cardOf(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.app.VerifyCardUnblock(ctx, g, app.UnblockInput{CardID: id, Code: req.GetCode(), IdempotencyKey: req.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return &supportv1.VerifyCardUnblockResponse{Card: supportpb.CardProto(c)}, nil
}
