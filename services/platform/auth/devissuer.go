package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// DevIssuer is a token issuer for tests and the dev stack: it holds an
// ES256 key made at start, publishes its JWKS, and mints tokens for any user.
// It refuses to exist unless dev mode is on, so a production process cannot
// be talked into trusting it.
type DevIssuer struct {
	issuer, audience string
	key              jwk.Key
	jwks             []byte
}

// NewDevIssuer makes a dev issuer whose tokens carry iss issuer and aud
// audience; devMode must be true.
func NewDevIssuer(devMode bool, issuer, audience string) (*DevIssuer, error) {
	if !devMode {
		return nil, ErrDevModeOff
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
	return &DevIssuer{issuer: issuer, audience: audience, key: key, jwks: jwks}, nil
}

// Issuer is the iss of every token minted.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience is the aud of every token minted.
func (d *DevIssuer) Audience() string { return d.audience }

// JWKSHandler serves the issuer's public keys.
func (d *DevIssuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(d.jwks)
	})
}

// Mint returns a signed token for user, acting through client, valid for ttl.
func (d *DevIssuer) Mint(user, client string, ttl time.Duration) (string, error) {
	now := time.Now()
	tok, err := jwt.NewBuilder().
		Issuer(d.issuer).
		Audience([]string{d.audience}).
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
