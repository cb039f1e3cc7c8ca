package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	_ "google.golang.org/grpc/health/grpc_health_v1" // registers grpc.health.v1.Health, a known method

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Personal data and a credential, as they might reach a span or a log line
// through a library's error text or a caller's request.
const (
	leakIBAN   = "DE89370400440532013000"
	leakAmount = "2387.11"
	leakToken  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
)

var leaks = []string{leakIBAN, leakAmount, leakToken}

func setup(t *testing.T) (*telemetry.Telemetry, *tracetest.InMemoryExporter, *bytes.Buffer) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "t", SpanExporter: spans, SyncExport: true, LogOutput: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, spans, &logs
}

// everything prints every part of an exported span that leaves the
// process: name, status, attributes, events and links.
func everything(s tracetest.SpanStub) string {
	var b strings.Builder
	b.WriteString("name=" + s.Name + "\nstatus=" + s.Status.Description + "\n")
	for _, kv := range s.Attributes {
		b.WriteString(string(kv.Key) + "=" + kv.Value.Emit() + "\n")
	}
	for _, ev := range s.Events {
		b.WriteString("event " + ev.Name + "\n")
		for _, kv := range ev.Attributes {
			b.WriteString("  " + string(kv.Key) + "=" + kv.Value.Emit() + "\n")
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			b.WriteString("link " + string(kv.Key) + "=" + kv.Value.Emit() + "\n")
		}
	}
	return b.String()
}

// TestSpanNamesStatusAndEventsAreRedacted: a span whose name, status text,
// event name, exception event and free-text attribute carry an IBAN, an
// amount and a token is exported with none of them.
func TestSpanNamesStatusAndEventsAreRedacted(t *testing.T) {
	t.Parallel()
	tel, spans, _ := setup(t)
	text := "transfer of EUR " + leakAmount + " from " + leakIBAN + " with Bearer " + leakToken
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "pay "+text)
	span.AddEvent("event "+text, trace.WithAttributes(attribute.String("message.type", "SENT")))
	span.RecordError(errors.New("bank said: " + text))
	span.SetAttributes(attribute.String("error", text), attribute.String("bankbridge.merchant_note", text))
	span.SetStatus(codes.Error, text)
	span.End()

	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	out := everything(got[0])
	for _, leak := range leaks {
		if strings.Contains(out, leak) {
			t.Errorf("the exported span carries %q:\n%s", leak, out)
		}
	}
	s := got[0]
	if s.Name != telemetry.Redacted || s.Status.Description != telemetry.Redacted || s.Status.Code != codes.Error {
		t.Errorf("name %q, status %v %q: want both redacted, the code kept", s.Name, s.Status.Code, s.Status.Description)
	}
	if len(s.Events) != 2 || s.Events[0].Name != telemetry.Redacted || s.Events[1].Name != "exception" {
		t.Fatalf("events %+v: want the made-up name redacted, the exception kept", s.Events)
	}
	for _, kv := range s.Events[1].Attributes {
		if kv.Key == "exception.message" && kv.Value.AsString() != telemetry.Redacted {
			t.Errorf("exception.message = %q, want redacted", kv.Value.AsString())
		}
	}
	if !strings.Contains(out, "message.type=SENT") || !strings.Contains(out, "error=transfer of [redacted] from [redacted] with Bearer [redacted]") {
		t.Errorf("safe values lost or free text not scrubbed:\n%s", out)
	}
	if !strings.Contains(out, "bankbridge.merchant_note="+telemetry.Redacted) {
		t.Errorf("text under a bankbridge.* key nobody vetted was not redacted:\n%s", out)
	}
}

// TestSafeSpanNamesAreKept: what the instrumentation and our formatters
// name spans passes; a method nobody serves, or a path with ids, does not.
func TestSafeSpanNamesAreKept(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kept bool
	}{
		{"grpc.health.v1.Health/Check", true},
		{"/grpc.health.v1.Health/Watch", true},
		{"HTTP GET", true},
		{"HTTP GET /v1/{name=users/*/accounts/*}/balance", true},
		{"HTTP POST /v1/carriers/{carrier}/trackingEvents", true},
		{"HTTP GET /v1/users/*/shipments:watch", true},
		{"HTTP GET /.well-known/jwks.json", true},
		{"grpc.health.v1.Health/" + leakIBAN, false},
		{"bankbridge.nothing.v1.Nothing/Get", false},
		{"HTTP GET /v1/users/alice/accounts/" + leakIBAN, false},
		{"HTTP GET /v1/payments/" + leakAmount, false},
		{"HTTP " + leakIBAN, false},
		{"HTTP GET /v1/" + strings.Repeat("a", 40), false},
		{"op", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(telemetry.RedactingExporter(spans)))
			_, span := tp.Tracer("t").Start(context.Background(), tt.name)
			span.End()
			got := spans.GetSpans()[0].Name
			if kept := got == tt.name; kept != tt.kept {
				t.Errorf("exported as %q; kept = %v, want %v", got, kept, tt.kept)
			}
		})
	}
}

