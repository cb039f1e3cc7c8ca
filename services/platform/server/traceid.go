package server

import (
	"context"

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

func traceIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if md := traceHeader(ss.Context()); md != nil {
		_ = ss.SetHeader(md)
	}
	return handler(srv, ss)
}
