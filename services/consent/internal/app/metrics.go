package app

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// MetricAccessLogPending is the access log's append backlog, exposed to
// Prometheus as bankbridge_accesslog_pending: the entries waiting for
// their group commit, queued or in the batch being written. Every call
// that serves data waits with its entry, so a backlog that grows is every
// data service slowing down, and then failing AUDIT_UNAVAILABLE.
const MetricAccessLogPending = "bankbridge.accesslog.pending"

func observeBacklog(mp metric.MeterProvider, a *appender) error {
	meter := mp.Meter("bankbridge/consent")
	g, err := meter.Int64ObservableGauge(MetricAccessLogPending, metric.WithUnit("{entry}"),
		metric.WithDescription("Access log entries waiting for their append: queued or in the batch being written"))
	if err != nil {
		return fmt.Errorf("access log backlog gauge: %w", err)
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, int64(a.backlog()))
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("access log backlog gauge: %w", err)
	}
	return nil
}