// TestRPCAttributesNameOnlyKnownMethods: the gRPC instrumentation records
// rpc.method as the caller wrote it; a method this binary does not know
// leaves redacted, in spans and logs, and is dropped from metric labels.
func TestRPCAttributesNameOnlyKnownMethods(t *testing.T) {
	t.Parallel()
	tel, spans, logs := setup(t)
	unknown := "grpc.health.v1.Health/" + leakIBAN
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "grpc.health.v1.Health/Check")
	span.SetAttributes(attribute.String("rpc.method", "grpc.health.v1.Health/Check"), attribute.String("rpc.system", "grpc"))
	span.End()
	_, span = tel.TracerProvider.Tracer("t").Start(context.Background(), unknown)
	span.SetAttributes(attribute.String("rpc.method", unknown), attribute.String("rpc.service", leakIBAN))
	span.End()
	got := spans.GetSpans()
	if out := everything(got[0]); !strings.Contains(out, "rpc.method=grpc.health.v1.Health/Check") || !strings.Contains(out, "rpc.system=grpc") {
		t.Errorf("a known method lost its attributes:\n%s", out)
	}
	if out := everything(got[1]); strings.Contains(out, leakIBAN) {
		t.Errorf("an unknown method's span carries it:\n%s", out)
	}

	tel.Logger.Info("rpc", slog.String("rpc.method", "/"+unknown), slog.String("rpc.service", "grpc.health.v1.Health"))
	if strings.Contains(logs.String(), leakIBAN) || !strings.Contains(logs.String(), `"rpc.service":"grpc.health.v1.Health"`) {
		t.Errorf("log line: %s", logs.String())
	}

	counter, err := tel.MeterProvider.Meter("t").Int64Counter("bankbridge.test.calls")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 1, metric.WithAttributes(attribute.String("rpc.method", unknown),
		attribute.String(telemetry.AttrReason, "RATE_LIMITED"), attribute.String("bankbridge.merchant", "Nordic Outdoor"),
		attribute.Int("bankbridge.attempt", 3)))
	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	var line string
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "bankbridge_test_calls_total{") {
			line = l
		}
	}
	if line == "" || strings.Contains(line, leakIBAN) || strings.Contains(line, "Nordic") ||
		!strings.Contains(line, `bankbridge_reason="RATE_LIMITED"`) || !strings.Contains(line, `bankbridge_attempt="3"`) {
		t.Errorf("metric line %q: want the unknown method and the unvetted text dropped, the reason and the count kept", line)
	}
}

// TestFreeTextIsScrubbedInLogs: an error's text keeps what on-call needs
// and loses what is shaped like personal data or a credential; text under
// a bankbridge.* key nobody vetted is redacted, a number under one kept.
func TestFreeTextIsScrubbedInLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	cause := errors.New("insert into payments (iban, amount) values (" + leakIBAN + ", " + leakAmount + "): dial tcp 127.0.0.1:5432: connection refused; Authorization: Bearer " + leakToken)
	log.Error("unexpected error", slog.Any("error", cause), slog.String("panic", "card 4111 1111 1111 1111"),
		slog.String("bankbridge.merchant_name", "Nordic Outdoor"), slog.Int("bankbridge.count", 42))
	out := buf.String()
	for _, leak := range append(leaks, "4111 1111", "Nordic Outdoor") {
		if strings.Contains(out, leak) {
			t.Errorf("log carries %q:\n%s", leak, out)
		}
	}
	for _, kept := range []string{"dial tcp 127.0.0.1:5432: connection refused", `"bankbridge.count":42`, `"bankbridge.merchant_name":"[redacted]"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("log lost %q:\n%s", kept, out)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"dial tcp 127.0.0.1:5432: connect: connection refused", "dial tcp 127.0.0.1:5432: connect: connection refused"},
		{"rpc error: code = Unavailable desc = upstream 503 after 3 attempts", "rpc error: code = Unavailable desc = upstream 503 after 3 attempts"},
		{"grpc v1.84.0 at main.go:123", "grpc v1.84.0 at main.go:123"},
		{"iban " + leakIBAN + " refused", "iban [redacted] refused"},
		{"iban DE89 3704 0044 0532 0130 00 refused", "iban [redacted] refused"},
		{"balance is 1.234,56 today", "balance is [redacted] today"},
		{"paid " + leakAmount, "paid [redacted]"},
		{"paid EUR 59", "paid [redacted]"},
		{"paid 59,99 €", "paid [redacted]"},
		{"amount=5999", "amount=[redacted]"},
		{"Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"},
		{"token " + leakToken, "token [redacted]"},
		{"db password=hunter2 failed", "db password=[redacted] failed"},
		{"postgres://app:hunter2@db:5432/x", "postgres://app:[redacted]@db:5432/x"},
		{"code=123456 wrong", "code=[redacted] wrong"},
		{"mail alice@example.com bounced", "mail [redacted] bounced"},
		{"card 4111111111111111", "card [redacted]"},
		{"phone +49 170 1234567", "phone +[redacted]"},
	}
	for _, tt := range tests {
		if got := telemetry.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
