// Package auth verifies the bearer tokens callers present and binds each
// call to one user and one client.
//
// A token is a JWT signed by the identity provider and verified against its
// JWKS: the algorithm must be on the allow-list (never "none", never an HMAC
// algorithm, so a public key cannot double as a shared secret), and iss, aud,
// exp and nbf are checked with a small leeway. Keys are cached and refreshed;
// a token signed by a key the cache does not know yet triggers one refresh,
// so a rotation at the provider is picked up without a restart.
//
// The token's sub is the user, its azp (or client_id) the calling client.
// Two audiences are accepted, never both in one token: the public one
// (Config.Audience), of tokens product teams and partners present, and the
// internal one (Config.InternalAudience), of the client-credentials tokens
// bankbridge's own services obtain for internal methods; the principal says
// which (Principal.Internal), and the server kit refuses a token of one
// audience on the other's methods, so that a token leaked by a product
// cannot call internal methods nor a service token act for a user.
// Every public request names its user in `name` or `parent`
// (users/{user}/...); a user other than sub is refused with
// PERMISSION_DENIED, reason USER_MISMATCH, on gRPC and REST alike.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/sync/singleflight"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Config says which tokens to accept.
type Config struct {
	// Issuer is the required iss claim.
	Issuer string
	// Audience is the aud claim of public tokens (the bankbridge API
	// identifier).
	Audience string
	// InternalAudience is the aud claim of the tokens bankbridge's own
	// services present on internal methods; empty accepts none. It must
	// differ from Audience.
	InternalAudience string
	// JWKSURL is where the issuer publishes its public keys.
	JWKSURL string
	// Algorithms is the allow-list of JWS algorithms; default RS256, ES256,
	// EdDSA. HMAC algorithms and "none" are refused even if listed.
	Algorithms []string
	// Leeway absorbs clock skew on exp and nbf; default 30s, at most 5m.
	Leeway time.Duration
	// MinRefresh is the shortest interval between two JWKS fetches, including
	// fetches forced by an unknown key id; default 1m.
	MinRefresh time.Duration
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
	// TokenCacheSize bounds the cache of verified tokens (see Verify);
	// default 10,000 tokens, negative disables the cache.
	TokenCacheSize int
	// Now is the clock exp and nbf are checked against; default time.Now.
	// Tests set it to move past a token's expiry without waiting.
	Now func() time.Time
}

// Principal is who is calling: the user the token is bound to and the
// client acting for them.
type Principal struct {
	User   string
	Client string
	Expiry time.Time
	// Internal is set for a token of the internal audience
	// (Config.InternalAudience), which only internal methods take.
	Internal bool
}

// ClientCredentials reports a token a client obtained for itself with the
// OAuth 2.0 client credentials grant, acting for no user: its sub is its
// own client id, as RFC 9068 (section 2.2) asks of such tokens and as the
// dev issuer's token endpoint mints them. Only such a token may call a
// client's own methods (AUDIENCE_CLIENT) and, for a configured partner,
// the partner methods (AUDIENCE_PARTNER); a user's token never can.
func (p Principal) ClientCredentials() bool { return p.User != "" && p.User == p.Client }

// Verifier checks tokens against the issuer's JWKS.
type Verifier struct {
	cfg    Config
	algs   []jwa.SignatureAlgorithm
	cache  *jwk.Cache
	tokens *tokenCache // nil when disabled

	mu          sync.Mutex
	lastRefresh time.Time
	// refreshes joins the callers that need the keys fetched to the one
	// fetch in flight: at start-up a burst of first calls all lack the
	// keys, and only one may fetch (MinRefresh), but all wait for it.
	refreshes singleflight.Group
}

var refusedAlgorithms = map[string]bool{"none": true, "HS256": true, "HS384": true, "HS512": true}

// NewVerifier validates cfg and registers the JWKS for background refresh.
// It does not wait for the first fetch: a token that arrives before the keys
// do is refused as invalid, and the keys are fetched again.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.JWKSURL == "" {
		return nil, errors.New("auth: Issuer, Audience and JWKSURL are required")
	}
	if cfg.InternalAudience == cfg.Audience {
		return nil, fmt.Errorf("auth: the internal audience must differ from the public one (%q): a token for one would call the other's methods", cfg.Audience)
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("auth: leeway %s is outside 0..5m", cfg.Leeway)
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = defaultTokenCacheSize
	}
	v := &Verifier{cfg: cfg}
	if cfg.TokenCacheSize > 0 {
		v.tokens = newTokenCache(cfg.TokenCacheSize)
	}
	for _, name := range cfg.Algorithms {
		if refusedAlgorithms[name] {
			return nil, fmt.Errorf("auth: algorithm %q may not be allowed", name)
		}
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok {
			return nil, fmt.Errorf("auth: unknown algorithm %q", name)
		}
		v.algs = append(v.algs, alg)
	}
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("auth: jwks cache: %w", err)
	}
	if err := cache.Register(ctx, cfg.JWKSURL,
		jwk.WithMinInterval(cfg.MinRefresh),
		jwk.WithMaxInterval(max(cfg.MinRefresh, 15*time.Minute)),
		jwk.WithWaitReady(false),
		jwk.WithHTTPClient(cfg.HTTPClient),
	); err != nil {
		return nil, fmt.Errorf("auth: register jwks %s: %w", cfg.JWKSURL, err)
	}
	v.cache = cache
	return v, nil
}

func tokenInvalid(msg string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, msg)
}

