package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// The audit interceptor sits before authentication, not after consent as
// the other checks do: a refused access must be recorded as surely as an
// allowed one. It puts an empty policy.Access in the context, the checks
// after it fill in who and why, and once the call ends the Auditor gets the
// record with the outcome. Calls that name no user (health, reflection) are
// not user data and are not audited.

func noteResource(a *policy.Access, req proto.Message) {
	if a == nil || a.Resource != "" {
		return
	}
	if res, ok := policy.ResourceOf(req); ok {
		a.Resource = res
		a.User, _ = auth.UserOf(res)
	}
}

func auditUnary(auditor policy.Auditor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		a := &policy.Access{Method: info.FullMethod}
		if msg, ok := req.(proto.Message); ok {
			noteResource(a, msg)
		}
		resp, err := handler(policy.WithAccess(ctx, a), req)
		if auditor != nil && a.User != "" {
			auditor.Audit(ctx, a, err)
		}
		return resp, err
	}
}

func auditStream(auditor policy.Auditor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		a := &policy.Access{Method: info.FullMethod}
		ctx := policy.WithAccess(ss.Context(), a)
		err := handler(srv, &checkedStream{ServerStream: ss, ctx: ctx, check: func(_ context.Context, req proto.Message) error {
			noteResource(a, req)
			return nil
		}})
		if auditor != nil && a.User != "" {
			auditor.Audit(ss.Context(), a, err)
		}
		return err
	}
}
