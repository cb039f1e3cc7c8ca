package transport

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// CheckServer serves bankbridge.consent.v1.ConsentCheckService, for
// bankbridge's own services.
type CheckServer struct {
	consentv1.UnimplementedConsentCheckServiceServer
	app      *app.Service
	log      *slog.Logger
	shutdown <-chan struct{}
}

// NewCheckServer serves a on the internal API. shutdown closes when the
// service starts draining: change streams then end cleanly.
func NewCheckServer(a *app.Service, log *slog.Logger, shutdown <-chan struct{}) *CheckServer {
	return &CheckServer{app: a, log: log, shutdown: shutdown}
}

// CheckConsent decides on one data call.
func (s *CheckServer) CheckConsent(ctx context.Context, req *consentv1.CheckConsentRequest) (*consentv1.CheckConsentResponse, error) {
	user, err := parseName(names.ParseUser, "user", req.GetUser())
	if err != nil {
		return nil, err
	}
	d, err := s.app.CheckConsent(ctx, app.ConsentQuery{
		User: user, BankID: req.GetBankId(), Scope: req.GetScope(), Purpose: req.GetPurpose(),
	})
	if err != nil {
		return nil, err
	}
	return &consentv1.CheckConsentResponse{
		Allowed:       d.Allowed,
		Link:          d.Link,
		ExpireTime:    ts(d.ExpireTime),
		BankConsentId: d.BankConsentID,
		DenialReason:  d.DenialReason,
		ValidFor:      validFor(d),
	}, nil
}

// validFor is an allowed decision's remaining validity; nil when denied.
func validFor(d app.Decision) *durationpb.Duration {
	if !d.Allowed {
		return nil
	}
	return durationpb.New(d.ValidFor)
}

// RecordAccess appends one access to the user's log and answers once it
// is committed. A refused entry is INVALID_ARGUMENT; any other failure is
// INTERNAL with an incident id (the cause is logged under it, never sent),
// which the caller turns into AUDIT_UNAVAILABLE.
func (s *CheckServer) RecordAccess(ctx context.Context, req *consentv1.RecordAccessRequest) (*consentv1.RecordAccessResponse, error) {
	user, err := parseName(names.ParseUser, "user", req.GetUser())
	if err != nil {
		return nil, err
	}
	e := req.GetEntry()
	appended, err := s.app.RecordAccess(ctx, app.AccessEntry{
		User:       user,
		AccessTime: timeOf(e.GetAccessTime()),
		ClientID:   e.GetClientId(),
		SubjectID:  e.GetSubjectId(),
		Method:     e.GetMethod(),
		Resource:   e.GetResource(),
		Purpose:    e.GetPurpose(),
		Scope:      e.GetScope(),
		Outcome:    outcomeFromProto(e.GetOutcome()),
		Reason:     e.GetReason(),
		TraceID:    e.GetTraceId(),
	})
	switch {
	case err == nil:
		return &consentv1.RecordAccessResponse{Entry: entryToProto(appended)}, nil
	case apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
		return nil, err
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err() // the caller left; the entry was not appended
	}
	id, masked := apierr.Internal()
	s.log.ErrorContext(ctx, "access not recorded: the access log could not be written",
		slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return nil, masked
}

// ReportBankRevocation marks a link REVOKED because its bank no longer
// knows or honours its consent; watchers hear of it once committed.
func (s *CheckServer) ReportBankRevocation(ctx context.Context, req *consentv1.ReportBankRevocationRequest) (*consentv1.ReportBankRevocationResponse, error) {
	name, err := parseName(names.ParseLink, "link", req.GetLink())
	if err != nil {
		return nil, err
	}
	link, err := s.app.ReportBankRevocation(ctx, name.User, name.ID)
	if err != nil {
		return nil, err
	}
	return &consentv1.ReportBankRevocationResponse{Link: linkToProto(link)}, nil
}

// ResolvePartnerUser turns a partner's partner-scoped user id into the
// user, when an ACTIVE opt-in to that partner covers scope. The opt-in is
// named only when the id is the partner's own; the user and the product
// client only when allowed.
func (s *CheckServer) ResolvePartnerUser(ctx context.Context, req *consentv1.ResolvePartnerUserRequest) (*consentv1.ResolvePartnerUserResponse, error) {
	d, err := s.app.ResolvePartnerUser(ctx, app.PartnerUserQuery{
		Partner: req.GetPartner(), PartnerUserID: req.GetPartnerUserId(), Scope: req.GetScope(),
	})
	if err != nil {
		return nil, err
	}
	resp := &consentv1.ResolvePartnerUserResponse{Allowed: d.Allowed, DenialReason: d.DenialReason}
	if d.OptIn.ID != "" {
		resp.PartnerOptIn = d.OptIn.Name()
	}
	if d.Allowed {
		resp.User, resp.Client = names.User(d.OptIn.User), d.OptIn.Client
	}
	return resp, nil
}

// ListCoveringLinks lists the user's VALID links that cover a scope and
// purpose, one per bank, newest first.
func (s *CheckServer) ListCoveringLinks(ctx context.Context, req *consentv1.ListCoveringLinksRequest) (*consentv1.ListCoveringLinksResponse, error) {
	user, err := parseName(names.ParseUser, "user", req.GetUser())
	if err != nil {
		return nil, err
	}
	links, err := s.app.ListCoveringLinks(ctx, app.CoveringLinksQuery{User: user, Scope: req.GetScope(), Purpose: req.GetPurpose()})
	if err != nil {
		return nil, err
	}
	resp := &consentv1.ListCoveringLinksResponse{}
	for _, l := range links {
		resp.Links = append(resp.Links, coveringLinkToProto(l))
	}
	return resp, nil
}

// ResolveBankConsent turns a bank's consent id, as the bank's adapter
// names it in an event, into the user and link it belongs to, when the
// link is VALID and covers scope. A denial is an answer, naming neither.
func (s *CheckServer) ResolveBankConsent(ctx context.Context, req *consentv1.ResolveBankConsentRequest) (*consentv1.ResolveBankConsentResponse, error) {
	d, err := s.app.ResolveBankConsent(ctx, app.BankConsentQuery{
		BankID: req.GetBankId(), BankConsentID: req.GetBankConsentId(), Scope: req.GetScope(),
	})
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return &consentv1.ResolveBankConsentResponse{DenialReason: d.DenialReason}, nil
	}
	return &consentv1.ResolveBankConsentResponse{
		Allowed: true,
		User:    names.User(d.Link.User),
		Link:    coveringLinkToProto(d.Link),
	}, nil
}

