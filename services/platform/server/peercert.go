package server

import (
	"context"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
)

// peerCertCheck refuses a call to an internal method (AUDIENCE_INTERNAL)
// that does not come over a connection with a verified bankbridge client
// certificate naming the calling service: the token says which service
// calls, the certificate proves the connection is that service's, so a
// service token that leaked is of no use from anywhere else, and one
// service cannot call as another. A certificate is verified when it chains
// to the CA the listener trusts (Deps.TLS's ClientCAs); its identity is its
// subject common name, the service's name, which must be the token's
// client (authn runs first). Refused calls are PERMISSION_DENIED,
// CLIENT_NOT_ALLOWED, written to the security log like authn's refusals.
//
// It is off on a server without TLS (no Deps.TLS: dev mode's --plaintext,
// handler tests), which has no certificates to check.
type peerCertCheck struct {
	methods access.Methods
	off     bool
	refuse  func(ctx context.Context, method, client string, err error)
}

func (c peerCertCheck) check(ctx context.Context, method string) error {
	if c.off || c.methods[method].Audience != commonv1.Audience_AUDIENCE_INTERNAL {
		return nil
	}
	p, _ := auth.PrincipalFrom(ctx)
	var err error
	switch name, ok := verifiedPeerName(ctx); {
	case !ok:
		err = apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
			"internal methods take a connection with a verified bankbridge client certificate", apierr.WithMetadata("client_id", p.Client))
	case name != p.Client:
		err = apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED,
			"the client certificate names another service than the token", apierr.WithMetadata("client_id", p.Client))
	default:
		return nil
	}
	c.refuse(ctx, method, p.Client, err)
	return err
}

// verifiedPeerName is the common name of the connection's client
// certificate, when the TLS handshake verified one.
func verifiedPeerName(ctx context.Context) (string, bool) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return info.State.VerifiedChains[0][0].Subject.CommonName, true
}

func (c peerCertCheck) unary() grpc.UnaryServerInterceptor {
	inner := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := c.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	return selector.UnaryServerInterceptor(inner, selector.MatchFunc(needsAuth))
}

func (c peerCertCheck) stream() grpc.StreamServerInterceptor {
	inner := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := c.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return selector.StreamServerInterceptor(inner, selector.MatchFunc(needsAuth))
}
