package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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
