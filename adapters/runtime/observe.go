package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/internal/protocol"
)

// Per-bank call metrics, by bank_id, method (the adapter RPC's short
// name) and outcome ("ok", or the ErrorReason name without its prefix).
// The label keys are short and plain, as the dashboards query them; their
// values are configured ids and enum names, never a user's data.
const (
	callsCounter     = "bankbridge.adapter.calls"
	durationHistName = "bankbridge.adapter.duration"
	labelBankID      = "bank_id"
	labelMethod      = "method"
	labelOutcome     = "outcome"
	outcomeOK        = "ok"
)

// durationBuckets are the latency histogram's bounds in seconds: from a
// cached in-process answer to a bank's whole timeout.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// recentWindow is how far back /banks' error rate looks, in
// recentBuckets slices so that old calls leave it gradually.
const (
	recentWindow  = 5 * time.Minute
	recentBuckets = 10
)

// callMetrics are the instruments every bank's client records to.
type callMetrics struct {
	calls    metric.Int64Counter
	duration metric.Float64Histogram
}

func newCallMetrics(mp metric.MeterProvider) (callMetrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	calls, err := m.Int64Counter(callsCounter, metric.WithUnit("{call}"),
		metric.WithDescription("Calls to each bank's adapter (unary, and streams as they open), by bank_id, method and outcome"))
	if err != nil {
		return callMetrics{}, fmt.Errorf("calls counter: %w", err)
	}
	duration, err := m.Float64Histogram(durationHistName, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to each bank's adapter, retries and refusals included, by bank_id, method and outcome"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return callMetrics{}, fmt.Errorf("duration histogram: %w", err)
	}
	return callMetrics{calls: calls, duration: duration}, nil
}

// recentBucket counts the calls of one slice of the recent window.
type recentBucket struct {
	slice         int64 // which slice of time it counts: unix time / slice length
	calls, errors int64
}

// bankStats is what /banks shows of one bank beyond its breaker.
type bankStats struct {
	mu              sync.Mutex
	buckets         [recentBuckets]recentBucket
	lastSuccess     time.Time
	lastError       time.Time
	lastErrorReason string
}

func (s *bankStats) record(now time.Time, err error) {
	slice := now.UnixNano() / int64(recentWindow/recentBuckets)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[slice%recentBuckets]
	if b.slice != slice {
		*b = recentBucket{slice: slice}
	}
	b.calls++
	switch {
	case err == nil:
		s.lastSuccess = now
	case protocol.Failed(err):
		b.errors++
		s.lastError, s.lastErrorReason = now, protocol.Outcome(err)
	}
}

// recent returns the calls and failures of the recent window.
func (s *bankStats) recent(now time.Time) (calls, errors int64) {
	oldest := now.UnixNano()/int64(recentWindow/recentBuckets) - recentBuckets + 1
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		if b.slice >= oldest {
			calls += b.calls
			errors += b.errors
		}
	}
	return calls, errors
}

// observeUnary is the outermost layer of a bank's unary calls: it sees
// each call as its caller does, refusals by the breaker, the bulkhead and
// the rate limit included, counts it, and logs a failure at WARN.
func (bc *bankClient) observeUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	bc.observe(ctx, method, start, err)
	return err
}

// observeStream counts a stream as it opens; what it carries afterwards
// is the stream's caller's to judge.
func (bc *bankClient) observeStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	cs, err := streamer(ctx, desc, cc, method, opts...)
	bc.observe(ctx, method, start, err)
	return cs, err
}

