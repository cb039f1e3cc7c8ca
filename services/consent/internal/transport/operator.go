package transport

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
)

// OperatorServer serves ConsentOperatorService: on-call's look-up of what
// a trace touched. The kit lets only operator clients in (AUDIENCE_OPERATOR);
// the answer carries the same pseudonymous refs as log lines, so on-call
// can join the two, and never a user id or resource name.
type OperatorServer struct {
	consentv1.UnimplementedConsentOperatorServiceServer
	app  *app.Service
	refs *pseudonym.Refs
}

// NewOperatorServer serves a's access log to operators, answering refs
// made by refs, which must be the key every service's log lines use.
func NewOperatorServer(a *app.Service, refs *pseudonym.Refs) *OperatorServer {
	return &OperatorServer{app: a, refs: refs}
}

// LookupAccessByTrace returns the entries of one trace, each affected
// user's log first recording the look-up.
func (s *OperatorServer) LookupAccessByTrace(ctx context.Context, req *consentv1.LookupAccessByTraceRequest) (*consentv1.LookupAccessByTraceResponse, error) {
	p, _ := auth.PrincipalFrom(ctx)
	in := app.LookupByTraceInput{
		TraceID: req.GetTraceId(), Operator: p.Client,
		Method:  consentv1.ConsentOperatorService_LookupAccessByTrace_FullMethodName,
		Purpose: commonv1.Purpose_PURPOSE_INCIDENT_RESPONSE,
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		in.CallTraceID = sc.TraceID().String()
	}
	entries, err := s.app.LookupAccessByTrace(ctx, in)
	if err != nil {
		return nil, err
	}
	resp := &consentv1.LookupAccessByTraceResponse{}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, s.operatorEntry(e))
	}
	return resp, nil
}

// operatorEntry renders e for an operator: refs and kinds only. The link
// ref is the one log lines carry for the link (its resource name), when
// the entry's resource is a link; entries do not record the link behind
// other accesses.
func (s *OperatorServer) operatorEntry(e app.AccessEntry) *consentv1.OperatorAccessEntry {
	out := &consentv1.OperatorAccessEntry{
		UserRef:      s.refs.User(e.User),
		ClientId:     e.ClientID,
		Method:       e.Method,
		ResourceKind: app.ResourceKind(e.Resource),
		Purpose:      e.Purpose,
		Outcome:      outcomeToProto(e.Outcome),
		Reason:       e.Reason,
		AccessTime:   ts(e.AccessTime),
	}
	if _, err := names.ParseLink(e.Resource); err == nil {
		out.LinkRef = s.refs.Link(e.Resource)
	}
	return out
}
