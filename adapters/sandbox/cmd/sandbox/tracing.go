package main

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc"
)

// tracing joins the sandbox to the caller's trace (W3C traceparent) and
// exports its spans when the standard OTEL_* environment asks for it, so an
// on-call engineer sees the bank hop in the same trace as the gateway and
// the service. Spans carry only otelgrpc's rpc.* attributes.
func tracing(ctx context.Context) (grpc.ServerOption, func(), error) {
	opts := []otelgrpc.Option{otelgrpc.WithPropagators(propagation.TraceContext{})}
	shutdown := func() {}
	if os.Getenv("OTEL_TRACES_EXPORTER") != "" && os.Getenv("OTEL_TRACES_EXPORTER") != "none" ||
		os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("span exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("sandbox"))),
		)
		opts = append(opts, otelgrpc.WithTracerProvider(tp))
		shutdown = func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }
	}
	return grpc.StatsHandler(otelgrpc.NewServerHandler(opts...)), shutdown, nil
}
