package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// redactAttrs returns attrs with every value that may not leave replaced:
// free text scrubbed, anything else not allowed by Redacted.
func redactAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, len(attrs))
	for i, kv := range attrs {
		switch judgeAttr(kv) {
		case keep:
			out[i] = kv
		case scrub:
			out[i] = attribute.String(string(kv.Key), Scrub(kv.Value.Emit()))
		default:
			out[i] = attribute.String(string(kv.Key), Redacted)
		}
	}
	return out
}

// redactingExporter applies the allow-list to every span before handing it
// to the real exporter: its name, its status description, its attributes,
// and its events' names and attributes (an exception event's message and
// stack among them), and its links' attributes. Whatever an
// instrumentation library records, only allowed values leave the process.
type redactingExporter struct {
	next sdktrace.SpanExporter
}

// RedactingExporter wraps next so that spans reach it with only allowed
// names, status descriptions and attribute values.
func RedactingExporter(next sdktrace.SpanExporter) sdktrace.SpanExporter {
	return redactingExporter{next: next}
}

func (e redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactSpan(tracetest.SpanStubFromReadOnlySpan(s)).Snapshot()
	}
	return e.next.ExportSpans(ctx, out)
}

func redactSpan(stub tracetest.SpanStub) tracetest.SpanStub {
	if !safeSpanName(stub.Name) {
		stub.Name = Redacted
	}
	// A status description is an error's text (otelgrpc records the gRPC
	// status message, RecordError the error): the code says enough.
	if stub.Status.Description != "" {
		stub.Status.Description = Redacted
	}
	stub.Attributes = redactAttrs(stub.Attributes)
	for j := range stub.Events {
		if !safeEventNames[stub.Events[j].Name] {
			stub.Events[j].Name = Redacted
		}
		stub.Events[j].Attributes = redactAttrs(stub.Events[j].Attributes)
	}
	for j := range stub.Links {
		stub.Links[j].Attributes = redactAttrs(stub.Links[j].Attributes)
	}
	return stub
}

func (e redactingExporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// logHandler applies the allow-list to log attributes and adds the trace_id
// and span_id of the context, so a log line joins its trace.
type logHandler struct {
	next   slog.Handler
	prefix string // dotted group path of WithGroup calls
}

// NewLogHandler wraps next: attributes not Allowed (by their dotted key,
// groups included) have their values replaced by Redacted, free text
// (FreeText) is scrubbed, and records logged with a context that carries a
// span get trace_id and span_id.
func NewLogHandler(next slog.Handler) slog.Handler {
	return logHandler{next: next}
}

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	addLogRefs(ctx, &out)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.redact(h.prefix, a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h logHandler) redact(prefix string, a slog.Attr) slog.Attr {
	key := a.Key
	if prefix != "" {
		key = prefix + "." + a.Key
	}
	a.Value = a.Value.Resolve()
	if logOnlyKeys[key] {
		return a // pseudonymous references: logs only (logrefs.go)
	}
	if a.Value.Kind() == slog.KindGroup {
		group := a.Value.Group()
		attrs := make([]any, len(group))
		for i, g := range group {
			attrs[i] = h.redact(key, g)
		}
		return slog.Group(a.Key, attrs...)
	}
	text := a.Value.Kind() == slog.KindString || a.Value.Kind() == slog.KindAny
	switch judge(key, text, a.Value.String()) {
	case keep:
		return a
	case scrub:
		return slog.String(a.Key, Scrub(a.Value.String()))
	}
	return slog.String(a.Key, Redacted)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.redact(h.prefix, a)
	}
	return logHandler{next: h.next.WithAttrs(out), prefix: h.prefix}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	prefix := name
	if h.prefix != "" {
		prefix = h.prefix + "." + name
	}
	return logHandler{next: h.next.WithGroup(name), prefix: prefix}
}
