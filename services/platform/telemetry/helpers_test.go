package telemetry_test

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func traceEventAttrs(kv ...attribute.KeyValue) []trace.EventOption {
	return []trace.EventOption{trace.WithAttributes(kv...)}
}
