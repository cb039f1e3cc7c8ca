package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

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
// The number of slots adapts (AIMD, as TCP's congestion window): it starts
// at --max-inflight, its ceiling, and a call that comes back congested —
// DEADLINE_EXCEEDED, or CONSENT_UNAVAILABLE / AUDIT_UNAVAILABLE after
// waiting at least congestedAfter — cuts it by a quarter, down to an
// eighth of the ceiling; calls that succeed while the slots are at least
// half used grow it back by one slot per limit's worth of calls. The kit's
// own dependencies (the consent service, the access log) time out when
// the process admits more than they answer in time: at a static 256,
// balance let in 5x load whose calls each waited the 800 ms
// --consent-timeout and then failed, and the goodput fell to half of 1x's
// (docs/reliability.md, load-5x). A smaller limit refuses that excess at
// once instead, and the calls admitted stay fast. Only calls that started
// after the last cut may cut again, so one burst of timeouts (every call
// of one generation) is one cut, not a collapse to the floor. A failure
// that comes fast (a dependency down, not slow) is not congestion: fewer
// slots would not make it answer. No library of the module proxy does
// this (Netflix's concurrency-limits has no Go port there).
//
// Two budgets: public, client and partner methods share one of
// --max-inflight slots, the adaptive one; internal methods (bankbridge's
// own services, e.g. a consent check every other service needs) have
// their own, so an outside surge cannot starve them, of internalFactor
// times as many slots and fixed. An internal call comes from a call its
// caller has already admitted, and partly served: refusing it throws
// that work away (consent refused balance's access-log append after it had read
// the bank), so it is bounded first by its callers' own admission, and
// this budget is only the backstop. At one --max-inflight, consent
// refused the checks and appends of balance and shipping, whose public
// budgets together exceed it, and most of 2x load failed
// AUDIT_UNAVAILABLE. Health and reflection are never refused: a
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
	streams          map[string]bool // methods that stream: admitted by stream()
	inflight         metric.Int64UpDownCounter
	refused          metric.Int64Counter
}

// budget is one pool of slots, its limit adapting between floor and max
// when adaptive.
type budget struct {
	name       string
	adaptive   bool
	max, floor int64
	inuse      atomic.Int64
	limit      atomic.Int64 // slots now: window rounded down
	attrs      metric.MeasurementOption

	mu      sync.Mutex
	window  float64   // the limit with its fraction, guarded by mu
	lastCut time.Time // guarded by mu
}

// Adaptive limit tuning (see the type comment of admission).
const (
	// congestedAfter is how long a call must have waited before its
	// CONSENT_UNAVAILABLE or AUDIT_UNAVAILABLE says the dependency is
	// slow rather than down; a healthy call takes tens of milliseconds,
	// --consent-timeout is 800 ms.
	congestedAfter = 250 * time.Millisecond
	// cutFactor multiplies the limit on congestion.
	cutFactor = 0.75
	// floorDivisor: the limit never falls below max/floorDivisor (and 1).
	floorDivisor = 8
	// internalFactor: the internal budget's slots per --max-inflight.
	internalFactor = 4
)

func newBudget(name string, slots int64, adaptive bool, attrs metric.MeasurementOption) *budget {
	b := &budget{name: name, adaptive: adaptive, max: slots, floor: max(1, slots/floorDivisor), attrs: attrs, window: float64(slots)}
	b.limit.Store(slots)
	return b
}

// congested reports whether a call that took d and ended with err says the
// process admits more than its dependencies answer in time.
func congested(err error, d time.Duration) bool {
	if err == nil {
		return false
	}
	if status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE:
		return d >= congestedAfter
	}
	return false
}

// observe adapts b's limit to one call admitted at start that ended with
// err.
func (b *budget) observe(start time.Time, err error) {
	if !b.adaptive {
		return
	}
	now := time.Now()
	if congested(err, now.Sub(start)) {
		b.mu.Lock()
		if start.After(b.lastCut) {
			b.window = max(float64(b.floor), b.window*cutFactor)
			b.lastCut = now
			b.limit.Store(int64(b.window))
		}
		b.mu.Unlock()
		return
	}
	if err != nil || b.inuse.Load()*2 < b.limit.Load() || b.limit.Load() >= b.max {
		// A failure says nothing about capacity; an idle limit is not
		// proven, and growing it would only undo the next cut's use.
		return
	}
	b.mu.Lock()
	b.window = min(float64(b.max), b.window+1/b.window)
	b.limit.Store(int64(b.window))
	b.mu.Unlock()
}

