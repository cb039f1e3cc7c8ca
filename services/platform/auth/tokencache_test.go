package auth_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCachedTokenIsRefusedOnceExpired(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	srv := httptest.NewServer(iss.JWKSHandler())
	defer srv.Close()
	clock := &fakeClock{now: time.Now()}
	ctx := context.Background()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)

	tok, err := iss.Mint("alice", "chat-app", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !testkit.Within(5*time.Second, func() bool { _, err = v.Verify(ctx, tok); return err == nil }) {
		t.Fatalf("fresh token refused: %v", err)
	}
	if _, err := v.Verify(ctx, tok); err != nil { // now answered from the cache
		t.Fatalf("fresh token refused on its second use: %v", err)
	}
	// Past exp and the 30s leeway, but well inside the cache's 5 minutes.
	clock.Advance(2 * time.Minute)
	if _, err := v.Verify(ctx, tok); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED) {
		t.Fatalf("expired token: err = %v, want TOKEN_EXPIRED", err)
	}
}

func TestCachedTokenIsRefusedOnceItsKeyLeavesTheJWKS(t *testing.T) {
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
	if !testkit.Within(5*time.Second, func() bool { _, err = v.Verify(ctx, tokOld); return err == nil }) {
		t.Fatalf("token from the current key refused: %v", err)
	}
	if _, err := v.Verify(ctx, tokOld); err != nil { // cached
		t.Fatalf("second use: %v", err)
	}

	jwks.current.Store(newKey) // the provider revokes the old key
	if !testkit.Within(5*time.Second, func() bool { _, err = v.Verify(ctx, tokNew); return err == nil }) {
		t.Fatalf("token from the new key still refused: %v", err)
	}
	if _, err := v.Verify(ctx, tokOld); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID) {
		t.Fatalf("token whose key left the JWKS: err = %v, want TOKEN_INVALID", err)
	}
}
