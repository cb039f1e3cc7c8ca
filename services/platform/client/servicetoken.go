package client

import (
	"context"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/credentials"
)

// ServiceToken authenticates bankbridge's own service-to-service calls with
// a token from the identity provider's client credentials grant, cached and
// renewed by golang.org/x/oauth2 before it expires.
type ServiceToken struct {
	source oauth2.TokenSource
}

// NewServiceToken returns per-RPC credentials for the client id and secret
// at tokenURL, for audience: the internal audience
// (server.Config.InternalAudience), which internal methods take and no
// other method does. It asks for it with the audience parameter of the
// token request, as Auth0 and Okta read it; an identity provider that
// sets the audience by client instead ignores it.
func NewServiceToken(ctx context.Context, tokenURL, clientID, clientSecret, audience string) *ServiceToken {
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL}
	if audience != "" {
		cfg.EndpointParams = url.Values{"audience": {audience}}
	}
	return &ServiceToken{source: cfg.TokenSource(ctx)}
}

// GetRequestMetadata adds the bearer token.
func (s *ServiceToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := s.source.Token()
	if err != nil {
		return nil, fmt.Errorf("service token: %w", err)
	}
	return map[string]string{"authorization": "Bearer " + tok.AccessToken}, nil
}

// RequireTransportSecurity is false so loopback dev stacks work; production
// deployments dial with TLS (Options.TransportCredentials).
func (s *ServiceToken) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = (*ServiceToken)(nil)