// overloadRetry is the delay OVERLOADED's RetryInfo asks for: a call or
// two's time, enough for the slots to turn over.
const overloadRetry = time.Second

// errOverloaded is every refusal's error, built once: under 5x load it is
// most of the answers, and building its details (two Any messages) for
// each was CPU taken from the calls admitted. A status error is read,
// never changed, by the code that sends it.
var errOverloaded = apierr.New(commonv1.ErrorReason_ERROR_REASON_OVERLOADED,
	"the server has as many calls in flight as it takes; retry shortly, another replica may answer",
	apierr.WithRetryAfter(overloadRetry))

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
	mk := func(internal bool, slots int64) *budget {
		name := "public"
		if internal {
			name = "internal"
		}
		return newBudget(name, slots, !internal, metric.WithAttributes(attribute.Bool("bankbridge.internal_budget", internal)))
	}
	return &admission{public: mk(false, int64(max)), internal: mk(true, internalFactor*int64(max)),
		methods: methods, streams: streamingMethods(methods), inflight: inflight, refused: refused}, nil
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
	if b.inuse.Add(1) > b.limit.Load() {
		b.inuse.Add(-1)
		a.refused.Add(ctx, 1, b.attrs)
		return nil, errOverloaded
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

// A unary call is admitted before its stream exists: in the transport's
// tap (grpc.InTapHandle), which runs as the request's headers arrive,
// before the stats handler, the span, the stream's goroutine and the
// interceptors. A refusal there costs an atomic add and one HEADERS frame
// (grpc-go's early abort still carries the status details, so the caller
// gets OVERLOADED and its RetryInfo); under 5x load refusals are most of
// the calls, and each one refused later, as a traced call through the
// chain, took CPU from the calls admitted (docs/reliability.md, load-5x).
// A refused call has no span and no x-trace-id: it read nothing, and the
// refusal counter says how many there were.
//
// The slot travels in the call's context. The unary interceptor gives it
// back when the handler returns and feeds the call's outcome to the
// adaptive limit; the stats handler gives it back at the RPC's end too,
// for a call that never reached the interceptor (a request that could
// not be decoded). Giving it back is idempotent.
type admittedKey struct{}

type admitted struct {
	budget  *budget
	release func()
}

// tap admits a unary call of the contracts' methods, or refuses it at
// once; streams are admitted by the stream interceptor.
func (a *admission) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if a.streams[info.FullMethodName] {
		return ctx, nil
	}
	b := a.budgetOf(info.FullMethodName)
	if b == nil {
		return ctx, nil
	}
	release, err := a.admit(ctx, b)
	if err != nil {
		return nil, err
	}
	return context.WithValue(ctx, admittedKey{}, &admitted{budget: b, release: release}), nil
}

func (a *admission) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		adm, _ := ctx.Value(admittedKey{}).(*admitted)
		if adm == nil {
			return handler(ctx, req)
		}
		defer adm.release()
		start := time.Now()
		resp, err := handler(ctx, req)
		adm.budget.observe(start, err)
		return resp, err
	}
}

// admissionStats gives a unary call's slot back when the call ends, whether
// or not it reached the interceptors.
type admissionStats struct{}

func (admissionStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (admissionStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); !ok {
		return
	}
	if adm, _ := ctx.Value(admittedKey{}).(*admitted); adm != nil {
		adm.release()
	}
}
func (admissionStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (admissionStats) HandleConn(context.Context, stats.ConnStats) {}

// streamingMethods are the methods of methods that stream, from their
// descriptors.
func streamingMethods(methods access.Methods) map[string]bool {
	out := map[string]bool{}
	for full := range methods {
		// "/pkg.Service/Method" -> "pkg.Service.Method"
		name := protoreflect.FullName(strings.Replace(strings.TrimPrefix(full, "/"), "/", ".", 1))
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			continue
		}
		if md, ok := d.(protoreflect.MethodDescriptor); ok && (md.IsStreamingClient() || md.IsStreamingServer()) {
			out[full] = true
		}
	}
	return out
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
