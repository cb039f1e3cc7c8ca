package stream

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// MetricOpenStreams is the number of streams a process serves now, by
// method (the RPC's short name, e.g. WatchShipments), exposed to
// Prometheus as bankbridge_streams_open: every stream served with a Feed
// whose Hub was built with HubOptions.MeterProvider, whether the hub or a
// subscription of its own delivers its events.
const MetricOpenStreams = "bankbridge.streams.open"

func newOpenStreams(mp metric.MeterProvider) (metric.Int64UpDownCounter, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return mp.Meter("bankbridge/events/stream").Int64UpDownCounter(MetricOpenStreams, metric.WithUnit("{stream}"),
		metric.WithDescription("Streams served now, by method"))
}

// opened counts a stream of fullMethod ("/pkg.Service/Method") as open
// until the returned func runs.
func (h *Hub) opened(ctx context.Context, fullMethod string) (closed func()) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	attrs := metric.WithAttributes(attribute.String("method", method))
	// The stream's context ends before the decrement; the count must not.
	ctx = context.WithoutCancel(ctx)
	h.open.Add(ctx, 1, attrs)
	return func() { h.open.Add(ctx, -1, attrs) }
}
