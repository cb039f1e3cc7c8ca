package consentcheck

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// MetricDuration is the consent-check latency histogram (seconds, by
// outcome), exposed to Prometheus as
// bankbridge_consentcheck_duration_seconds: how long a call waited for
// its consent decision, the caller's side of the consent service's
// latency.
const MetricDuration = "bankbridge.consentcheck.duration"

// The outcomes of a decision, its metric label: a cached allowed
// decision, the consent service's answer (allowed or denied), or no
// answer (unavailable: unreachable or too slow; error: anything else).
const (
	outcomeCached      = "cached"
	outcomeAllowed     = "allowed"
	outcomeDenied      = "denied"
	outcomeUnavailable = "unavailable"
	outcomeError       = "error"
)

// durationBuckets span a cached decision (microseconds) to the check
// timeout (DefaultCheckTimeout, 800 ms) and past it.
var durationBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1, 2.5}

type checkMetrics struct {
	duration metric.Float64Histogram
}

func newCheckMetrics(mp metric.MeterProvider) (checkMetrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	d, err := mp.Meter("bankbridge/consentcheck").Float64Histogram(MetricDuration, metric.WithUnit("s"),
		metric.WithDescription("How long a call waited for its consent decision, by outcome (cached, allowed, denied, unavailable, error)"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	return checkMetrics{duration: d}, err
}

func (m checkMetrics) observe(ctx context.Context, start time.Time, outcome string) {
	// The caller's context may be done; the measurement is still ours.
	m.duration.Record(context.WithoutCancel(ctx), time.Since(start).Seconds(),
		metric.WithAttributes(attribute.String("outcome", outcome)))
}
