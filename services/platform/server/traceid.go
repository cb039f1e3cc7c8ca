package server

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TraceIDHeader carries the trace id back to the caller, so a product team
// can quote it to on-call; the gateway copies it to the HTTP response.
const TraceIDHeader = "x-trace-id"

func traceHeader(ctx context.Context) metadata.MD {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return nil
	}
	return metadata.Pairs(TraceIDHeader, sc.TraceID().String())
}

func traceIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if md := traceHeader(ctx); md != nil {
		_ = grpc.SetHeader(ctx, md)
	}
	return handler(ctx, req)
}

// traceIDStream sends the trace id with the stream's first header. A
// stream that ends before it sent one — refused by the chain, say — gets
// it in its trailer instead, so the refusal stays trailers-only, which is
// how a gRPC client, and the gateway, tell a stream that never opened
// from one that did: over REST, a refused stream then answers its own
// HTTP status (401, 403, 429, ...) rather than 200 and an error line.
func traceIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	md := traceHeader(ss.Context())
	if md == nil {
		return handler(srv, ss)
	}
	ts := &traceIDServerStream{ServerStream: ss, md: md}
	err := handler(srv, ts)
	if !ts.headerSet.Load() {
		ss.SetTrailer(md)
	}
	return err
}

// traceIDServerStream adds the trace id to the header when the handler
// sends one, explicitly or with its first message.
type traceIDServerStream struct {
	grpc.ServerStream
	md        metadata.MD
	headerSet atomic.Bool
}

func (s *traceIDServerStream) setHeader() {
	if s.headerSet.CompareAndSwap(false, true) {
		_ = s.ServerStream.SetHeader(s.md)
	}
}

func (s *traceIDServerStream) SendHeader(md metadata.MD) error {
	s.setHeader()
	return s.ServerStream.SendHeader(md)
}

func (s *traceIDServerStream) SendMsg(m any) error {
	s.setHeader()
	return s.ServerStream.SendMsg(m)
}
