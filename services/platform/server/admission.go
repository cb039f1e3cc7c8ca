package server

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

// Admission control bounds the work a process has in flight and refuses
// the excess at once, with UNAVAILABLE (OVERLOADED) and a retry hint,
// rather than queueing it: a queued call holds its memory and goroutine
// and usually outlives its caller's deadline, so under overload a queue
// turns every call slow, where a refusal lets the caller retry another
// replica and keeps the calls admitted fast.
//
// Two budgets of --max-inflight slots each: public, client and partner
// methods share one; internal methods (bankbridge's own services, e.g. a
// consent check every other service needs) have their own, so an outside
// surge cannot starve them. Health and reflection are never refused: a
// probe must see the process as it is, not as busy.
//
// A unary call holds its slot until it returns. A stream holds one only
// while it opens: until its request has been received and passed the
// chain (authn, validation, the consent check and the access log
// append), the costly part. An open stream then mostly waits for events;
// were it to keep a slot for its hours-long life, a few hundred watchers
// would refuse every unary call. Open streams are bounded elsewhere: per
// connection (--max-concurrent-streams) and by the stream rate-limit class.
type admission struct {
	public, internal *budget
	methods          access.Methods
	inflight         metric.Int64UpDownCounter
	refused          metric.Int64Counter
}

// budget is one pool of slots.
type budget struct {
	name  string
	max   int64
	inuse atomic.Int64
	attrs metric.MeasurementOption
}

// overloadRetry is the delay OVERLOADED's RetryInfo asks for: a call or
// two's time, enough for the slots to turn over.
const overloadRetry = time.Second

func newAdmission(max int, methods access.Methods, meter metric.Meter) (*admission, error) {
	inflight, err := meter.Int64UpDownCounter("bankbridge.server.inflight",
		metric.WithDescription("Calls in flight that hold an admission slot, and streams still opening, by budget (bankbridge.internal_budget)."))
	if err != nil {
		return nil, err
	}
	refused, err := meter.Int64Counter("bankbridge.server.overload_refusals",
		metric.WithDescription("Calls refused with OVERLOADED because their budget's slots were all taken, by budget (bankbridge.internal_budget)."))
	if err != nil {
		return nil, err
	}
	// The budget is a boolean label: telemetry lets a bankbridge.* key's
	// number or boolean leave, and vets each text one (platform/telemetry).
	mk := func(name string) *budget {
		return &budget{name: name, max: int64(max), attrs: metric.WithAttributes(attribute.Bool("bankbridge.internal_budget", name == "internal"))}
	}
	return &admission{public: mk("public"), internal: mk("internal"), methods: methods, inflight: inflight, refused: refused}, nil
}

// budgetOf is the budget method draws from; nil for health, reflection and
// anything else the contracts do not describe.
func (a *admission) budgetOf(method string) *budget {
	m, ok := a.methods[method]
	switch {
	case !ok:
		return nil
	case m.Audience == commonv1.Audience_AUDIENCE_INTERNAL:
		return a.internal
	default:
		return a.public
	}
}

// admit takes a slot of b, or refuses at once when none is free. release
// is safe to call more than once.
func (a *admission) admit(ctx context.Context, b *budget) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	if b.inuse.Add(1) > b.max {
		b.inuse.Add(-1)
		a.refused.Add(ctx, 1, b.attrs)
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_OVERLOADED,
			"the server has as many calls in flight as it takes; retry shortly, another replica may answer",
			apierr.WithRetryAfter(overloadRetry))
	}
	a.inflight.Add(ctx, 1, b.attrs)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			b.inuse.Add(-1)
			a.inflight.Add(context.WithoutCancel(ctx), -1, b.attrs)
		}
	}, nil
}

func (a *admission) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		release, err := a.admit(ctx, a.budgetOf(info.FullMethod))
		if err != nil {
			return nil, err
		}
		defer release()
		return handler(ctx, req)
	}
}

// stream admits a stream while it opens; it sits last in the chain, so the
// first RecvMsg it sees returning has been through every check above it.
func (a *admission) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		release, err := a.admit(ss.Context(), a.budgetOf(info.FullMethod))
		if err != nil {
			return err
		}
		defer release()
		return handler(srv, &openingStream{ServerStream: ss, opened: release})
	}
}

// openingStream gives the stream's admission slot back once its first
// message has been received and checked.
type openingStream struct {
	grpc.ServerStream
	opened func()
}

func (s *openingStream) RecvMsg(m any) error {
	defer s.opened()
	return s.ServerStream.RecvMsg(m)
}
