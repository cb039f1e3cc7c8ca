package server

import (
	"context"
	"log/slog"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
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
// credentials grant — and names its user in the request instead. Internal
// methods take only tokens of the internal audience (--internal-audience),
// whose subject is the calling service itself (sub == azp, one of
// --internal-clients), and no other method takes such a token: a user's
// token, or a product's, never reaches an internal method, and a service's
// token never acts for a user. A valid token of the other audience is
// refused like any client's call it is not for: PERMISSION_DENIED,
// CLIENT_NOT_ALLOWED (a token of neither audience, or of both, the
// verifier refuses as TOKEN_INVALID). A client
// call (AUDIENCE_CLIENT: a product team managing its own resources, such as
// webhook endpoints) must carry the client's own client-credentials token,
// never a user's, and is bound to that client: a name under another
// clients/{client} is refused. Client calls read no user's data, so they
// declare no purpose and pass no consent check; they are logged like every
// call.
//
// A partner call (AUDIENCE_PARTNER: a payment provider, merchant or carrier
// pushing data) must carry a client-credentials token of a client
// configured as a partner (--partner-clients) and is bound to that client
// like a client call. Partners write, never read: a token whose client is a
// partner, whatever its subject, is refused by every method that is not a
// partner method (public, client and internal alike), so a partner cannot
// read what it pushed nor act for a user. Partner calls, like client calls,
// declare no purpose and pass no consent check.
//
// An operator call (AUDIENCE_OPERATOR: bankbridge's on-call looking up what
// a trace touched) must carry a client-credentials token of a client
// configured as an operator (--operator-clients), and an operator's token
// is refused by every other method, as a partner's is. This is an audience
// and a client list, not a roles claim: the kit already decides who may
// call what by the service's audience and the token's client, the identity
// provider need issue nothing new, and an operator tool, like a partner, is
// one client whose token can do nothing else. Operator methods name no
// user, so nothing is bound; the service records each look-up in the
// affected users' logs itself.
//
// Refusals here never reach a user's access log: a caller without a valid
// token, or naming another user, could otherwise write into anyone's log.
// They go to the security log (a WARN line with bankbridge.log_type=security) and the
// metric bankbridge.security.refusals, by method and reason.
type authenticator struct {
	verifier        *auth.Verifier
	methods         access.Methods
	internalClients map[string]bool
	partners        map[string]bool
	operators       map[string]bool
	security        *slog.Logger
	refusals        metric.Int64Counter
}

func (a authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	p, err := a.verifier.Verify(ctx, bearer(ctx))
	if err != nil {
		a.refuse(ctx, method, "", err)
		return ctx, err
	}
	aud := a.audience(method)
	partner := a.partners[p.Client]
	switch {
	case aud == commonv1.Audience_AUDIENCE_PARTNER && !partner:
		return ctx, a.clientNotAllowed(ctx, method, p, "only configured partners may call partner methods")
	case aud != commonv1.Audience_AUDIENCE_PARTNER && partner:
		return ctx, a.clientNotAllowed(ctx, method, p, "a partner's token may call partner methods only")
	}
	switch operator := a.operators[p.Client]; {
	case aud == commonv1.Audience_AUDIENCE_OPERATOR && !operator:
		return ctx, a.clientNotAllowed(ctx, method, p, "only configured operator clients may call operator methods")
	case aud != commonv1.Audience_AUDIENCE_OPERATOR && operator:
		return ctx, a.clientNotAllowed(ctx, method, p, "an operator's token may call operator methods only")
	}
	switch {
	case p.Internal && aud != commonv1.Audience_AUDIENCE_INTERNAL:
		return ctx, a.clientNotAllowed(ctx, method, p, "an internal token (audience "+a.verifier.InternalAudience()+") is taken by internal methods only")
	case !p.Internal && aud == commonv1.Audience_AUDIENCE_INTERNAL:
		return ctx, a.clientNotAllowed(ctx, method, p, "internal methods take only a bankbridge service's token of the internal audience")
	}
	switch aud {
	case commonv1.Audience_AUDIENCE_INTERNAL:
		if !p.ClientCredentials() || !a.internalClients[p.Client] {
			return ctx, a.clientNotAllowed(ctx, method, p, "only bankbridge services may call internal methods, with their own client-credentials tokens")
		}
	case commonv1.Audience_AUDIENCE_CLIENT, commonv1.Audience_AUDIENCE_PARTNER, commonv1.Audience_AUDIENCE_OPERATOR:
		if !p.ClientCredentials() {
			return ctx, a.clientNotAllowed(ctx, method, p, "this method takes the client's own client-credentials token, not a user's")
		}
	}
	return auth.WithPrincipal(ctx, p), nil
}

// clientNotAllowed refuses the call for its client: PERMISSION_DENIED,
// CLIENT_NOT_ALLOWED, written to the security log.
func (a authenticator) clientNotAllowed(ctx context.Context, method string, p auth.Principal, msg string) error {
	err := apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, msg, apierr.WithMetadata("client_id", p.Client))
	a.refuse(ctx, method, p.Client, err)
	return err
}

// refuse writes the security log line and counts the refusal. It names the
// method, the reason and the client when known; never the token or the user.
func (a authenticator) refuse(ctx context.Context, method, client string, err error) {
	reason := apierr.ReasonString(apierr.Reason(err))
	a.security.WarnContext(ctx, "call refused before reaching user data",
		slog.String(telemetry.AttrLogType, "security"), slog.String("rpc.method", method),
		slog.String(telemetry.AttrReason, reason), slog.String(telemetry.AttrClientID, client))
	a.refusals.Add(ctx, 1, metric.WithAttributes(attribute.String("rpc.method", method), attribute.String(telemetry.AttrReason, reason)))
}

func (a authenticator) audience(method string) commonv1.Audience {
	return a.methods[method].Audience
}

func (a authenticator) internal(method string) bool {
	return a.audience(method) == commonv1.Audience_AUDIENCE_INTERNAL
}

// bind refuses a request whose name or parent names another user (public
// methods) or another client (client and partner methods).
func (a authenticator) bind(ctx context.Context, method string, req proto.Message) error {
	res, ok := access.ResourceOf(req)
	if !ok {
		return nil
	}
	p, _ := auth.PrincipalFrom(ctx)
	if aud := a.audience(method); aud == commonv1.Audience_AUDIENCE_CLIENT || aud == commonv1.Audience_AUDIENCE_PARTNER {
		if client, ok := names.ClientOf(res); ok && client != p.Client {
			return a.clientNotAllowed(ctx, method, p, "the request names a client other than the token's")
		}
		// A name outside clients/ is left to validation, whose pattern
		// for every client and partner method is rooted at clients/ (the
		// contract tests check it) and names the field.
		return nil
	}
	user, ok := names.UserOf(res)
	if !ok {
		// Leave a malformed or empty name to validation, which names the field.
		return nil
	}
	if user != p.User {
		err := apierr.New(commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH,
			"the request names a user other than the token's subject")
		a.refuse(ctx, method, p.Client, err)
		return err
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
			if err := a.bind(ctx, info.FullMethod, msg); err != nil {
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
		return handler(srv, &checkedStream{ServerStream: ss, ctx: ctx, check: func(ctx context.Context, req proto.Message) error {
			return a.bind(ctx, info.FullMethod, req)
		}})
	}
	return selector.StreamServerInterceptor(inner, selector.MatchFunc(needsAuth))
}
