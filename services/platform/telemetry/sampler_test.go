package telemetry_test

import (
	"bytes"
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

func TestTraceSampleRatio(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName: "t", SpanExporter: spans, SyncExport: true, LogOutput: &bytes.Buffer{}, TraceSampleRatio: 0.1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tracer := tel.TracerProvider.Tracer("t")

	const n = 1000
	for range n {
		_, s := tracer.Start(context.Background(), "root")
		s.End()
	}
	// About 100; far outside these bounds only if the ratio is not applied.
	if got := len(spans.GetSpans()); got < 40 || got > 200 {
		t.Errorf("%d of %d traces started here recorded, want about a tenth", got, n)
	}

	// A caller's decision is followed, whole traces kept or dropped.
	remote := func(sampled bool, i int) context.Context {
		var flags trace.TraceFlags
		if sampled {
			flags = trace.FlagsSampled
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{0xab, byte(i), byte(i >> 8), 1}, SpanID: trace.SpanID{1, byte(i)},
			TraceFlags: flags, Remote: true,
		})
		return trace.ContextWithRemoteSpanContext(context.Background(), sc)
	}
	tests := []struct {
		name    string
		sampled bool
		want    int
	}{
		{"the caller sampled", true, 100},
		{"the caller did not", false, 0},
	}
	for _, tt := range tests {
		spans.Reset()
		for i := range 100 {
			_, s := tracer.Start(remote(tt.sampled, i), "child")
			s.End()
		}
		if got := len(spans.GetSpans()); got != tt.want {
			t.Errorf("%s: %d of 100 child spans recorded, want %d", tt.name, got, tt.want)
		}
	}
}

func TestTraceSampleRatioOutOfRange(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{-0.5, 1.5} {
		if _, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "t", LogOutput: &bytes.Buffer{}, TraceSampleRatio: r}); err == nil {
			t.Errorf("ratio %v accepted", r)
		}
	}
}
