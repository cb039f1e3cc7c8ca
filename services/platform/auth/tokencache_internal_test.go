package auth

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTokenCacheStaysWithinItsBound(t *testing.T) {
	t.Parallel()
	iss, err := NewDevIssuer(true, "https://issuer.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.JWKSHandler())
	defer srv.Close()
	ctx := context.Background()
	const bound = 8
	v, err := NewVerifier(ctx, Config{Issuer: "https://issuer.test", Audience: "bankbridge", JWKSURL: srv.URL, TokenCacheSize: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	for i := range 3 * bound {
		tok, err := iss.Mint("alice", "chat-app", time.Duration(i+1)*time.Minute) // distinct exp, distinct token
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err = v.Verify(ctx, tok); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("token %d refused: %v", i, err)
		}
	}
	if n := v.tokens.len(); n != bound {
		t.Fatalf("cache holds %d tokens after %d distinct ones, want the bound %d", n, 3*bound, bound)
	}
}
