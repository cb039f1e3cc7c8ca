package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// These tests run the real collector binary (make otelcol builds it) with
// the shipped config.yaml, between a client and a real OTLP/gRPC receiver,
// both on 127.0.0.1, and look at what reaches the receiver.

// Personal data the test spans carry: a card number (Visa's test PAN), an
// IBAN (the ECBS example), and the key and value of an attribute no
// allow-list knows.
const (
	pan        = "4111111111111111"
	panGrouped = "4111 1111 1111 1111"
	iban       = "DE89370400440532013000"
	ibanPrint  = "DE89 3704 0044 0532 0130 00"
	unknownKey = "bankbridge.customer_name"
	unknownVal = "Alice Example"
	maskedText = "[redacted]"
)

// TestCollectorRedactsPersonalData sends spans carrying a card number, an
// IBAN and an unknown attribute key through the collector, and checks what
// arrives downstream: the unknown key gone, the numbers masked, allowed keys
// and the span itself intact. The control case runs the same collector
// with the redaction processor taken out of the pipeline and expects the
// same check to find every leak, so the check is known to see them.
func TestCollectorRedactsPersonalData(t *testing.T) {
	bin := collectorBin(t)
	tests := []struct {
		name      string
		config    func(t *testing.T) string
		wantLeaks bool
	}{
		{name: "shipped config", config: func(*testing.T) string { return "config.yaml" }},
		{name: "control: redaction removed from the pipelines", config: withoutRedaction, wantLeaks: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			downstream, downAddr := startReceiver(t)
			grpcAddr := startCollector(t, bin, tt.config(t), downAddr)
			send(t, grpcAddr, testSpans())
			got := downstream.wait(t, 1)

			leaks := leaksIn(got)
			switch {
			case tt.wantLeaks && len(leaks) == 0:
				t.Fatal("without the redaction processor the check found no leak: it cannot see one")
			case !tt.wantLeaks:
				for _, l := range leaks {
					t.Error(l)
				}
			}
			if tt.wantLeaks {
				return
			}
			span := got[0].span
			want := map[string]string{
				"rpc.method":               "bankbridge.balance.v1.BalanceService/GetBalance",
				"rpc.response.status_code": "UNAVAILABLE",
				"bankbridge.bank_id":       "sandbox",
				"server.port":              "8443",
				"error":                    "bank said: card " + maskedText + " refused for " + maskedText,
				"bankbridge.field_path":    maskedText,
				"message.id":               maskedText,
			}
			for k, v := range want {
				if a, ok := span.Attributes().Get(k); !ok || a.AsString() != v {
					t.Errorf("attribute %s = %q (present %v), want %q", k, a.AsString(), ok, v)
				}
			}
			if span.Name() != "bankbridge.balance.v1.BalanceService/GetBalance" {
				t.Errorf("span name = %q", span.Name())
			}
			if v, _ := got[0].resource.Get("service.name"); v.Str() != "balance" {
				t.Errorf("resource service.name = %q, want balance", v.Str())
			}
		})
	}
}

// testSpans is one span, as a service whose own allow-list failed would
// send it.
func testSpans() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "balance")
	rs.Resource().Attributes().PutStr("user.email", "alice@example.com")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("bankbridge.balance.v1.BalanceService/GetBalance")
	s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	s.SetKind(ptrace.SpanKindServer)
	now := time.Now()
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	a := s.Attributes()
	a.PutStr("rpc.method", "bankbridge.balance.v1.BalanceService/GetBalance")
	a.PutStr("rpc.response.status_code", "UNAVAILABLE")
	a.PutStr("bankbridge.bank_id", "sandbox")
	a.PutInt("server.port", 8443)
	// Allowed keys whose values are personal data: masked.
	a.PutStr("error", "bank said: card "+panGrouped+" refused for "+iban)
	a.PutStr("bankbridge.field_path", ibanPrint)
	a.PutInt("message.id", 4111111111111111) // a PAN sent as a number
	// A key no allow-list knows: removed, whatever its value.
	a.PutStr(unknownKey, unknownVal)
	e := s.Events().AppendEmpty()
	e.SetName("exception")
	e.Attributes().PutStr("exception.type", "*errors.errorString")
	e.Attributes().PutStr("exception.message", "no account "+pan)
	return td
}

