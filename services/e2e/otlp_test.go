package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

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
