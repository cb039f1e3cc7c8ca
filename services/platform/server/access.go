package server

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// The access check is the last link of the chain, for public methods only.
// The caller is authenticated and bound to the user its request names, and
// the request is valid. It then:
//
//  1. reads the declared purpose (metadata bankbridge-purpose): ADVERTISING
//     and MARKETING are refused, then a purpose the client is not
//     configured for, then one the method's access rule does not list;
//  2. unless the rule says consent_not_required, finds the bank the rule's
//     bank_field names and asks the consent checker for each scope;
//  3. hands the handler an immutable access.Grant;
//  4. appends the outcome to the user's access log before anything leaves:
//     when an allowed call's entry cannot be appended, the caller gets
//     UNAVAILABLE (AUDIT_UNAVAILABLE) instead of the data;
//  5. when the handler reports that the bank no longer honours the consent
//     (CONSENT_REVOKED_BY_BANK), tells the consent service, which revokes
//     the link.
//
// Every decided call is recorded, allowed or refused. A call without a
// valid token, naming another user, or failing validation never reaches
// here, so nobody can write into a user's log without being that user.
type accessCheck struct {
	methods  access.Methods
	clients  access.Clients
	consent  access.ConsentChecker
	banks    access.Banks
	recorder access.Recorder
	pseudo   access.Pseudonyms
	refs     *pseudonym.Refs // log references; nil makes none
	issuer   string
	log      *slog.Logger
	now      func() time.Time
}

// decide runs steps 1 and 2. recordable is false when the call never
// became a decided access (no valid purpose was declared).
func (c *accessCheck) decide(ctx context.Context, method string, req proto.Message) (g access.Grant, recordable bool, err error) {
	rule := c.methods[method].Rule
	p, _ := auth.PrincipalFrom(ctx)
	res, _ := access.ResourceOf(req)
	g = access.Grant{Method: method, Principal: p, User: p.User, Resource: res, Scopes: rule.Scopes}
	if g.Purpose, err = access.PurposeFromContext(ctx); err != nil {
		return g, false, err
	}
	if err := c.clients.CheckPurpose(p.Client, g.Purpose); err != nil {
		return g, true, err
	}
	if !slices.Contains(rule.Purposes, g.Purpose) {
		return g, true, apierr.New(commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED,
			"this method does not serve "+g.Purpose.String(), apierr.WithMetadata("purpose", g.Purpose.String()))
	}
	if rule.ConsentNotRequired {
		return g, true, nil
	}
	if g.BankID, err = c.bankOf(rule, req); err != nil {
		return g, true, err
	}
	for _, scope := range rule.Scopes {
		d, err := c.consent.Decide(ctx, g.User, access.Need{Scope: scope, BankID: g.BankID}, g.Purpose)
		if err != nil {
			return g, true, err
		}
		g.Link, g.BankConsentID = d.Link, d.BankConsentID
	}
	return g, true, nil
}

// bankOf reads the bank the rule's bank_field names: a bank id, or a
// resource name whose id carries the bank. A bank that is not configured is
// BANK_NOT_FOUND when named by id, and the resource NOT_FOUND when named by
// a resource (an account at a bank we do not know does not exist).
func (c *accessCheck) bankOf(rule access.Rule, req proto.Message) (string, error) {
	v := rule.BankValue(req.ProtoReflect())
	if v == "" {
		return "", nil
	}
	if rule.NamesBankID() {
		if c.banks != nil && !c.banks.HasBank(v) {
			return "", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank "+v+" is configured",
				apierr.WithMetadata("bank_id", v))
		}
		return v, nil
	}
	bank, ok := names.BankOf(v)
	if !ok || (c.banks != nil && !c.banks.HasBank(bank)) {
		return "", apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no such "+names.KindOf(v))
	}
	return bank, nil
}

// record appends the outcome of the call to the user's access log.
func (c *accessCheck) record(ctx context.Context, g access.Grant, callErr error) error {
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		traceID = sc.TraceID().String()
	}
	e := access.NewEntry(g, c.pseudo.SubjectID(c.issuer, g.Principal.User), traceID, c.now(), callErr)
	if callErr != nil {
		// The call fails whatever happens here; its caller may be gone, the
		// refusal must still be written.
		ctx = context.WithoutCancel(ctx)
	}
	return c.recorder.Record(ctx, e)
}

