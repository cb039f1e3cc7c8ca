package transport

import (
	"context"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// ConsentServer serves bankbridge.consent.v1.ConsentService.
type ConsentServer struct {
	consentv1.UnimplementedConsentServiceServer
	app *app.Service
}

// NewConsentServer serves a on the public API.
func NewConsentServer(a *app.Service) *ConsentServer { return &ConsentServer{app: a} }

// CreateLink starts linking a bank.
func (s *ConsentServer) CreateLink(ctx context.Context, req *consentv1.CreateLinkRequest) (*consentv1.CreateLinkResponse, error) {
	user, err := parseName(names.ParseUser, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	l := req.GetLink()
	link, err := s.app.CreateLink(ctx, app.CreateLinkInput{
		User:            user,
		Client:          access.GrantFrom(ctx).Principal.Client,
		BankID:          l.GetBankId(),
		Scopes:          l.GetScopes(),
		Purposes:        l.GetPurposes(),
		ExpireTime:      timeOf(l.GetExpireTime()),
		TTL:             l.GetTtl().AsDuration(),
		LoginHint:       l.GetBankLoginHint(),
		PreferredMethod: methodFromProto(req.GetPreferredScaMethod()),
		IdempotencyKey:  req.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, err
	}
	return &consentv1.CreateLinkResponse{Link: linkToProto(link)}, nil
}

// GetLink returns one link.
func (s *ConsentServer) GetLink(ctx context.Context, req *consentv1.GetLinkRequest) (*consentv1.GetLinkResponse, error) {
	name, err := parseName(names.ParseLink, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	link, err := s.app.GetLink(ctx, name.User, name.ID)
	if err != nil {
		return nil, err
	}
	return &consentv1.GetLinkResponse{Link: linkToProto(link)}, nil
}

// ListLinks returns a page of links.
func (s *ConsentServer) ListLinks(ctx context.Context, req *consentv1.ListLinksRequest) (*consentv1.ListLinksResponse, error) {
	user, err := parseName(names.ParseUser, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	links, next, err := s.app.ListLinks(ctx, app.ListLinksInput{
		User:      user,
		State:     stateFromProto(req.GetState()),
		BankID:    req.GetBankId(),
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &consentv1.ListLinksResponse{NextPageToken: next}
	for _, l := range links {
		resp.Links = append(resp.Links, linkToProto(l))
	}
	return resp, nil
}

// VerifyLink answers or polls a link's challenge.
func (s *ConsentServer) VerifyLink(ctx context.Context, req *consentv1.VerifyLinkRequest) (*consentv1.VerifyLinkResponse, error) {
	name, err := parseName(names.ParseLink, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	link, err := s.app.VerifyLink(ctx, app.VerifyLinkInput{
		User: name.User, LinkID: name.ID, Code: req.GetCode(), IdempotencyKey: req.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, err
	}
	return &consentv1.VerifyLinkResponse{Link: linkToProto(link)}, nil
}

// RevokeLink ends a link's consent.
func (s *ConsentServer) RevokeLink(ctx context.Context, req *consentv1.RevokeLinkRequest) (*consentv1.RevokeLinkResponse, error) {
	name, err := parseName(names.ParseLink, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	link, err := s.app.RevokeLink(ctx, app.RevokeLinkInput{User: name.User, LinkID: name.ID, IdempotencyKey: req.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return &consentv1.RevokeLinkResponse{Link: linkToProto(link)}, nil
}

// ReconfirmLink extends a VALID link, or starts the bank's challenge for it.
func (s *ConsentServer) ReconfirmLink(ctx context.Context, req *consentv1.ReconfirmLinkRequest) (*consentv1.ReconfirmLinkResponse, error) {
	name, err := parseName(names.ParseLink, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	link, err := s.app.ReconfirmLink(ctx, app.ReconfirmLinkInput{User: name.User, LinkID: name.ID, IdempotencyKey: req.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return &consentv1.ReconfirmLinkResponse{Link: linkToProto(link)}, nil
}

// ListAccessLog returns a page of the user's access log.
func (s *ConsentServer) ListAccessLog(ctx context.Context, req *consentv1.ListAccessLogRequest) (*consentv1.ListAccessLogResponse, error) {
	user, err := parseName(names.ParseUser, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	entries, next, err := s.app.ListAccessLog(ctx, app.ListAccessLogInput{
		User: user,
		Filter: app.AccessFilter{
			Start:   timeOf(req.GetStartTime()),
			End:     timeOf(req.GetEndTime()),
			Outcome: outcomeFromProto(req.GetOutcome()),
		},
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &consentv1.ListAccessLogResponse{NextPageToken: next}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, entryToProto(e))
	}
	return resp, nil
}

// CreatePartnerOptIn opts the user in to a partner, through the calling
// product.
func (s *ConsentServer) CreatePartnerOptIn(ctx context.Context, req *consentv1.CreatePartnerOptInRequest) (*consentv1.CreatePartnerOptInResponse, error) {
	user, err := parseName(names.ParseUser, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	o, err := s.app.CreatePartnerOptIn(ctx, app.CreatePartnerOptInInput{
		User:    user,
		Client:  access.GrantFrom(ctx).Principal.Client,
		Partner: req.GetPartnerOptIn().GetPartner(),
		Scopes:  req.GetPartnerOptIn().GetScopes(),
	})
	if err != nil {
		return nil, err
	}
	return &consentv1.CreatePartnerOptInResponse{PartnerOptIn: optInToProto(o)}, nil
}

// ListPartnerOptIns returns a page of the user's partner opt-ins.
func (s *ConsentServer) ListPartnerOptIns(ctx context.Context, req *consentv1.ListPartnerOptInsRequest) (*consentv1.ListPartnerOptInsResponse, error) {
	user, err := parseName(names.ParseUser, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	optIns, next, err := s.app.ListPartnerOptIns(ctx, app.ListPartnerOptInsInput{
		User: user, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &consentv1.ListPartnerOptInsResponse{NextPageToken: next}
	for _, o := range optIns {
		resp.PartnerOptIns = append(resp.PartnerOptIns, optInToProto(o))
	}
	return resp, nil
}

// RevokePartnerOptIn ends a partner opt-in.
func (s *ConsentServer) RevokePartnerOptIn(ctx context.Context, req *consentv1.RevokePartnerOptInRequest) (*consentv1.RevokePartnerOptInResponse, error) {
	name, err := parseName(names.ParsePartnerOptIn, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	o, err := s.app.RevokePartnerOptIn(ctx, name.User, name.ID)
	if err != nil {
		return nil, err
	}
	return &consentv1.RevokePartnerOptInResponse{PartnerOptIn: optInToProto(o)}, nil
}
