package credentials

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Metric names. Attribute keys come from the platform's telemetry
// allow-list, so the labels survive its filter: ids are not personal data.
const (
	meterName        = "github.com/bankbridge/bankbridge/services/platform/credentials"
	metricReads      = "bankbridge.credentials.reads"
	metricFailures   = "bankbridge.credentials.failures"
	metricLogins     = "bankbridge.credentials.logins"
	metricSecretAge  = "bankbridge.credentials.secret_age"
	metricVersionAge = "bankbridge.credentials.version_age"
	// metricBankID is the bank label of every per-bank metric.
	metricBankID      = "bank_id"
	attrPartnerID     = "bankbridge.partner_id"
	attrAuthMethod    = "bankbridge.vault_auth_method"
	outcomeOK         = "ok"
	outcomeError      = "error"
	reasonNotFound    = "not_found"
	reasonDenied      = "permission_denied"
	reasonUnavailable = "unavailable"
)

type metrics struct {
	reads    metric.Int64Counter
	failures metric.Int64Counter
	logins   metric.Int64Counter
	ages     metric.Registration
}

// newMetrics creates the instruments; observeAges reports the ages of every
// cached secret (since its read, since its version was written) when the
// gauges are collected.
func newMetrics(mp metric.MeterProvider, observeAges func(func(id attribute.KeyValue, cached, version float64))) (*metrics, error) {
	meter := mp.Meter(meterName)
	var m metrics
	var err, errs error
	m.reads, err = meter.Int64Counter(metricReads, metric.WithUnit("{read}"),
		metric.WithDescription("Secret reads sent to Vault, by id and outcome."))
	errs = errors.Join(errs, err)
	m.failures, err = meter.Int64Counter(metricFailures, metric.WithUnit("{call}"),
		metric.WithDescription("Bank and Partner calls that returned an error, by id and reason."))
	errs = errors.Join(errs, err)
	m.logins, err = meter.Int64Counter(metricLogins, metric.WithUnit("{login}"),
		metric.WithDescription("Vault logins, by auth method and outcome."))
	errs = errors.Join(errs, err)
	age, err := meter.Float64ObservableGauge(metricSecretAge, metric.WithUnit("s"),
		metric.WithDescription("Seconds since the cached secret was last read from Vault, by id."))
	errs = errors.Join(errs, err)
	versionAge, err := meter.Float64ObservableGauge(metricVersionAge, metric.WithUnit("s"),
		metric.WithDescription("Seconds since the secret version in use was written to Vault (its last rotation), by id."))
	errs = errors.Join(errs, err)
	if errs != nil {
		return nil, fmt.Errorf("credentials metrics: %w", errs)
	}
	m.ages, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observeAges(func(id attribute.KeyValue, cached, version float64) {
			o.ObserveFloat64(age, cached, metric.WithAttributes(id))
			if version > 0 {
				o.ObserveFloat64(versionAge, version, metric.WithAttributes(id))
			}
		})
		return nil
	}, age, versionAge)
	if err != nil {
		return nil, fmt.Errorf("credentials metrics: %w", err)
	}
	return &m, nil
}

func (m *metrics) read(ctx context.Context, k key, err error) {
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeError
	}
	m.reads.Add(ctx, 1, metric.WithAttributes(k.attr(), attribute.String(telemetry.AttrOutcome, outcome)))
}

func (m *metrics) failure(ctx context.Context, k key, err error) {
	reason := reasonUnavailable
	switch {
	case errors.Is(err, ErrNotFound):
		reason = reasonNotFound
	case errors.Is(err, ErrPermissionDenied):
		reason = reasonDenied
	}
	attrs := []attribute.KeyValue{attribute.String(telemetry.AttrReason, reason)}
	// An id that cannot name a secret is caller input of any shape: it stays
	// out of labels to bound their cardinality.
	if validID(k.id) == nil {
		attrs = append(attrs, k.attr())
	}
	m.failures.Add(ctx, 1, metric.WithAttributes(attrs...))
}

func (m *metrics) login(ctx context.Context, method AuthMethod, err error) {
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeError
	}
	m.logins.Add(ctx, 1, metric.WithAttributes(
		attribute.String(attrAuthMethod, string(method)),
		attribute.String(telemetry.AttrOutcome, outcome)))
}

func (m *metrics) close() error {
	if err := m.ages.Unregister(); err != nil {
		return fmt.Errorf("credentials metrics: %w", err)
	}
	return nil
}