// Verify checks a raw JWT and returns its principal, or an UNAUTHENTICATED
// error with reason TOKEN_INVALID or TOKEN_EXPIRED. The error never quotes
// the token.
//
// A token that passed is remembered (under the SHA-256 of its bytes) for
// at most tokenCacheTTL, so that the signature of a token presented on
// every call is checked once rather than on every call: ES256 verification
// was the largest item of a service's CPU profile. A remembered token is
// still refused once it expires, and once the key that signed it is no
// longer the one the JWKS publishes under its key id (a rotation or a
// revocation at the provider).
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, tokenInvalid("missing bearer token")
	}
	var sum [sha256.Size]byte
	if v.tokens != nil {
		sum = sha256.Sum256([]byte(raw))
		if e, ok := v.tokens.get(sum); ok {
			p, hit, err := v.fromCache(ctx, sum, e)
			if hit {
				return p, err
			}
		}
	}
	msg, err := jws.Parse([]byte(raw))
	if err != nil || len(msg.Signatures()) != 1 {
		return Principal{}, tokenInvalid("bearer token is not a signed JWT")
	}
	alg, ok := msg.Signatures()[0].ProtectedHeaders().Algorithm()
	if !ok || !slices.Contains(v.algs, alg) {
		return Principal{}, tokenInvalid("bearer token algorithm is not allowed")
	}
	kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()

	set, err := v.keys(ctx, kid)
	if err != nil {
		return Principal{}, err
	}
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
		jwt.WithAcceptableSkew(v.cfg.Leeway),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
	)
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return Principal{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, "bearer token has expired")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return Principal{}, tokenInvalid("bearer token has the wrong issuer")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return Principal{}, tokenInvalid("bearer token is not valid yet")
	case err != nil:
		return Principal{}, tokenInvalid("bearer token failed verification")
	}
	p := Principal{}
	aud, _ := tok.Audience()
	public, internal := slices.Contains(aud, v.cfg.Audience), v.cfg.InternalAudience != "" && slices.Contains(aud, v.cfg.InternalAudience)
	if public == internal {
		// Neither, or both: a token good for public and internal methods
		// alike would undo their separation.
		return Principal{}, tokenInvalid("bearer token has the wrong audience")
	}
	p.Internal = internal
	p.User, _ = tok.Subject()
	p.Expiry, _ = tok.Expiration()
	for _, claim := range []string{"azp", "client_id"} {
		var c string
		if tok.Get(claim, &c) == nil && c != "" {
			p.Client = c
			break
		}
	}
	if p.User == "" || p.Client == "" {
		return Principal{}, tokenInvalid("bearer token lacks sub or azp/client_id")
	}
	if v.tokens != nil && kid != "" {
		// Remember which key verified it: a hit is honoured only while
		// the JWKS still publishes that very key under kid.
		if key, ok := set.LookupKeyID(kid); ok {
			v.tokens.put(sum, p, kid, key, v.cfg.Now())
		}
	}
	return p, nil
}

// fromCache answers for a remembered token: hit is false when the token
// must be verified afresh (its key was replaced, or the JWKS cannot be read
// right now), in which case the entry has been dropped.
func (v *Verifier) fromCache(ctx context.Context, sum [sha256.Size]byte, e *cachedToken) (p Principal, hit bool, err error) {
	now := v.cfg.Now()
	if !now.Before(e.principal.Expiry.Add(v.cfg.Leeway)) {
		v.tokens.remove(sum)
		return Principal{}, true, apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, "bearer token has expired")
	}
	if now.After(e.until) {
		v.tokens.remove(sum)
		return Principal{}, false, nil
	}
	set, lerr := v.cache.Lookup(ctx, v.cfg.JWKSURL)
	if lerr != nil {
		v.tokens.remove(sum)
		return Principal{}, false, nil
	}
	if key, ok := set.LookupKeyID(e.kid); !ok || key != e.key {
		// The key left the JWKS, or the set was fetched again: the full
		// check decides (and re-remembers the token if the key is the
		// same one, re-published).
		v.tokens.remove(sum)
		return Principal{}, false, nil
	}
	return e.principal, true, nil
}

// keys returns the cached JWKS, refreshing it (at most once per MinRefresh)
// when it lacks kid: that is how a rotated key is picked up.
func (v *Verifier) keys(ctx context.Context, kid string) (jwk.Set, error) {
	set, err := v.cache.Lookup(ctx, v.cfg.JWKSURL)
	if err == nil && (kid == "" || hasKey(set, kid)) {
		return set, nil
	}
	fresh, ferr, _ := v.refreshes.Do("", func() (any, error) {
		v.mu.Lock()
		due := time.Since(v.lastRefresh) >= v.cfg.MinRefresh
		if due {
			v.lastRefresh = time.Now()
		}
		v.mu.Unlock()
		if !due {
			return nil, errRefreshNotDue
		}
		return v.cache.Refresh(ctx, v.cfg.JWKSURL)
	})
	if ferr == nil {
		return fresh.(jwk.Set), nil
	}
	if err != nil {
		return nil, tokenInvalid("signing keys are not available yet")
	}
	return set, nil
}

// errRefreshNotDue: the keys were fetched less than MinRefresh ago.
var errRefreshNotDue = errors.New("auth: JWKS refreshed less than MinRefresh ago")

func hasKey(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the auth interceptor put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// InternalAudience is the aud of the tokens the verifier accepts as
// internal (Config.InternalAudience).
func (v *Verifier) InternalAudience() string { return v.cfg.InternalAudience }

// Close stops the background JWKS refresh.
func (v *Verifier) Close(ctx context.Context) error { return v.cache.Shutdown(ctx) }
