package carrierpush_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
)

// provider logs in to v with token.
func provider(t *testing.T, v *vaulttest.Server, token string) *credentials.Provider {
	t.Helper()
	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
	}, credentials.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func putCarrier(t *testing.T, v *vaulttest.Server, carrier string, data map[string]any) {
	t.Helper()
	v.Write(t, vaulttest.Mount+"/data/"+carrierpush.VaultPrefix+"/"+carrier, map[string]any{"data": data})
}

// countingKV counts the reads that reach Vault.
type countingKV struct {
	next  carrierpush.KVReader
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingKV) Get(ctx context.Context, id string) (credentials.Secret, error) {
	c.mu.Lock()
	c.reads[id]++
	c.mu.Unlock()
	return c.next.Get(ctx, id)
}

func (c *countingKV) Reads(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[id]
}

func counted(t *testing.T, p *credentials.Provider) *countingKV {
	t.Helper()
	kv, err := p.KV(carrierpush.VaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &countingKV{next: kv, reads: map[string]int{}}
}

// TestVaultSecretsWithTheServicePolicy reads carriers' secrets with the
// token a service gets (deploy/vault/policies/bankbridge-service.hcl), and
// a push signed with the secret in Vault passes the handler.
func TestVaultSecretsWithTheServicePolicy(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../../../../deploy/vault/policies/bankbridge-service.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := vaulttest.Start(t)
	v.PutPolicy(t, "bankbridge-service", string(rules))
	current, previous := stdwebhook.NewSecret(), stdwebhook.NewSecret()
	putCarrier(t, v, "acme", map[string]any{carrierpush.SecretKey: previous})
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-service"}})
	clock := testkit.NewClock(time.Now())
	sec, err := carrierpush.NewVaultSecrets(provider(t, v, token), carrierpush.VaultOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if got, err := sec.CarrierSecrets(ctx, "acme"); err != nil || !slices.Equal(got, []string{previous}) {
		t.Fatalf("CarrierSecrets = %d secrets, %v; want the one in Vault", len(got), err)
	}
	if _, err := sec.CarrierSecrets(ctx, "globex"); !errors.Is(err, carrierpush.ErrUnknownCarrier) {
		t.Errorf("a carrier without a secret: %v, want ErrUnknownCarrier", err)
	}

	// A rotation reaches the process within the TTL, the old secret
	// still accepted beside the new.
	putCarrier(t, v, "acme", map[string]any{carrierpush.SecretKey: current, carrierpush.PreviousKey: previous})
	clock.Add(carrierpush.DefaultSecretsTTL)
	if got, err := sec.CarrierSecrets(ctx, "acme"); err != nil || !slices.Equal(got, []string{current, previous}) {
		t.Fatalf("after the rotation: %d secrets, %v; want current then previous", len(got), err)
	}

	// The handler over Vault: a push signed with the new secret passes.
	ing := &fakeIngester{recorded: 2}
	f := &fixture{ing: ing}
	srv := newServer(t, carrierpush.NewHandler(ing, sec, carrierpush.Options{Logger: slog.New(slog.DiscardHandler)}))
	f.url = srv
	at := time.Now()
	if r := f.push(t, "acme", signed(t, current, "vault-1", at, validBody), validBody); r.code != http.StatusOK {
		t.Errorf("a push signed with the secret in Vault: %d %s", r.code, r.body)
	}

	// The service token reads carriers' secrets and cannot write them.
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	if _, err := c.KVv2(vaulttest.Mount).Put(ctx, "carriers/acme", map[string]any{carrierpush.SecretKey: stdwebhook.NewSecret()}); err == nil {
		t.Error("a service token could overwrite a carrier's signing secret")
	}
}

func TestVaultSecretsReadVaultOncePerTTL(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	secret := stdwebhook.NewSecret()
	putCarrier(t, v, "acme", map[string]any{carrierpush.SecretKey: secret})
	kv := counted(t, provider(t, v, v.RootToken()))
	clock := testkit.NewClock(time.Now())
	sec := carrierpush.NewVaultSecretsOver(kv, carrierpush.VaultOptions{TTL: time.Minute, Now: clock.Now})
	ctx := t.Context()

	burst := func(carrier string) (ok, unknown int64) {
		var okN, unknownN atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				got, err := sec.CarrierSecrets(ctx, carrier)
				switch {
				case err == nil && slices.Equal(got, []string{secret}):
					okN.Add(1)
				case errors.Is(err, carrierpush.ErrUnknownCarrier):
					unknownN.Add(1)
				default:
					t.Errorf("CarrierSecrets(%s) = %d secrets, %v", carrier, len(got), err)
				}
			})
		}
		wg.Wait()
		return okN.Load(), unknownN.Load()
	}
	if ok, _ := burst("acme"); ok != 50 || kv.Reads("acme") != 1 {
		t.Errorf("a cold burst of 50: %d answered, %d Vault reads; want 50 and 1", ok, kv.Reads("acme"))
	}
	clock.Add(59 * time.Second)
	if ok, _ := burst("acme"); ok != 50 || kv.Reads("acme") != 1 {
		t.Errorf("within the TTL: %d answered, %d Vault reads; want 50 and still 1", ok, kv.Reads("acme"))
	}
	clock.Add(2 * time.Second)
	if ok, _ := burst("acme"); ok != 50 || kv.Reads("acme") != 2 {
		t.Errorf("past the TTL: %d answered, %d Vault reads; want 50 and 2", ok, kv.Reads("acme"))
	}
	// A made-up carrier costs one read per TTL too, not one per push.
	if _, unknown := burst("globex"); unknown != 50 || kv.Reads("globex") != 1 {
		t.Errorf("an unknown carrier: %d unknown, %d Vault reads; want 50 and 1", unknown, kv.Reads("globex"))
	}
}

