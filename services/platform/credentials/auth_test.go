package credentials_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

func TestTokenExpiryLogsInAgain(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	v.PutPolicy(t, "acme-only", vaulttest.BankReadPolicy("acme"))
	roleID, secretID := v.CreateAppRole(t, vaulttest.AppRole{
		Name: "balance", Policies: []string{"acme-only"}, TokenTTL: 2 * time.Second, TokenMaxTTL: 4 * time.Second,
	})

	cfg := credentials.Config{
		Address: v.Addr(),
		Auth: credentials.AuthConfig{Method: credentials.AuthAppRole,
			AppRole: credentials.AppRoleConfig{RoleID: roleID, SecretID: credentials.Sensitive(secretID)}},
		// Every few calls go to Vault, and MaxStale = RefreshInterval keeps
		// the cache from hiding a read that failed for want of a token.
		RefreshInterval: 200 * time.Millisecond,
		MaxStale:        200 * time.Millisecond,
	}
	p, _ := newProvider(t, cfg)

	// Read for well past the token's max TTL: the watcher renews it, then
	// reports done near the max TTL, and the provider logs in again.
	for start := time.Now(); time.Since(start) < 6*time.Second; time.Sleep(50 * time.Millisecond) {
		if _, err := p.Bank(t.Context(), "acme"); err != nil {
			t.Fatalf("Bank %s after the first login: %v", time.Since(start).Round(time.Millisecond), err)
		}
	}
	if n := p.Logins(); n < 2 {
		t.Errorf("logins after 6s with a 4s max TTL = %d, want at least 2", n)
	}
	if n := p.Reads("acme"); n < 10 {
		t.Errorf("Vault reads = %d, want at least 10 so that tokens were really used", n)
	}
}

func TestRevokedTokenLogsInAgain(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	v.PutPolicy(t, "acme-only", vaulttest.BankReadPolicy("acme"))
	roleID, secretID := v.CreateAppRole(t, vaulttest.AppRole{Name: "balance", Policies: []string{"acme-only"}, TokenTTL: time.Hour})
	clock := newClock()
	p, _ := newProvider(t, credentials.Config{
		Address: v.Addr(),
		Auth: credentials.AuthConfig{Method: credentials.AuthAppRole,
			AppRole: credentials.AppRoleConfig{RoleID: roleID, SecretID: credentials.Sensitive(secretID)}},
		RefreshInterval: time.Minute,
	}, credentials.WithClock(clock.Now))
	if _, err := p.Bank(t.Context(), "acme"); err != nil {
		t.Fatalf("Bank: %v", err)
	}

	// An operator revokes every AppRole token, as happens too to a token
	// that expired while Vault was down; the watcher would only notice at
	// its next renewal, most of an hour away.
	v.Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
	clock.Add(time.Minute)
	if _, err := p.Bank(t.Context(), "acme"); !errors.Is(err, credentials.ErrPermissionDenied) {
		t.Fatalf("Bank with a revoked token = %v, want ErrPermissionDenied", err)
	}
	// The denied read made the provider check its token and log in again.
	if !testkit.Within(5*time.Second, func() bool {
		_, err := p.Bank(t.Context(), "acme")
		return err == nil
	}) {
		t.Fatal("Bank still fails 5s after the token was revoked")
	}
	if n := p.Logins(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
}

func TestPolicyDeniesOtherBanks(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "bank-a", map[string]any{"api_key": "secret-of-a"})
	v.PutBankSecret(t, "bank-b", map[string]any{"api_key": "secret-of-b"})
	v.PutPolicy(t, "bank-a-only", vaulttest.BankReadPolicy("bank-a"))

	tests := []struct {
		name string
		auth func(t *testing.T) credentials.AuthConfig
	}{
		{
			name: "token",
			auth: func(t *testing.T) credentials.AuthConfig {
				token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bank-a-only"}, TTL: time.Hour})
				return credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)}
			},
		},
		{
			name: "approle",
			auth: func(t *testing.T) credentials.AuthConfig {
				roleID, secretID := v.CreateAppRole(t, vaulttest.AppRole{Name: "a-reader", Policies: []string{"bank-a-only"}})
				dir := t.TempDir()
				file := filepath.Join(dir, "secret-id")
				if err := os.WriteFile(file, []byte(secretID+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return credentials.AuthConfig{Method: credentials.AuthAppRole,
					AppRole: credentials.AppRoleConfig{RoleID: roleID, SecretIDFile: file}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newProvider(t, credentials.Config{Address: v.Addr(), Auth: tt.auth(t)})

			a, err := p.Bank(t.Context(), "bank-a")
			if err != nil || a.Data["api_key"] != "secret-of-a" {
				t.Fatalf("Bank(bank-a) = %v, %v; want bank-a's secret", a, err)
			}

			b, err := p.Bank(t.Context(), "bank-b")
			if !errors.Is(err, credentials.ErrUnavailable) || !errors.Is(err, credentials.ErrPermissionDenied) {
				t.Fatalf("Bank(bank-b) = %v, want ErrUnavailable and ErrPermissionDenied", err)
			}
			if !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "403") {
				t.Errorf("error %q does not say permission denied (403)", err)
			}
			if b.ID != "" || b.Data != nil {
				t.Errorf("Bank(bank-b) returned %v, want the zero Secret", b)
			}
			if strings.Contains(err.Error(), "secret-of-") {
				t.Errorf("error %q quotes a secret value", err)
			}

			if a, err := p.Bank(t.Context(), "bank-a"); err != nil || a.Data["api_key"] != "secret-of-a" {
				t.Errorf("Bank(bank-a) after a denied read = %v, %v; want bank-a's secret", a, err)
			}
		})
	}
}