// WatchConsentChanges streams every committed change of a link's or a
// partner opt-in's state.
// Its first message is empty (no user, no link): it tells the watcher that
// the stream is live, so it may start caching.
func (s *CheckServer) WatchConsentChanges(_ *consentv1.WatchConsentChangesRequest, stream grpc.ServerStreamingServer[consentv1.WatchConsentChangesResponse]) error {
	ctx := stream.Context()
	changes := s.app.WatchChanges(ctx)
	var first []app.Change
	select {
	case c, ok := <-changes:
		if !ok {
			return s.feedBroken(ctx)
		}
		first = append(first, c)
	default:
	}
	if err := stream.Send(&consentv1.WatchConsentChangesResponse{}); err != nil {
		return err
	}
	for _, c := range first {
		if err := stream.Send(changeToProto(c)); err != nil {
			return err
		}
	}
	for {
		select {
		case c, ok := <-changes:
			if !ok {
				return s.feedBroken(ctx)
			}
			if err := stream.Send(changeToProto(c)); err != nil {
				return err
			}
		case <-s.shutdown:
			return nil
		}
	}
}

// feedBroken ends a change stream whose feed closed: cleanly when the
// service drains or the watcher left, otherwise with INTERNAL so that the
// watcher drops its cache and reconnects.
func (s *CheckServer) feedBroken(ctx context.Context) error {
	select {
	case <-s.shutdown:
		return nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	id, err := apierr.Internal()
	s.log.WarnContext(ctx, "consent change stream ended: the watcher fell behind or the change feed is down",
		slog.String(telemetry.AttrIncidentID, id))
	return err
}

func changeToProto(c app.Change) *consentv1.WatchConsentChangesResponse {
	if c.OptInID != "" {
		return &consentv1.WatchConsentChangesResponse{
			User:              names.User(c.User),
			PartnerOptIn:      names.PartnerOptIn{User: c.User, ID: c.OptInID}.String(),
			Partner:           c.Partner,
			PartnerOptInState: optInStateToProto(c.OptInState),
		}
	}
	return &consentv1.WatchConsentChangesResponse{
		User:  names.User(c.User),
		Link:  names.Link{User: c.User, ID: c.LinkID}.String(),
		State: stateToProto(c.State),
	}
}
