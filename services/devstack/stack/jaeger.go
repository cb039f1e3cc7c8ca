package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The dev stack's Jaeger ports when Options.FreePorts is off: Jaeger's own
// defaults, bound to 127.0.0.1 only.
const (
	defaultJaegerUIAddr    = "127.0.0.1:16686" // UI and query API (/api/traces/<id>)
	defaultJaegerQueryGRPC = "127.0.0.1:16685" // query API over gRPC
	defaultJaegerOTLPAddr  = "127.0.0.1:4317"  // OTLP/gRPC receiver
)

// jaegerConfig is Jaeger v2's configuration (an OpenTelemetry Collector
// configuration) for the dev stack: OTLP over gRPC in, in-memory storage,
// the UI and query API, and nothing else listening — Jaeger's default
// configuration opens a dozen ports on every interface, which would
// collide between two stacks on one machine (the end-to-end tests).
const jaegerConfig = `# Written by the dev stack (services/devstack/stack/jaeger.go).
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// startJaeger starts Jaeger (Options.JaegerBin) before anything that sends
// it spans, waits until its query API answers, and makes it the stack's
// OTLP endpoint.
func (s *Stack) startJaeger(ctx context.Context) error {
	ui, grpcQuery, otlp := defaultJaegerUIAddr, defaultJaegerQueryGRPC, defaultJaegerOTLPAddr
	if s.opts.FreePorts {
		ui, grpcQuery, otlp = mustFreeAddr(), mustFreeAddr(), mustFreeAddr()
	}
	cfg := filepath.Join(s.opts.DataDir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, ui, grpcQuery, otlp), 0o600); err != nil {
		return err
	}
	if err := s.start(ctx, "jaeger", s.opts.JaegerBin, nil, "--config="+cfg); err != nil {
		return err
	}
	s.JaegerURL = "http://" + ui
	if err := waitHTTP(ctx, http.DefaultClient, s.JaegerURL+"/api/services", 60*time.Second); err != nil {
		return fmt.Errorf("jaeger: %w", err)
	}
	s.OTLPEndpoint = otlp
	return nil
}

// otlpEnv points a process's span exporter at the stack's OTLP endpoint,
// if it has one: OTLP over gRPC without TLS, which is safe on loopback
// only, where the stack's endpoints are.
func (s *Stack) otlpEnv() []string {
	if s.OTLPEndpoint == "" {
		return nil
	}
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + s.OTLPEndpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_INSECURE=true",
	}
}
