package server

import (
	"context"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// Methods of these services answer without a token: probes and tooling.
var unauthenticatedServices = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

func needsAuth(_ context.Context, c interceptors.CallMeta) bool {
	for _, prefix := range unauthenticatedServices {
		if strings.HasPrefix(c.FullMethod(), prefix) {
			return false
		}
	}
	return true
}

// bearer returns the token of the authorization metadata.
func bearer(ctx context.Context) string {
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		scheme, token, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(token)
		}
	}
	return ""
}

// authenticator verifies the bearer token. A public call is then bound to
// the token's user; an internal call (a service the contract marks
// AUDIENCE_INTERNAL) must come from one of the configured internal clients —
// bankbridge's own services, with tokens from the identity provider's client
// credentials grant — and names its user in the request instead.
type authenticator struct {
	verifier        *auth.Verifier
	audiences       map[string]commonv1.Audience
	internalClients map[string]bool
}

func (a authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	p, err := a.verifier.Verify(ctx, bearer(ctx))
	if err != nil {
		return ctx, err
	}
	if a.internal(method) && !a.internalClients[p.Client] {
		return ctx, apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
			"only bankbridge services may call internal methods", apierr.WithMetadata("client_id", p.Client))
	}
	if acc := policy.AccessFrom(ctx); acc != nil {
		acc.Principal = p
	}
	return auth.WithPrincipal(ctx, p), nil
}

func (a authenticator) internal(method string) bool {
	return a.audiences[method] == commonv1.Audience_AUDIENCE_INTERNAL
}

// bind refuses a request whose name or parent names another user.
func bind(ctx context.Context, req proto.Message) error {
	res, ok := policy.ResourceOf(req)
	if !ok {
		return nil
	}
	p, _ := auth.PrincipalFrom(ctx)
	user, ok := auth.UserOf(res)
	if !ok {
		// Leave a malformed or empty name to validation, which names the field.
		return nil
	}
	if user != p.User {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH,
			"the request names a user other than the token's subject")
	}
	return nil
}

func (a authenticator) unary() grpc.UnaryServerInterceptor {
	inner := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if msg, ok := req.(proto.Message); ok && !a.internal(info.FullMethod) {
			if err := bind(ctx, msg); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
	return selector.UnaryServerInterceptor(inner, selector.MatchFunc(needsAuth))
}

func (a authenticator) stream() grpc.StreamServerInterceptor {
	inner := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if a.internal(info.FullMethod) {
			return handler(srv, &checkedStream{ServerStream: ss, ctx: ctx})
		}
		return handler(srv, &checkedStream{ServerStream: ss, ctx: ctx, check: bind})
	}
	return selector.StreamServerInterceptor(inner, selector.MatchFunc(needsAuth))
}