func (bc *bankClient) observe(ctx context.Context, method string, start time.Time, err error) {
	took := time.Since(start)
	rpc := method[strings.LastIndex(method, "/")+1:]
	outcome := protocol.Outcome(err)
	attrs := metric.WithAttributes(attribute.String(labelBankID, bc.bank.ID),
		attribute.String(labelMethod, rpc), attribute.String(labelOutcome, outcome))
	bc.metrics.calls.Add(ctx, 1, attrs)
	bc.metrics.duration.Record(ctx, took.Seconds(), attrs)
	bc.stats.record(start.Add(took), err)
	if err == nil || !protocol.Failed(err) {
		return
	}
	// The context's trace id and pseudonymous user and link references
	// are added by the service's log handler; never the bank's words.
	bc.log.LogAttrs(ctx, slog.LevelWarn, "bank call failed",
		slog.String(labelBankID, bc.bank.ID),
		slog.String(labelMethod, rpc),
		slog.String("reason", outcome),
		slog.String("adapter_status", protocol.CodeName(status.Code(err))),
		slog.String("breaker_state", breakerStateName(bc.breaker.State())),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000))
}

// Breaker states as /banks and the logs name them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

func breakerStateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

// BankHealth is what on-call sees of one bank on /banks.
type BankHealth struct {
	// BankID is the bank's id from banks.yaml.
	BankID string `json:"bank_id"`
	// Breaker is the circuit breaker's state: closed, half-open or open.
	Breaker string `json:"breaker"`
	// BreakerValue is that state as the gauge reports it: 0, 1, 2.
	BreakerValue int64 `json:"breaker_value"`
	// RecentCalls and RecentErrors count the calls of the last
	// RecentWindow, and those the bank (or its breaker, bulkhead or rate
	// limit) did not serve; ErrorRate is their ratio, 0 without calls.
	RecentCalls  int64   `json:"recent_calls"`
	RecentErrors int64   `json:"recent_errors"`
	ErrorRate    float64 `json:"error_rate"`
	RecentWindow string  `json:"recent_window"`
	// LastSuccess and LastError are the times of the last call served and
	// the last one failed; nil before the first.
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   *time.Time `json:"last_error,omitempty"`
	// LastErrorReason is the last failure's reason name (BANK_UNAVAILABLE,
	// ...), never a bank's text.
	LastErrorReason string `json:"last_error_reason,omitempty"`
}

// Health returns the health of every configured bank, in configuration
// order.
func (r *Registry) Health() []BankHealth {
	now := time.Now()
	out := make([]BankHealth, 0, len(r.banks))
	for _, b := range r.banks {
		bc := r.byID[b.ID]
		state := bc.breaker.State()
		calls, errs := bc.stats.recent(now)
		h := BankHealth{BankID: b.ID, Breaker: breakerStateName(state), BreakerValue: breakerStateValue(state),
			RecentCalls: calls, RecentErrors: errs, RecentWindow: recentWindow.String()}
		if calls > 0 {
			h.ErrorRate = float64(errs) / float64(calls)
		}
		bc.stats.mu.Lock()
		if !bc.stats.lastSuccess.IsZero() {
			t := bc.stats.lastSuccess.UTC()
			h.LastSuccess = &t
		}
		if !bc.stats.lastError.IsZero() {
			t := bc.stats.lastError.UTC()
			h.LastError = &t
		}
		h.LastErrorReason = bc.stats.lastErrorReason
		bc.stats.mu.Unlock()
		out = append(out, h)
	}
	return out
}

// BanksHandler serves Health for an admin listener's /banks: JSON
// ({"banks": [...]}), or an aligned text table to a caller that asks for
// text/plain (curl -H 'Accept: text/plain', or ?format=text).
func (r *Registry) BanksHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		health := r.Health()
		if req.URL.Query().Get("format") == "text" || strings.Contains(req.Header.Get("Accept"), "text/plain") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "BANK\tBREAKER\tERROR RATE ("+recentWindow.String()+")\tLAST SUCCESS\tLAST ERROR\tLAST ERROR REASON")
			for _, h := range health {
				fmt.Fprintf(tw, "%s\t%s\t%.1f%% of %d\t%s\t%s\t%s\n", h.BankID, h.Breaker, 100*h.ErrorRate, h.RecentCalls,
					timeOrDash(h.LastSuccess), timeOrDash(h.LastError), orDash(h.LastErrorReason))
			}
			_ = tw.Flush()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"banks": health})
	})
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