// leaksIn lists each piece of personal data found in the received spans.
func leaksIn(got []received) []string {
	var leaks []string
	for _, r := range got {
		texts := []string{r.span.Name()}
		attrs := []pcommon.Map{r.resource, r.span.Attributes()}
		for i := range r.span.Events().Len() {
			attrs = append(attrs, r.span.Events().At(i).Attributes())
		}
		for _, m := range attrs {
			for k, v := range m.All() {
				texts = append(texts, k+"="+v.AsString())
			}
		}
		for _, text := range texts {
			for _, bad := range []string{pan, panGrouped, iban, ibanPrint, unknownKey, unknownVal, "alice@example.com"} {
				if strings.Contains(text, bad) {
					leaks = append(leaks, fmt.Sprintf("%q arrived downstream: %s", bad, text))
				}
			}
		}
	}
	return leaks
}

// collectorBin is the collector binary: $BANKBRIDGE_OTELCOL_BIN, or
// bin/otelcol at the repository's root. CI sets BANKBRIDGE_REQUIRE_OTELCOL=1,
// and then a missing binary fails the test instead of skipping it.
func collectorBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BANKBRIDGE_OTELCOL_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "otelcol")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("BANKBRIDGE_REQUIRE_OTELCOL") == "1" {
			t.Fatalf("no collector binary at %s (BANKBRIDGE_REQUIRE_OTELCOL=1): run make otelcol", bin)
		}
		t.Skipf("no collector binary at %s: run make otelcol", bin)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// withoutRedaction writes config.yaml with the redaction processor taken
// out of its pipelines and returns the copy's path.
func withoutRedaction(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const with, without = "processors: [memory_limiter, redaction, batch]", "processors: [memory_limiter, batch]"
	if !bytes.Contains(b, []byte(with)) {
		t.Fatalf("config.yaml has no pipeline %q to take redaction out of", with)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(with), []byte(without)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCollector runs the collector with config, exporting to downstream,
// and returns the address of its OTLP/gRPC receiver.
func startCollector(t *testing.T, bin, config, downstream string) string {
	t.Helper()
	grpcAddr := freeAddr(t)
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = append(os.Environ(),
		"BANKBRIDGE_OTELCOL_GRPC_ENDPOINT="+grpcAddr,
		"BANKBRIDGE_OTELCOL_HTTP_ENDPOINT="+freeAddr(t),
		"BANKBRIDGE_OTELCOL_METRICS_HOST=127.0.0.1",
		"BANKBRIDGE_OTELCOL_METRICS_PORT="+portOf(freeAddr(t)),
		"BANKBRIDGE_OTELCOL_EXPORT_ENDPOINT="+downstream,
		"BANKBRIDGE_OTELCOL_EXPORT_INSECURE=true",
	)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})
	// Ready when its receiver accepts connections.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("collector exited: %v\n%s", err, out.String())
		default:
		}
		if c, err := net.Dial("tcp", grpcAddr); err == nil {
			c.Close()
			return grpcAddr
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not listening on %s after 60s:\n%s", grpcAddr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// send exports td to the collector at addr over OTLP/gRPC.
func send(t *testing.T, addr string, td ptrace.Traces) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatalf("export to the collector: %v", err)
	}
}

// received is one span as it reached the downstream receiver.
type received struct {
	resource pcommon.Map
	span     ptrace.Span
}

// receiver is a real OTLP/gRPC trace endpoint that keeps what it gets.
type receiver struct {
	ptraceotlp.UnimplementedGRPCServer
	mu    sync.Mutex
	spans []received
	got   chan struct{}
}

func (r *receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		for j := range rs.ScopeSpans().Len() {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := range spans.Len() {
				r.spans = append(r.spans, received{resource: rs.Resource().Attributes(), span: spans.At(k)})
			}
		}
	}
	select {
	case r.got <- struct{}{}:
	default:
	}
	return ptraceotlp.NewExportResponse(), nil
}

// wait returns the spans received once there are at least n.
func (r *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		if len(r.spans) >= n {
			out := append([]received(nil), r.spans...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-timeout:
			t.Fatalf("no span reached the receiver in 30s")
		}
	}
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{got: make(chan struct{}, 1)}
	s := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(s, r)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return r, lis.Addr().String()
}

// freeAddr is a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