// TestKubernetesAuth logs in to the real Vault with its real Kubernetes auth
// method. Only the Kubernetes API server is faked: fakeKubernetesAPI answers
// the TokenReview that Vault sends to check the service-account token.
func TestKubernetesAuth(t *testing.T) {
	t.Parallel()
	const (
		namespace   = "bankbridge"
		account     = "balance"
		accountUID  = "6a0e2f94-balance"
		reviewerJWT = "reviewer-token"
	)
	serviceAccountJWT := signedJWT(t, map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + namespace + ":" + account,
		"kubernetes.io/serviceaccount/namespace": namespace,
		"kubernetes.io/serviceaccount/service-account.name": account,
		"kubernetes.io/serviceaccount/service-account.uid":  accountUID,
		"iat": time.Now().Unix(),
		"exp": time.Now().Add(time.Hour).Unix(),
	})

	var reviews atomic.Int64
	fakeKubernetesAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+reviewerJWT {
			http.Error(w, `{"kind":"Status","status":"Failure","code":401}`, http.StatusUnauthorized)
			return
		}
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reviews.Add(1)
		status := map[string]any{"authenticated": false}
		if review.Spec.Token == serviceAccountJWT {
			status = map[string]any{
				"authenticated": true,
				"user":          map[string]any{"username": "system:serviceaccount:" + namespace + ":" + account, "uid": accountUID},
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status,
		})
	}))
	t.Cleanup(fakeKubernetesAPI.Close)

	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	v.PutPolicy(t, "acme-only", vaulttest.BankReadPolicy("acme"))
	v.EnableAuth(t, "kubernetes", "kubernetes")
	v.Write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":      fakeKubernetesAPI.URL,
		"token_reviewer_jwt":   reviewerJWT,
		"disable_local_ca_jwt": true,
	})
	v.Write(t, "auth/kubernetes/role/balance", map[string]any{
		"bound_service_account_names":      account,
		"bound_service_account_namespaces": namespace,
		"token_policies":                   "acme-only",
		"token_ttl":                        "1h",
	})
	tokenPath := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenPath, []byte(serviceAccountJWT), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("bound service account", func(t *testing.T) {
		p, _ := newProvider(t, credentials.Config{
			Address: v.Addr(),
			Auth: credentials.AuthConfig{Method: credentials.AuthKubernetes,
				Kubernetes: credentials.KubernetesConfig{Role: "balance", TokenPath: tokenPath}},
		})
		s, err := p.Bank(t.Context(), "acme")
		if err != nil || s.Data["api_key"] != "k1" {
			t.Fatalf("Bank(acme) = %v, %v; want the secret", s, err)
		}
		if n := reviews.Load(); n < 1 {
			t.Errorf("TokenReviews seen by the fake Kubernetes API = %d, want at least 1", n)
		}
	})

	t.Run("token Kubernetes does not know", func(t *testing.T) {
		otherPath := filepath.Join(t.TempDir(), "token")
		other := signedJWT(t, map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"kubernetes.io/serviceaccount/namespace": namespace,
			"kubernetes.io/serviceaccount/service-account.name": account,
			"kubernetes.io/serviceaccount/service-account.uid":  accountUID,
		})
		if err := os.WriteFile(otherPath, []byte(other), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := credentials.New(t.Context(), credentials.Config{
			Address: v.Addr(),
			Auth: credentials.AuthConfig{Method: credentials.AuthKubernetes,
				Kubernetes: credentials.KubernetesConfig{Role: "balance", TokenPath: otherPath}},
		})
		if !errors.Is(err, credentials.ErrUnavailable) {
			t.Fatalf("New with a token the TokenReview rejects = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), other) {
			t.Errorf("error %q quotes the service-account token", err)
		}
	})
}

// signedJWT returns an ES256 JWT with the claims. Vault's Kubernetes auth
// parses it and leaves the signature to the TokenReview.
func signedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signingInput := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}
