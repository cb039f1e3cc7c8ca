package e2e

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// The stack exports its spans to the real OpenTelemetry Collector that
// deploy/otelcol builds (bin/otelcol), run with the shipped
// deploy/otelcol/config.yaml, whose OTLP exporter points at collector
// below: so what the tests scan for personal data is what the collector
// lets out, after its redaction processor, as a tracing backend would
// store it.

// collector is a real OTLP/gRPC trace endpoint that keeps what it receives.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

// span is one received span with the service that sent it.
type span struct {
	service string
	traceID string
	name    string
	kind    tracepb.Span_SpanKind
	attrs   []*commonpb.KeyValue
	events  []*tracepb.Span_Event
	status  string // the status description
}

// texts are every text of s a reader of the telemetry sees: its name,
// status description, attributes, and events' names and attributes.
func (s span) texts() []string {
	out := []string{s.name, s.status}
	for _, kv := range s.attrs {
		out = append(out, kv.GetKey()+"="+kv.GetValue().String())
	}
	for _, e := range s.events {
		out = append(out, e.GetName())
		for _, kv := range e.GetAttributes() {
			out = append(out, kv.GetKey()+"="+kv.GetValue().String())
		}
	}
	return out
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, span{
					service: service, traceID: hex.EncodeToString(s.GetTraceId()), name: s.GetName(),
					kind: s.GetKind(), attrs: s.GetAttributes(), events: s.GetEvents(), status: s.GetStatus().GetMessage(),
				})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) all() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

func (c *collector) trace(id string) []span {
	var out []span
	for _, s := range c.all() {
		if s.traceID == id {
			out = append(out, s)
		}
	}
	return out
}

// startCollector listens on 127.0.0.1 and returns its address.
func startCollector(tb testing.TB) (*collector, string) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &collector{}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return c, lis.Addr().String()
}

// otelcolBinEnv names the collector binary; `make test-go` sets it, and
// by default it is bin/otelcol under the repository's root.
const otelcolBinEnv = "BANKBRIDGE_OTELCOL_BIN"

// startOtelcol runs the real collector with the shipped config, exporting
// to downstream (host:port, OTLP/gRPC without TLS), its output to logs, and
// returns the address of its OTLP/gRPC receiver once it listens. Cleanup
// stops it with SIGTERM, which flushes its batches.
func startOtelcol(tb testing.TB, root, downstream string, logs io.Writer) (string, error) {
	bin := os.Getenv(otelcolBinEnv)
	if bin == "" {
		bin = filepath.Join(root, "bin", "otelcol")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no OpenTelemetry Collector binary at %s: run `make otelcol` (or set %s)", bin, otelcolBinEnv)
	}
	var addrs [3]string
	for i := range addrs {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addrs[i] = lis.Addr().String()
		lis.Close()
	}
	grpcAddr, httpAddr, metricsAddr := addrs[0], addrs[1], addrs[2]
	_, metricsPort, _ := net.SplitHostPort(metricsAddr)
	cmd := exec.Command(bin, "--config", filepath.Join(root, "deploy", "otelcol", "config.yaml"))
	cmd.Env = append(os.Environ(),
		"BANKBRIDGE_OTELCOL_GRPC_ENDPOINT="+grpcAddr,
		"BANKBRIDGE_OTELCOL_HTTP_ENDPOINT="+httpAddr,
		"BANKBRIDGE_OTELCOL_METRICS_HOST=127.0.0.1",
		"BANKBRIDGE_OTELCOL_METRICS_PORT="+metricsPort,
		"BANKBRIDGE_OTELCOL_EXPORT_ENDPOINT="+downstream,
		"BANKBRIDGE_OTELCOL_EXPORT_INSECURE=true",
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("otelcol: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			return "", fmt.Errorf("otelcol exited: %w", err)
		default:
		}
		if c, err := net.Dial("tcp", grpcAddr); err == nil {
			c.Close()
			return grpcAddr, nil
		}
	}
	return "", errors.New("otelcol: its OTLP receiver is not listening after a minute")
}

// TestSpansPassTheCollector checks that the spans the personal-data scans
// read (notInTelemetry) are the collector's output, not the services':
// the gateway sends its server span with attribute keys outside the
// allow-list (their values already redacted by the gateway itself), and
// the collector's redaction processor removes those keys and says how many
// it removed, which only it does.
func TestSpansPassTheCollector(t *testing.T) {
	alice := devToken(t, "alice")
	id := traceOf(t, call(t, http.MethodGet, "/v1/users/alice/accounts", alice, "ACCOUNT_INFORMATION", nil))
	waitForTrace(t, id, "gateway")
	var removed int64
	for _, s := range shared.spans.trace(id) {
		for _, kv := range s.attrs {
			if kv.GetKey() == "redaction.redacted.count" {
				removed += kv.GetValue().GetIntValue()
			}
		}
	}
	if removed == 0 {
		t.Fatalf("no span of trace %s says the collector removed a key: did the stack export around it?", id)
	}
}
