package vaulttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

func TestServer(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)

	if got := v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"}); got != 1 {
		t.Fatalf("first PutBankSecret version = %d, want 1", got)
	}
	if got := v.PutBankSecret(t, "acme", map[string]any{"api_key": "k2"}); got != 2 {
		t.Fatalf("second PutBankSecret version = %d, want 2", got)
	}
	kv, err := v.Client().KVv2(vaulttest.Mount).Get(t.Context(), "banks/acme")
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if kv.Data["api_key"] != "k2" {
		t.Fatalf("read back api_key = %v, want k2", kv.Data["api_key"])
	}

	v.Stop()
	v.Stop() // idempotent
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := v.Client().Sys().HealthWithContext(ctx); err == nil {
		t.Fatal("health check after Stop succeeded, want an error")
	}
}

func TestCreateAppRole(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutPolicy(t, "acme-only", vaulttest.BankReadPolicy("acme"))
	roleID, secretID := v.CreateAppRole(t, vaulttest.AppRole{
		Name: "svc", Policies: []string{"acme-only"}, TokenTTL: time.Minute, TokenMaxTTL: 2 * time.Minute,
	})

	auth := v.Write(t, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if auth.Auth == nil || auth.Auth.LeaseDuration != 60 {
		t.Fatalf("login answer = %+v, want a token with a 60s lease", auth.Auth)
	}
}
