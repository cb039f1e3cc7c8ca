package signer_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/signer"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// TestConsentPolicy loads the consent service's Vault policy
// (deploy/vault/policies/bankbridge-consent.hcl) into a real Vault: a
// token holding it signs heads with the access log key and verifies them,
// and can do nothing else with Transit.
func TestConsentPolicy(t *testing.T) {
	v := vaulttest.Start(t)
	v.CreateTransitKey(t, signer.DefaultKey, "ed25519")
	v.CreateTransitKey(t, "another-key", "ed25519")
	rules, err := os.ReadFile("../../../../deploy/vault/policies/bankbridge-consent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v.PutPolicy(t, "bankbridge-consent", string(rules))
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-consent"}})
	p, err := credentials.New(t.Context(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	key, err := p.Transit("", signer.DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	s := signer.New(key)

	heads := [][]byte{app.HeadMessage("alice", 7, "aa"), app.HeadMessage("bob", 3, "bb")}
	sigs, err := s.Sign(t.Context(), heads)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("Sign = %v, %v; want two signatures", sigs, err)
	}
	if err := s.Verify(t.Context(), heads[0], sigs[0]); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := s.Verify(t.Context(), heads[1], sigs[0]); !errors.Is(err, app.ErrSignatureInvalid) {
		t.Errorf("Verify of another head's signature = %v, want ErrSignatureInvalid", err)
	}

	other, err := p.Transit("", "another-key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sign(t.Context(), heads); !errors.Is(err, credentials.ErrPermissionDenied) {
		t.Errorf("signing with another key = %v, want ErrPermissionDenied", err)
	}
	client, err := v.Client().Clone()
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(token)
	for _, path := range []string{
		"transit/keys/" + signer.DefaultKey + "/rotate",
		"transit/keys/" + signer.DefaultKey + "/config",
		"transit/keys/" + signer.DefaultKey,
		"transit/verify/" + signer.DefaultKey,
	} {
		_, err := client.Logical().WriteWithContext(context.Background(), path, map[string]any{"deletion_allowed": true})
		if re, ok := errors.AsType[*api.ResponseError](err); !ok || re.StatusCode != http.StatusForbidden {
			t.Errorf("write %s with the consent policy = %v, want 403", path, err)
		}
	}
	for _, path := range []string{"transit/export/signing-key/" + signer.DefaultKey, "transit/keys/another-key"} {
		_, err := client.Logical().ReadWithContext(context.Background(), path)
		if re, ok := errors.AsType[*api.ResponseError](err); !ok || re.StatusCode != http.StatusForbidden {
			t.Errorf("read %s with the consent policy = %v, want 403", path, err)
		}
	}
}
