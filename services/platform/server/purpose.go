package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// methodAudiences maps the full method names of the given services to the
// audience their contract declares (PUBLIC when unset). Public calls must
// declare a purpose and are bound to the token's user; internal calls come
// from bankbridge's own services.
func methodAudiences(services []string) map[string]commonv1.Audience {
	out := map[string]commonv1.Audience{}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		a := proto.GetExtension(sd.Options(), commonv1.E_Audience).(commonv1.Audience)
		if a == commonv1.Audience_AUDIENCE_UNSPECIFIED {
			a = commonv1.Audience_AUDIENCE_PUBLIC
		}
		for i := range sd.Methods().Len() {
			out["/"+name+"/"+string(sd.Methods().Get(i).Name())] = a
		}
	}
	return out
}

// policyCheck runs after validation, for public methods: the call must
// declare a known purpose in metadata; ADVERTISING and MARKETING are refused,
// then any purpose the client is not configured for; then the consent hook
// decides with the full access record.
func policyCheck(audiences map[string]commonv1.Audience, clients policy.Clients, consent policy.ConsentChecker) func(context.Context, string, proto.Message) error {
	return func(ctx context.Context, method string, req proto.Message) error {
		if audiences[method] != commonv1.Audience_AUDIENCE_PUBLIC {
			return nil
		}
		purpose, err := policy.PurposeFromContext(ctx)
		if err != nil {
			return err
		}
		a := policy.AccessFrom(ctx)
		if a == nil {
			a = &policy.Access{Method: method}
		}
		a.Purpose = purpose
		a.Request = req
		p, _ := auth.PrincipalFrom(ctx)
		if err := clients.CheckPurpose(p.Client, purpose); err != nil {
			return err
		}
		if consent == nil {
			return nil
		}
		return consent.CheckConsent(ctx, a)
	}
}

func policyUnary(check func(context.Context, string, proto.Message) error) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		msg, _ := req.(proto.Message)
		if err := check(ctx, info.FullMethod, msg); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func policyStream(check func(context.Context, string, proto.Message) error) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &checkedStream{ServerStream: ss, ctx: ss.Context(), check: func(ctx context.Context, req proto.Message) error {
			return check(ctx, info.FullMethod, req)
		}})
	}
}
