package telemetry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// TestLogRefsReachLogsOnly: the pseudonymous references a call's context
// carries are on every log line written with it, and nowhere else: not a
// span attribute, not a metric label.
func TestLogRefsReachLogsOnly(t *testing.T) {
	tel, spans, logs := setup(t)
	ctx := telemetry.WithLogRefs(context.Background(), "u_0123456789abcdef", "l_fedcba9876543210")
	ctx, span := tel.TracerProvider.Tracer("t").Start(ctx, "call")
	span.SetAttributes(attribute.String(telemetry.LogKeyUserRef, "u_0123456789abcdef"))
	tel.Logger.WarnContext(ctx, "bank call failed")
	span.End()

	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, logs)
	}
	if line["user_ref"] != "u_0123456789abcdef" || line["link_ref"] != "l_fedcba9876543210" || line["trace_id"] == nil {
		t.Errorf("log line %v: want user_ref, link_ref and trace_id", line)
	}
	logs.Reset()
	tel.Logger.Info("no call")
	if strings.Contains(logs.String(), "_ref") {
		t.Errorf("a line without the call's context has references: %s", logs)
	}

	for _, s := range spans.GetSpans() {
		if out := everything(s); strings.Contains(out, "u_0123456789abcdef") {
			t.Errorf("a span carries the user reference:\n%s", out)
		}
	}
	counter, err := tel.MeterProvider.Meter("t").Int64Counter("bankbridge.test.refs")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.LogKeyUserRef, "u_0123456789abcdef"),
		attribute.String("bank_id", "sandbox")))
	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if strings.Contains(string(body), "u_0123456789abcdef") || !strings.Contains(string(body), `bankbridge_test_refs_total{bank_id="sandbox"`) {
		t.Errorf("metrics: want the reference dropped and bank_id kept:\n%s", grepLines(string(body), "bankbridge_test_refs"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
