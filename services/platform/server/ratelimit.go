package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// rateLimiter refuses a call over its caller's rate limit
// (platform/limits), once authn has said who calls and before anything
// else is done for it: RESOURCE_EXHAUSTED, RATE_LIMITED, with RetryInfo
// and the refusing policy in ErrorInfo.metadata (the gateway answers 429
// with Retry-After and RateLimit headers). Each public, client and partner
// method has a class from its contract (limits.ClassOf); a public call
// counts against its user and its client, a client or partner call
// against its client. A stream counts once, when it opens. Internal
// methods (bankbridge's own services) and health and reflection are not
// limited. Refusals go to the security log like authn's, naming the client
// and never the user; Redis keys name the user only by the pseudonymous
// subject id (New's limits.Options.UserKey).
type rateLimiter struct {
	limits  *limits.Limiter
	methods map[string]limitedMethod
	// refuse writes the security log line and counts the refusal (authn's).
	refuse func(ctx context.Context, method, client string, err error)
}

// limitedMethod is how the limits apply to one method.
type limitedMethod struct {
	class   limits.Class
	perUser bool
}

// limitedMethods derives the class of every public, client and partner
// method of the services. It refuses a public or client method without
// one (a unary method with no google.api.http rule): a limit the contract
// promises would not apply to it.
func limitedMethods(services []string, methods access.Methods) (map[string]limitedMethod, error) {
	out := map[string]limitedMethod{}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("rate limits: service %s: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("rate limits: %s is not a service", name)
		}
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + name + "/" + string(md.Name())
			aud := methods[full].Audience
			switch aud {
			case commonv1.Audience_AUDIENCE_PUBLIC, commonv1.Audience_AUDIENCE_CLIENT, commonv1.Audience_AUDIENCE_PARTNER:
			default:
				continue
			}
			class, ok := limits.ClassOf(md)
			if !ok {
				return nil, fmt.Errorf("rate limits: %s method %s has no rate-limit class (a unary method needs a google.api.http rule); refusing to serve it",
					strings.ToLower(strings.TrimPrefix(aud.String(), "AUDIENCE_")), md.FullName())
			}
			out[full] = limitedMethod{class: class, perUser: aud == commonv1.Audience_AUDIENCE_PUBLIC}
		}
	}
	return out, nil
}

func (l rateLimiter) check(ctx context.Context, method string) error {
	m, ok := l.methods[method]
	if !ok {
		return nil
	}
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return nil // unreachable: authn ran and stopped every call without a principal
	}
	user := ""
	if m.perUser {
		user = p.User
	}
	refusal := l.limits.Allow(ctx, m.class, p.Client, user)
	if refusal == nil {
		return nil
	}
	err := refusal.Err()
	l.refuse(ctx, method, p.Client, err)
	return err
}

func (l rateLimiter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := l.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (l rateLimiter) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := l.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
