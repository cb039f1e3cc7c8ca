package secrets_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/secrets"
)

// TestWithTheWebhooksPolicy runs against a real Vault with the policy
// operators give the webhooks service
// (deploy/vault/policies/bankbridge-webhooks.hcl): its token writes, reads,
// rotates and deletes webhook secrets, reads the bus's NATS credentials,
// and reaches no bank credential.
func TestWithTheWebhooksPolicy(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../../../../deploy/vault/policies/bankbridge-webhooks.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "sandbox", map[string]any{"api_key": "k1"})
	v.PutPolicy(t, "bankbridge-webhooks", string(rules))
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-webhooks"}})
	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	s, err := secrets.New(p, time.Nanosecond) // no caching: every Get reads Vault
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)

	first := app.SecretSet{app.NewSecret(now)}
	if err := s.Put(ctx, "ep_1", first); err != nil {
		t.Fatalf("the webhooks token cannot write a webhook secret: %v", err)
	}
	got, err := s.Get(ctx, "ep_1")
	if err != nil || len(got) != 1 || got.Current().Value != first.Current().Value {
		t.Fatalf("Get = %v, %v", got, err)
	}
	rotated := first.Rotate(now, time.Hour, app.NewSecret(now))
	if err := s.Put(ctx, "ep_1", rotated); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "ep_1"); len(got) != 2 || got[1].Value != first.Current().Value || !got[1].ExpireTime.Equal(now.Add(time.Hour)) {
		t.Errorf("after rotation = %+v", got)
	}
	if err := s.Delete(ctx, "ep_1"); err != nil {
		t.Fatalf("the webhooks token cannot delete a webhook secret: %v", err)
	}
	if _, err := s.Get(ctx, "ep_1"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	// Every version is gone, not only the latest: nothing to undelete.
	if meta, err := v.Client().KVv2(vaulttest.Mount).GetMetadata(ctx, "webhooks/ep_1"); err == nil && meta != nil {
		t.Errorf("versions left behind: %+v", meta.Versions)
	}

	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	if _, err := c.KVv2(vaulttest.Mount).Get(ctx, "banks/sandbox"); err == nil {
		t.Error("the webhooks token can read a bank credential")
	}
	if _, err := c.KVv2(vaulttest.Mount).Put(ctx, "banks/sandbox", map[string]any{"api_key": "stolen"}); err == nil {
		t.Error("the webhooks token can overwrite a bank credential")
	}
	v.Write(t, vaulttest.Mount+"/data/nats", map[string]any{"data": map[string]any{"token": "nats-token"}})
	if s, err := c.KVv2(vaulttest.Mount).Get(ctx, "nats"); err != nil || s.Data["token"] != "nats-token" {
		t.Errorf("the webhooks token cannot read the bus's NATS credentials: %v", err)
	}
	if _, err := c.Logical().ListWithContext(ctx, vaulttest.Mount+"/metadata/webhooks"); err == nil {
		t.Error("the webhooks token can list every endpoint's secret")
	}
}
