package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// MetricOutboxLag is the outbox lag gauge (seconds), exposed to Prometheus
// as bankbridge_events_outbox_lag_seconds: how long the oldest row not yet
// published has waited in the outbox, 0 when every row is published. It
// grows when the relay cannot publish (the bus is down, no relay leads),
// and that is when streams and webhooks fall behind.
const MetricOutboxLag = "bankbridge.events.outbox.lag"

// lagQueryTimeout bounds the query a collection runs: a database that does
// not answer must not hold up /metrics.
const lagQueryTimeout = time.Second

// ObserveLag reports MetricOutboxLag to mp at every collection, by reading
// the oldest unpublished row (the relay's own index); the registration ends
// with the meter provider. Every replica reports the same database's lag.
func (o *SQLOutbox) ObserveLag(mp metric.MeterProvider) error {
	meter := mp.Meter("bankbridge/events")
	g, err := meter.Float64ObservableGauge(MetricOutboxLag, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest outbox row not yet published to the event bus; 0 when none waits"))
	if err != nil {
		return fmt.Errorf("outbox lag gauge: %w", err)
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		lag, err := o.Lag(ctx)
		if err != nil {
			return err // no sample: a scrape shows the gap, not a false 0
		}
		obs.ObserveFloat64(g, lag.Seconds())
		return nil
	}, g)
	return err
}

// Lag is how long the oldest unpublished row has waited, 0 when none does.
func (o *SQLOutbox) Lag(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, lagQueryTimeout)
	defer cancel()
	var created int64
	err := o.db.QueryRowContext(ctx, `SELECT create_time FROM events_outbox WHERE publish_time IS NULL ORDER BY seq LIMIT 1`).Scan(&created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("outbox lag: %w", err)
	}
	return max(o.now().Sub(storage.FromMicros(created)), 0), nil
}
