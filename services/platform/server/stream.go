package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// checkedStream lets a stream interceptor do what its unary twin does with
// the request: the checks run on each message the handler receives (a
// server-streaming handler receives its one request before it sends
// anything), and the context can carry values for the handler.
type checkedStream struct {
	grpc.ServerStream
	ctx   context.Context
	check func(ctx context.Context, req proto.Message) error
}

func (s *checkedStream) Context() context.Context { return s.ctx }

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.check == nil {
		return nil
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	return s.check(s.ctx, msg)
}

// unaryCheck and streamCheck build an interceptor pair from one check.
func unaryCheck(check func(ctx context.Context, req proto.Message) error) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if msg, ok := req.(proto.Message); ok {
			if err := check(ctx, msg); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

func streamCheck(check func(ctx context.Context, req proto.Message) error) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &checkedStream{ServerStream: ss, ctx: ss.Context(), check: check})
	}
}
