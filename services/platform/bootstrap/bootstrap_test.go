package bootstrap_test

import (
	"context"
	"os"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

func TestVaultCredentials(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme-prod", map[string]any{"api_key": "k1"})
	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(v.RootToken())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	src := bootstrap.VaultCredentials{Provider: p}

	got, err := src.BankCredential(t.Context(), runtime.Bank{ID: "acme", VaultPath: "banks/acme-prod"})
	if err != nil || got["api_key"] != "k1" {
		t.Fatalf("BankCredential = %v, %v; want the secret at banks/acme-prod", got, err)
	}
	for _, path := range []string{"partners/acme", "banks/a/b", "banks/"} {
		if _, err := src.BankCredential(t.Context(), runtime.Bank{ID: "acme", VaultPath: path}); err == nil {
			t.Errorf("VaultPath %q accepted", path)
		}
	}
	if _, err := src.BankCredential(t.Context(), runtime.Bank{ID: "ghost", VaultPath: "banks/ghost"}); err == nil {
		t.Error("a bank without a secret got credentials")
	}
}

// TestServicePolicy loads the policy operators give services
// (deploy/vault/policies/bankbridge-service.hcl) into a real Vault: a
// service token with it reads bank credentials, the NATS credentials and
// carriers' signing secrets, and cannot change them.
func TestServicePolicy(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../../../deploy/vault/policies/bankbridge-service.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "sandbox", map[string]any{"api_key": "k1"})
	v.Write(t, "bankbridge/data/nats", map[string]any{"data": map[string]any{"token": "n1"}})
	v.Write(t, "bankbridge/data/carriers/sandbox", map[string]any{"data": map[string]any{"secret": "whsec_c2FuZGJveA=="}})
	v.PutPolicy(t, "bankbridge-service", string(rules))
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-service"}})

	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if s, err := p.Bank(t.Context(), "sandbox"); err != nil || s.Data["api_key"] != "k1" {
		t.Fatalf("a service token cannot read the sandbox credential: %v", err)
	}
	if s, err := p.NATS(t.Context()); err != nil || s.Data["token"] != "n1" {
		t.Fatalf("a service token cannot read the NATS credentials: %v", err)
	}
	carriers, err := p.KV("carriers")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := carriers.Get(t.Context(), "sandbox"); err != nil || s.Data["secret"] != "whsec_c2FuZGJveA==" {
		t.Fatalf("a service token cannot read a carrier's signing secret: %v", err)
	}
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	if _, err := c.KVv2("bankbridge").Put(t.Context(), "banks/sandbox", map[string]any{"api_key": "stolen"}); err == nil {
		t.Error("a service token could overwrite a bank credential")
	}
	if _, err := c.KVv2("bankbridge").Put(t.Context(), "nats", map[string]any{"token": "stolen"}); err == nil {
		t.Error("a service token could overwrite the NATS credentials")
	}
	if _, err := c.KVv2("bankbridge").Put(t.Context(), "carriers/sandbox", map[string]any{"secret": "whsec_c3RvbGVu"}); err == nil {
		t.Error("a service token could overwrite a carrier's signing secret")
	}
	if _, err := c.KVv2("bankbridge").Get(t.Context(), "webhooks/ep_1"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a service token reaches the webhooks' signing secrets: %v", err)
	}
}
