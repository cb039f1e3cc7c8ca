package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
)

// What an adapter answers is input, not truth: besides the protocol's rules,
// every response is scanned with [adapters.FindLeaks] for full card numbers
// and IBANs before any service sees it, and one that shows any is refused
// whole (the rule and its trade-offs are documented in the SDK's leak.go).

// Attribute keys of the leak counter and log lines, under the bankbridge.
// and rpc. prefixes that services' telemetry allow-list lets through.
const (
	attrLeakKind  = "bankbridge.leak_kind"
	attrFieldPath = "bankbridge.field_path"
	attrRPCMethod = "rpc.method"
)

// meterName is the instrumentation scope of the registry's metrics.
const meterName = "github.com/bankbridge/bankbridge/adapters"

// leakCounterName is the counter of responses refused for showing an
// unmasked number.
const leakCounterName = "bankbridge.adapter.leaks_refused"

// WithMeterProvider sets where the registry's metrics go: the counter
// bankbridge.adapter.leaks_refused, by bankbridge.bank_id, rpc.method and
// bankbridge.leak_kind; the counter bankbridge.adapter.calls and the
// histogram bankbridge.adapter.duration (seconds), by bank_id, method and
// outcome (observe.go); and the gauges bankbridge.adapter.breaker_state
// and bankbridge.adapter.inflight, by bank_id. Default: none kept.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *registryOptions) {
		if mp != nil {
			o.meterProvider = mp
		}
	}
}

// newLeakCounter creates the counter every bank's client adds to.
func newLeakCounter(mp metric.MeterProvider) (metric.Int64Counter, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	c, err := mp.Meter(meterName).Int64Counter(leakCounterName,
		metric.WithUnit("{response}"),
		metric.WithDescription("Bank adapter responses refused because they showed a full card number or IBAN"))
	if err != nil {
		return nil, fmt.Errorf("leak counter: %w", err)
	}
	return c, nil
}

// checkLeaks refuses a response (or stream message) that shows an
// unmasked number: counted by kind, logged by field path and kind only,
// and answered BANK_UNAVAILABLE naming the first path and its kind. The
// callers decide what the refusal costs the bank (resilience.go).
func (bc *bankClient) checkLeaks(ctx context.Context, method string, msg proto.Message) error {
	leaks := adapters.FindLeaks(msg)
	if len(leaks) == 0 {
		return nil
	}
	rpc := method[strings.LastIndex(method, "/")+1:]
	paths := make([]string, len(leaks))
	var kinds []adapters.LeakKind
	for i, l := range leaks {
		paths[i] = l.Path
		if !slices.Contains(kinds, l.Kind) {
			kinds = append(kinds, l.Kind)
		}
	}
	for _, k := range kinds {
		bc.leaks.Add(ctx, 1, metric.WithAttributes(
			attribute.String(logKeyBankID, bc.bank.ID),
			attribute.String(attrRPCMethod, rpc),
			attribute.String(attrLeakKind, string(k))))
	}
	bc.log.WarnContext(ctx, "bank adapter response refused: it shows an unmasked account or card number",
		slog.String(logKeyBankID, bc.bank.ID), slog.String(attrRPCMethod, rpc),
		slog.String(attrFieldPath, strings.Join(paths, ",")), slog.String(attrLeakKind, string(kinds[0])))
	return bc.unavailable(fmt.Sprintf("its adapter answered with an unmasked number (%s) at %s", leaks[0].Kind, leaks[0].Path),
		adapters.RetryAfterBankFailure)
}
