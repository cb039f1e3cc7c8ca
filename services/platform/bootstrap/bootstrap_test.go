package bootstrap_test

import (
	"context"
	"testing"

	"github.com/bankbridge/bankbridge/adapters"
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

	got, err := src.BankCredential(t.Context(), adapters.Bank{ID: "acme", VaultPath: "banks/acme-prod"})
	if err != nil || got["api_key"] != "k1" {
		t.Fatalf("BankCredential = %v, %v; want the secret at banks/acme-prod", got, err)
	}
	for _, path := range []string{"partners/acme", "banks/a/b", "banks/"} {
		if _, err := src.BankCredential(t.Context(), adapters.Bank{ID: "acme", VaultPath: path}); err == nil {
			t.Errorf("VaultPath %q accepted", path)
		}
	}
	if _, err := src.BankCredential(t.Context(), adapters.Bank{ID: "ghost", VaultPath: "banks/ghost"}); err == nil {
		t.Error("a bank without a secret got credentials")
	}
}
