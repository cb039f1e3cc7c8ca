package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// rotatingJWKS serves the JWKS of whichever issuer is current.
type rotatingJWKS struct {
	current atomic.Pointer[auth.DevIssuer]
	fetches atomic.Int32
}

func (r *rotatingJWKS) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.fetches.Add(1)
	r.current.Load().JWKSHandler().ServeHTTP(w, req)
}

func newIssuer(t *testing.T) *auth.DevIssuer {
	t.Helper()
	d, err := auth.NewDevIssuer(true, "https://issuer.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestKeyRotationIsPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newIssuer(t), newIssuer(t)
	jwks := &rotatingJWKS{}
	jwks.current.Store(oldKey)
	srv := httptest.NewServer(jwks)
	defer srv.Close()

	ctx := context.Background()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL, MinRefresh: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)

	tokOld, _ := oldKey.Mint("alice", "chat-app", time.Hour)
	tokNew, _ := newKey.Mint("alice", "chat-app", time.Hour)
	p, err := v.Verify(ctx, tokOld)
	if err != nil {
		t.Fatalf("token from the current key: %v", err)
	}
	if p.User != "alice" || p.Client != "chat-app" {
		t.Errorf("principal = %+v", p)
	}
	if _, err := v.Verify(ctx, tokNew); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID) {
		t.Fatalf("token from a key not yet published: err = %v, want TOKEN_INVALID", err)
	}

	jwks.current.Store(newKey) // the provider rotates
	if !testkit.Within(5*time.Second, func() bool {
		_, err = v.Verify(ctx, tokNew)
		return err == nil
	}) {
		t.Fatalf("token from the rotated key still refused: %v", err)
	}
	if n := jwks.fetches.Load(); n > 10 {
		t.Errorf("JWKS fetched %d times; unknown key ids must not cause a fetch storm", n)
	}
}

func TestVerifierConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  auth.Config
	}{
		{"no issuer", auth.Config{Audience: "a", JWKSURL: "http://x"}},
		{"HS256 on the allow-list", auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://x", Algorithms: []string{"HS256"}}},
		{"none on the allow-list", auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://x", Algorithms: []string{"none"}}},
		{"huge leeway", auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://x", Leeway: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := auth.NewVerifier(context.Background(), tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestDevIssuerRefusedOutsideDevMode(t *testing.T) {
	t.Parallel()
	if _, err := auth.NewDevIssuer(false, "i", "a"); !errors.Is(err, auth.ErrDevModeOff) {
		t.Fatalf("err = %v, want ErrDevModeOff", err)
	}
}

func TestMissingTokenIsUnauthenticated(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newIssuer(t).JWKSHandler())
	defer srv.Close()
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(context.Background())
	_, err = v.Verify(context.Background(), "")
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("code = %v", status.Code(err))
	}
}

// TestTheTwoAudiences: a token of the public audience is a public
// principal, one of the internal audience an internal one; a token of
// both, or of neither, is refused.
func TestTheTwoAudiences(t *testing.T) {
	t.Parallel()
	d := newIssuer(t)
	srv := httptest.NewServer(d.JWKSHandler())
	defer srv.Close()
	ctx := context.Background()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", InternalAudience: auth.DefaultInternalAudience, JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	sign := func(aud ...string) string {
		tok, err := jwt.NewBuilder().Issuer("https://issuer.test").Audience(aud).Subject("balance").Claim("azp", "balance").
			Expiration(time.Now().Add(time.Hour)).Build()
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.Sign(tok)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	public, _ := d.Mint("alice", "chat-app", time.Hour)
	internal, _ := d.MintInternal("balance", time.Hour)
	tests := []struct {
		name     string
		token    string
		internal bool
		refused  bool
	}{
		{"public", public, false, false},
		{"internal", internal, true, false},
		{"both", sign("bankbridge", auth.DefaultInternalAudience), false, true},
		{"neither", sign("someone-else"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(ctx, tt.token)
			if tt.refused {
				if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID) {
					t.Fatalf("err = %v, want TOKEN_INVALID", err)
				}
				return
			}
			if err != nil || p.Internal != tt.internal {
				t.Fatalf("principal %+v, err %v; want Internal = %v", p, err, tt.internal)
			}
		})
	}
	t.Run("a verifier without an internal audience takes no internal token", func(t *testing.T) {
		v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close(ctx)
		if _, err := v.Verify(ctx, internal); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID) {
			t.Fatalf("err = %v, want TOKEN_INVALID", err)
		}
	})
	t.Run("the same audience twice is refused at start", func(t *testing.T) {
		if _, err := auth.NewVerifier(ctx, auth.Config{Issuer: "i", Audience: "a", InternalAudience: "a", JWKSURL: "http://x"}); err == nil {
			t.Fatal("accepted")
		}
		if _, err := auth.NewDevIssuer(true, "i", "a", auth.WithInternalAudience("a")); err == nil {
			t.Fatal("dev issuer accepted")
		}
	})
}

// TestDevTokenEndpointAudiences: /oauth/token mints the public audience
// unless asked for the internal one, which only bankbridge's services get.
func TestDevTokenEndpointAudiences(t *testing.T) {
	t.Parallel()
	d := newIssuer(t)
	srv := httptest.NewServer(d.TokenHandler(auth.TokenClients{
		Secrets:  map[string]string{"balance": "s1", "demo-partner": "s2"},
		Internal: map[string]bool{"balance": true},
	}, time.Hour))
	defer srv.Close()
	tests := []struct {
		name, client, secret, audience string
		code                           int
		aud                            string // of the token minted
	}{
		{"a service, by default", "balance", "s1", "", http.StatusOK, "bankbridge"},
		{"a service asking for the internal audience", "balance", "s1", auth.DefaultInternalAudience, http.StatusOK, auth.DefaultInternalAudience},
		{"a partner asking for the internal audience", "demo-partner", "s2", auth.DefaultInternalAudience, http.StatusBadRequest, ""},
		{"another audience", "balance", "s1", "https://elsewhere.test", http.StatusBadRequest, ""},
		{"a wrong secret", "balance", "s2", auth.DefaultInternalAudience, http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "audience": {tt.audience}}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(tt.client, tt.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				AccessToken string `json:"access_token"`
				Error       string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body.Error, tt.code)
			}
			if tt.aud == "" {
				return
			}
			tok, err := jwt.ParseInsecure([]byte(body.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			aud, _ := tok.Audience()
			sub, _ := tok.Subject()
			if len(aud) != 1 || aud[0] != tt.aud || sub != tt.client {
				t.Errorf("token aud %v sub %q, want [%s] and %s", aud, sub, tt.aud, tt.client)
			}
		})
	}
}

// TestABurstOfFirstCallsWaitsForTheKeys: a verifier just started has no
// keys yet; a burst of calls that all need them shares the one fetch in
// flight instead of being refused while it runs (only one caller may
// fetch, MinRefresh apart).
func TestABurstOfFirstCallsWaitsForTheKeys(t *testing.T) {
	t.Parallel()
	d := newIssuer(t)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // the first fetch is still running when the burst arrives
		d.JWKSHandler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	ctx := context.Background()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL, MinRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	tok, _ := d.Mint("alice", "chat-app", time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(ctx, tok) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d of the burst: %v", i, err)
		}
	}
}
