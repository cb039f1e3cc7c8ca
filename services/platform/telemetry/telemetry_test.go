package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

func TestSpansKeepOnlyAllowedAttributes(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "t", SpanExporter: spans, SyncExport: true, LogOutput: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())

	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "op")
	span.SetAttributes(
		attribute.String("rpc.method", "grpc.health.v1.Health/Check"),
		attribute.String(telemetry.AttrBankID, "sandbox"),
		attribute.String("account.number", "DE89370400440532013000"),
		attribute.Int64("balance.amount", 123456),
		attribute.String("url.path", "/v1/users/alice/accounts/a1/balance"),
		attribute.String("http.request.header.authorization", "Bearer eyJ"),
	)
	// An instrumentation library might record a message body in an event.
	span.AddEvent("message",
		traceEventAttrs(attribute.String("message.text", "my card was stolen"), attribute.String("message.type", "RECEIVED"))...)
	span.End()

	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	want := map[string]string{
		"rpc.method":                        "grpc.health.v1.Health/Check",
		telemetry.AttrBankID:                "sandbox",
		"account.number":                    telemetry.Redacted,
		"balance.amount":                    telemetry.Redacted,
		"url.path":                          telemetry.Redacted,
		"http.request.header.authorization": telemetry.Redacted,
	}
	for _, kv := range got[0].Attributes {
		if w, ok := want[string(kv.Key)]; ok && kv.Value.Emit() != w {
			t.Errorf("%s = %q, want %q", kv.Key, kv.Value.Emit(), w)
		}
	}
	for _, kv := range got[0].Events[0].Attributes {
		if kv.Key == "message.text" && kv.Value.Emit() != telemetry.Redacted {
			t.Errorf("event attribute message.text = %q, want redacted", kv.Value.Emit())
		}
		if kv.Key == "message.type" && kv.Value.Emit() != "RECEIVED" {
			t.Errorf("event attribute message.type = %q, want kept", kv.Value.Emit())
		}
	}
}

func TestLogsKeepOnlyAllowedAttributes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	log.Info("balance read",
		slog.String(telemetry.AttrBankID, "sandbox"),
		slog.Int64("amount", 123456),
		slog.Group("req", slog.String("account_number", "DE89370400440532013000")),
	)
	log.With(slog.String("token", "eyJhbGciOi")).Info("x")
	out := buf.String()
	for _, leak := range []string{"123456", "DE89370400440532013000", "eyJhbGciOi"} {
		if strings.Contains(out, leak) {
			t.Errorf("log carries %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, `"bankbridge.bank_id":"sandbox"`) || !strings.Contains(out, `"amount":"[redacted]"`) {
		t.Errorf("allowed attributes lost or redaction not marked:\n%s", out)
	}
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"rpc.grpc.status_code", true},
		{"http.route", true},
		{"bankbridge.reason", true},
		{"url.full", false},
		{"url.query", false},
		{"enduser.id", false},
		{"db.statement", false},
		{"exception.message", false},
		// Free text is scrubbed, not passed: see TestFreeTextIsScrubbedInLogs.
		{"error", false},
		{"panic", false},
		{"stack", false},
		// bankbridge.* text passes only under a vetted key.
		{"bankbridge.merchant_name", false},
		{"bankbridge.client_id", true},
		// Only known methods: see TestRPCAttributesNameOnlyKnownMethods.
		{"rpc.method", false},
	}
	for _, tt := range tests {
		if got := telemetry.Allowed(tt.key); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// TestLeakAttributesLeave: on-call learns where in a bank's answer an
// unmasked number was found (adapters/runtime/leakcheck.go logs and counts it so), as
// the kind and the proto field path carry no value of the answer.
func TestLeakAttributesLeave(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	log.Warn("adapter answer refused",
		slog.String("bankbridge.leak_kind", "card"),
		slog.String("bankbridge.field_path", "accounts[0].masked_number"))
	out := buf.String()
	for _, want := range []string{`"bankbridge.leak_kind":"card"`, `"bankbridge.field_path":"accounts[0].masked_number"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