// TestVaultSecretsOutliveABriefVaultOutage: cached secrets keep serving
// while Vault is down, until MaxStale; a carrier never read is
// unavailable, not unknown.
func TestVaultSecretsOutliveABriefVaultOutage(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	secret := stdwebhook.NewSecret()
	putCarrier(t, v, "acme", map[string]any{carrierpush.SecretKey: secret})
	kv := counted(t, provider(t, v, v.RootToken()))
	clock := testkit.NewClock(time.Now())
	sec := carrierpush.NewVaultSecretsOver(kv, carrierpush.VaultOptions{TTL: time.Minute, MaxStale: 10 * time.Minute,
		Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	if _, err := sec.CarrierSecrets(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	v.Stop()
	clock.Add(2 * time.Minute)
	if got, err := sec.CarrierSecrets(ctx, "acme"); err != nil || !slices.Equal(got, []string{secret}) {
		t.Fatalf("Vault down, secret 2 minutes old: %d secrets, %v; want the cached one", len(got), err)
	}
	reads := kv.Reads("acme")
	for range 20 {
		if _, err := sec.CarrierSecrets(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if kv.Reads("acme") != reads {
		t.Errorf("right after a failed read, every push asked Vault again: %d reads, want %d", kv.Reads("acme"), reads)
	}
	if _, err := sec.CarrierSecrets(ctx, "globex"); !errors.Is(err, credentials.ErrUnavailable) || errors.Is(err, carrierpush.ErrUnknownCarrier) {
		t.Errorf("a carrier never read, Vault down: %v; want ErrUnavailable", err)
	}
	clock.Add(10 * time.Minute)
	if _, err := sec.CarrierSecrets(ctx, "acme"); !errors.Is(err, credentials.ErrUnavailable) {
		t.Errorf("Vault down past MaxStale: %v; want ErrUnavailable", err)
	}
}

func TestVaultSecretsRefuseWhatIsNoSigningSecret(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	sec, err := carrierpush.NewVaultSecrets(provider(t, v, v.RootToken()), carrierpush.VaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data map[string]any
	}{
		{"no secret key", map[string]any{"api_key": "whsec_abc"}},
		{"not a whsec_ secret", map[string]any{carrierpush.SecretKey: "hunter2-not-a-secret"}},
		{"a malformed previous", map[string]any{carrierpush.SecretKey: stdwebhook.NewSecret(), carrierpush.PreviousKey: "hunter2-not-a-secret"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := "bad" + string(rune('a'+i))
			putCarrier(t, v, carrier, tt.data)
			_, err := sec.CarrierSecrets(t.Context(), carrier)
			if err == nil || errors.Is(err, carrierpush.ErrUnknownCarrier) || errors.Is(err, credentials.ErrUnavailable) {
				t.Fatalf("CarrierSecrets = %v; want an error of its own (the handler masks it)", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error carries the value: %v", err)
			}
		})
	}
	// An emptied previous is no previous.
	secret := stdwebhook.NewSecret()
	putCarrier(t, v, "acme", map[string]any{carrierpush.SecretKey: secret, carrierpush.PreviousKey: ""})
	if got, err := sec.CarrierSecrets(t.Context(), "acme"); err != nil || !slices.Equal(got, []string{secret}) {
		t.Errorf("with previous emptied: %d secrets, %v", len(got), err)
	}
}
