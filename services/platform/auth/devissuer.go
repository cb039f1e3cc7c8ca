package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrDevModeOff is returned when a dev issuer is asked for outside dev mode.
var ErrDevModeOff = errors.New("auth: the dev token issuer exists only in dev mode (BANKBRIDGE_DEV_MODE=true)")

// DefaultInternalAudience is the aud of the tokens bankbridge's own
// services present on internal methods, unless configured otherwise
// (--internal-audience).
const DefaultInternalAudience = "bankbridge-internal"

// DevIssuer is a token issuer for tests and the dev stack: it holds an
// ES256 key made at start, publishes its JWKS, and mints tokens for any user.
// It refuses to exist unless dev mode is on, so a production process cannot
// be talked into trusting it.
type DevIssuer struct {
	issuer, audience, internalAudience string
	key                                jwk.Key
	jwks                               []byte
}

// DevIssuerOption changes a dev issuer.
type DevIssuerOption func(*DevIssuer)

// WithInternalAudience sets the aud of the internal tokens the issuer
// mints (MintInternal, and /oauth/token asked for it); default
// DefaultInternalAudience.
func WithInternalAudience(aud string) DevIssuerOption {
	return func(d *DevIssuer) { d.internalAudience = aud }
}

// NewDevIssuer makes a dev issuer whose tokens carry iss issuer and aud
// audience (internal tokens: the internal audience); devMode must be true.
func NewDevIssuer(devMode bool, issuer, audience string, opts ...DevIssuerOption) (*DevIssuer, error) {
	if !devMode {
		return nil, ErrDevModeOff
	}
	d := &DevIssuer{issuer: issuer, audience: audience, internalAudience: DefaultInternalAudience}
	for _, o := range opts {
		o(d)
	}
	if d.internalAudience == "" || d.internalAudience == audience {
		return nil, fmt.Errorf("dev issuer: the internal audience %q must be set and differ from the public one", d.internalAudience)
	}
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	kid := fmt.Sprintf("dev-%d", time.Now().UnixNano())
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
		return nil, err
	}
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("dev issuer public key: %w", err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("dev issuer jwks: %w", err)
	}
	d.key, d.jwks = key, jwks
	return d, nil
}

// Issuer is the iss of every token minted.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience is the aud of the public tokens minted.
func (d *DevIssuer) Audience() string { return d.audience }

// InternalAudience is the aud of the internal tokens minted.
func (d *DevIssuer) InternalAudience() string { return d.internalAudience }

// JWKSHandler serves the issuer's public keys.
func (d *DevIssuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(d.jwks)
	})
}

// Mint returns a signed public token for user, acting through client,
// valid for ttl; with user == client it is the client's own
// client-credentials token.
func (d *DevIssuer) Mint(user, client string, ttl time.Duration) (string, error) {
	return d.mint(d.audience, user, client, ttl)
}

// MintInternal returns a signed internal token for a bankbridge service,
// as the client credentials grant gives it: sub and azp are client, aud is
// the internal audience.
func (d *DevIssuer) MintInternal(client string, ttl time.Duration) (string, error) {
	return d.mint(d.internalAudience, client, client, ttl)
}

func (d *DevIssuer) mint(audience, user, client string, ttl time.Duration) (string, error) {
	now := time.Now()
	tok, err := jwt.NewBuilder().
		Issuer(d.issuer).
		Audience([]string{audience}).
		Subject(user).
		Claim("azp", client).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(ttl)).
		Build()
	if err != nil {
		return "", fmt.Errorf("build dev token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), d.key))
	if err != nil {
		return "", fmt.Errorf("sign dev token: %w", err)
	}
	return string(signed), nil
}

// Sign signs any token with the issuer's key, for tests that need claims
// Mint would not write (another audience, a missing subject, ...).
func (d *DevIssuer) Sign(tok jwt.Token) (string, error) {
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), d.key))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return string(signed), nil
}

// JWKS returns the published key set document.
func (d *DevIssuer) JWKS() []byte { return d.jwks }

// TokenClients are the clients a dev token endpoint serves.
type TokenClients struct {
	// Secrets maps each client id to its secret.
	Secrets map[string]string
	// Internal are the clients that may ask for the internal audience:
	// bankbridge's own services, never a product or a partner.
	Internal map[string]bool
}

// TokenHandler is an OAuth 2.0 token endpoint for the client credentials
// grant (RFC 6749 §4.4), as an identity provider offers it to services:
// bankbridge's own services get their service tokens here in dev, and
// partners and product clients their own. The token's sub and azp are the
// client id; its aud is the public audience, or the internal one when the
// request asks for it with the audience parameter (as Auth0 and Okta take
// it) and the client is one of clients.Internal; any other audience is
// refused with invalid_target (RFC 8707).
func (d *DevIssuer) TokenHandler(clients TokenClients, ttl time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		want, known := clients.Secrets[id]
		if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		aud := d.audience
		switch asked := r.PostForm.Get("audience"); asked {
		case "", d.audience:
		case d.internalAudience:
			if !clients.Internal[id] {
				writeOAuthError(w, http.StatusBadRequest, "invalid_target")
				return
			}
			aud = asked
		default:
			writeOAuthError(w, http.StatusBadRequest, "invalid_target")
			return
		}
		tok, err := d.mint(aud, id, id, ttl)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl.Seconds())})
	})
}

func writeOAuthError(w http.ResponseWriter, code int, e string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e})
}
