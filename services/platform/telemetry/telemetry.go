// Package telemetry sets up OpenTelemetry for a bankbridge process: traces
// and metrics configured from the standard OTEL_* environment, W3C trace
// context propagation (a caller's baggage is never taken in), a Prometheus
// /metrics handler, and a JSON slog logger that stamps trace ids.
// Everything that leaves the process passes the attribute allow-list in
// allowlist.go, span names and status texts included (redact.go).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Config names the process in every span and metric.
type Config struct {
	ServiceName    string
	ServiceVersion string
	// ServiceCommit is the build's source commit: with ServiceVersion, the
	// labels of the bankbridge_build_info gauge on /metrics.
	ServiceCommit string
	// LogLevel is the minimum level logged; default Info.
	LogLevel slog.Level
	// LogOutput receives JSON log lines; default os.Stderr.
	LogOutput io.Writer
	// SpanExporter, when set, replaces the exporter chosen from OTEL_* (tests
	// pass an in-memory one). It is wrapped in RedactingExporter all the same.
	SpanExporter sdktrace.SpanExporter
	// SyncExport exports each span as it ends instead of in batches (tests).
	SyncExport bool
	// TraceSampleRatio, when in (0, 1], samples that share of the traces
	// that start here, and follows the caller's decision for the rest
	// (parent-based): a trace is kept or dropped whole, across services.
	// Zero leaves the sampler to OTEL_TRACES_SAMPLER (default
	// parentbased_always_on, what the dev stack's tests need).
	TraceSampleRatio float64
}

// Telemetry holds the providers a process passes to its instrumentation.
// Nothing is installed globally: the server and client kits take these
// explicitly, so two processes in one test binary stay apart.
type Telemetry struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	// Propagator carries W3C trace context and baggage on the calls a
	// process makes.
	Propagator propagation.TextMapPropagator
	// EdgePropagator is what a listener callers reach takes in: their
	// trace context, so one request is one trace, and never their
	// baggage, which bankbridge would otherwise pass on to every service
	// and bank it calls, and which instrumentation may record.
	EdgePropagator propagation.TextMapPropagator
	Logger         *slog.Logger
	// MetricsHandler serves the Prometheus exposition of every metric.
	MetricsHandler http.Handler

	shutdown []func(context.Context) error
}

// Setup builds the providers. Traces go to the exporter named by
// OTEL_TRACES_EXPORTER (otlp, console, none; OTLP honours
// OTEL_EXPORTER_OTLP_ENDPOINT and _PROTOCOL grpc or http/protobuf); with
// neither that nor an OTLP endpoint set, spans are recorded (trace ids still
// flow) but not exported. The sampler is parent-based on
// Config.TraceSampleRatio when it is set, and otherwise follows
// OTEL_TRACES_SAMPLER (default parentbased_always_on). Metrics are always
// served for Prometheus and also pushed when OTEL_METRICS_EXPORTER names an
// exporter.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("telemetry: ServiceName is required")
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.ServiceVersion)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t := &Telemetry{
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		EdgePropagator: propagation.TraceContext{},
	}

	exporter := cfg.SpanExporter
	if exporter == nil && exportSpansFromEnv() {
		if exporter, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, fmt.Errorf("telemetry span exporter: %w", err)
		}
	}
	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch r := cfg.TraceSampleRatio; {
	case r < 0 || r > 1 || r != r:
		return nil, fmt.Errorf("telemetry: trace sample ratio %v is outside 0..1", r)
	case r > 0:
		// An unsampled trace still carries its ids, so logs keep their
		// trace id; only recording and export are skipped.
		traceOpts = append(traceOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r))))
	}
	if exporter != nil {
		if cfg.SyncExport {
			traceOpts = append(traceOpts, sdktrace.WithSyncer(RedactingExporter(exporter)))
		} else {
			traceOpts = append(traceOpts, sdktrace.WithBatcher(RedactingExporter(exporter)))
		}
	}
	t.TracerProvider = sdktrace.NewTracerProvider(traceOpts...)
	t.shutdown = append(t.shutdown, t.TracerProvider.Shutdown)

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Which build is running, as Prometheus' *_build_info convention has
	// it: a gauge of 1 whose labels are the build, so a dashboard sees a
	// rolling upgrade's versions side by side.
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "bankbridge_build_info",
		Help:        "The running build: 1, labelled with its version and commit.",
		ConstLabels: prometheus.Labels{"version": cfg.ServiceVersion, "commit": cfg.ServiceCommit},
	})
	buildInfo.Set(1)
	registry.MustRegister(buildInfo)
	promExporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, fmt.Errorf("telemetry prometheus exporter: %w", err)
	}
	meterOpts := []sdkmetric.Option{
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promExporter),
		// Metric labels pass the allow-list too; others are dropped.
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "*"},
			sdkmetric.Stream{AttributeFilter: allowedLabel})),
	}
	if os.Getenv("OTEL_METRICS_EXPORTER") != "" && os.Getenv("OTEL_METRICS_EXPORTER") != "none" {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry metric reader: %w", err)
		}
		meterOpts = append(meterOpts, sdkmetric.WithReader(reader))
	}
	t.MeterProvider = sdkmetric.NewMeterProvider(meterOpts...)
	t.shutdown = append(t.shutdown, t.MeterProvider.Shutdown)
	t.MetricsHandler = promhttp.HandlerFor(registry, promhttp.HandlerOpts{})

	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	t.Logger = slog.New(NewLogHandler(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))).
		With(slog.String("service", cfg.ServiceName))
	return t, nil
}

// exportSpansFromEnv reports whether the environment asks for span export.
func exportSpansFromEnv() bool {
	switch os.Getenv("OTEL_TRACES_EXPORTER") {
	case "none":
		return false
	case "":
		return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return true
	}
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