// auditUnavailable is what a caller gets when its access could not be
// recorded; the cause is logged under the incident id.
func (c *accessCheck) auditUnavailable(ctx context.Context, method string, err error) error {
	id := apierr.IncidentID()
	c.log.ErrorContext(ctx, "access not recorded; refusing to serve the data",
		slog.String(telemetry.AttrIncidentID, id), slog.String("rpc.method", method), slog.String("error", err.Error()))
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
		"the access could not be recorded in the user's access log, so no data was served; retry shortly",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(time.Second))
}

// denied records a refused call; the refusal stands even when the record
// cannot be written, and on-call sees the loss.
func (c *accessCheck) denied(ctx context.Context, g access.Grant, method string, callErr error) {
	if rerr := c.record(ctx, g, callErr); rerr != nil {
		c.log.ErrorContext(ctx, "refused access not recorded",
			slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("rpc.method", method), slog.String("error", rerr.Error()))
	}
}

// bankRevoked tells the consent service when the bank no longer honours
// the consent that allowed the call.
func (c *accessCheck) bankRevoked(ctx context.Context, g access.Grant, err error) {
	if g.Link == "" || !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK) {
		return
	}
	if rerr := c.consent.ReportBankRevocation(context.WithoutCancel(ctx), g.Link); rerr != nil {
		c.log.ErrorContext(ctx, "bank revocation not reported to the consent service",
			slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", rerr.Error()))
	}
}

// withGrant gives the handler the grant, and its log lines (a failed bank
// call's among them) the pseudonymous references of the user and link.
func (c *accessCheck) withGrant(ctx context.Context, g access.Grant) context.Context {
	return telemetry.WithLogRefs(access.WithGrant(ctx, g), c.refs.User(g.User), c.refs.Link(g.Link))
}

func (c *accessCheck) public(method string) bool {
	return c.methods[method].Audience == commonv1.Audience_AUDIENCE_PUBLIC
}

func (c *accessCheck) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		msg, ok := req.(proto.Message)
		if !ok || !c.public(info.FullMethod) {
			return handler(ctx, req)
		}
		g, recordable, err := c.decide(ctx, info.FullMethod, msg)
		if err != nil {
			if recordable {
				c.denied(ctx, g, info.FullMethod, err)
			}
			return nil, err
		}
		resp, err := handler(c.withGrant(ctx, g), req)
		if err != nil {
			c.bankRevoked(ctx, g, err)
			c.denied(ctx, g, info.FullMethod, err)
			return nil, err
		}
		if rerr := c.record(ctx, g, nil); rerr != nil {
			return nil, c.auditUnavailable(ctx, info.FullMethod, rerr)
		}
		return resp, nil
	}
}

// grantStream runs the access check on a server stream's one request,
// records the access before the handler can send anything, and gives the
// handler the grant.
type grantStream struct {
	grpc.ServerStream
	c       *accessCheck
	method  string
	ctx     context.Context
	checked bool
	grant   access.Grant
}

func (s *grantStream) Context() context.Context { return s.ctx }

func (s *grantStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(proto.Message)
	if s.checked || !ok {
		return nil
	}
	s.checked = true
	g, recordable, err := s.c.decide(s.ctx, s.method, msg)
	if err != nil {
		if recordable {
			s.c.denied(s.ctx, g, s.method, err)
		}
		return err
	}
	if rerr := s.c.record(s.ctx, g, nil); rerr != nil {
		return s.c.auditUnavailable(s.ctx, s.method, rerr)
	}
	s.grant = g
	s.ctx = s.c.withGrant(s.ctx, g)
	return nil
}

// consentEnded reports an error that ends an open stream because the
// consent no longer covers it.
func consentEnded(err error) bool {
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
		commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED:
		return true
	}
	return false
}

func (c *accessCheck) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !c.public(info.FullMethod) {
			return handler(srv, ss)
		}
		gs := &grantStream{ServerStream: ss, c: c, method: info.FullMethod, ctx: ss.Context()}
		err := handler(srv, gs)
		if err != nil && gs.grant.User != "" {
			c.bankRevoked(gs.ctx, gs.grant, err)
			if consentEnded(err) {
				// The opening was recorded as allowed; the user's log also
				// says when and why the consent stopped the stream.
				c.denied(gs.ctx, gs.grant, info.FullMethod, err)
			}
		}
		return err
	}
}
