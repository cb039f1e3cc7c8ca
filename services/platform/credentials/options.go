package credentials

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Option customizes a Provider.
type Option interface {
	apply(*options)
}

type options struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
	now           func() time.Time
}

func defaultOptions() options {
	return options{
		logger:        slog.Default(),
		meterProvider: otel.GetMeterProvider(),
		now:           time.Now,
	}
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger for renewals, re-logins, rotations and Vault
// failures; default slog.Default(). Lines carry ids, paths, versions and
// status codes, never secret values or tokens.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// WithMeterProvider sets where the metrics go; default
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) { o.meterProvider = mp })
}

// WithClock sets the clock that ages cached secrets; default time.Now. Tests
// use it to age a secret past RefreshInterval or MaxStale without waiting;
// the background refresh and token renewal still follow real time.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}
