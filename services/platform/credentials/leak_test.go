package credentials_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// TestSecretValuesNeverLeak drives every error path and the logs they
// produce, then checks that no secret value, token or secret id appears in
// any error text, log line, or printed Config or Secret.
func TestSecretValuesNeverLeak(t *testing.T) {
	t.Parallel()
	const marker = "SECRET-VALUE"
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": marker + "-acme-1", "client_secret": marker + "-acme-cs"})
	v.PutPartnerSecret(t, "shipper", map[string]any{"api_key": marker + "-shipper"})
	v.PutBankSecret(t, "other", map[string]any{"api_key": marker + "-other"})
	v.PutBankSecret(t, "malformed", map[string]any{"api_key": marker + "-malformed", "nested": map[string]any{"x": marker + "-deep"}})
	v.PutPolicy(t, "acme-only", vaulttest.BankReadPolicy("acme", "malformed"))
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"acme-only"}, TTL: time.Hour})
	roleID, secretID := v.CreateAppRole(t, vaulttest.AppRole{Name: "acme-reader", Policies: []string{"acme-only"}})
	forbidden := []string{marker, token, secretID}

	var texts []string // every error text and printed value to scan
	record := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		texts = append(texts, err.Error())
	}

	clock := newClock()
	cfg := credentials.Config{
		Address:         v.Addr(),
		Auth:            credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
		RefreshInterval: time.Minute,
		MaxStale:        10 * time.Minute,
	}
	p, logs := newProvider(t, cfg, credentials.WithClock(clock.Now))
	acme, err := p.Bank(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Bank(acme): %v", err)
	}

	_, err = p.Bank(t.Context(), "other")
	record("denied read", err)
	_, err = p.Bank(t.Context(), "missing")
	record("missing secret", err)
	_, err = p.Bank(t.Context(), "malformed")
	record("malformed secret", err)
	if err != nil && (!errors.Is(err, credentials.ErrUnavailable) || !strings.Contains(err.Error(), `key "nested" holds an object`)) {
		t.Errorf("malformed secret error = %q, want ErrUnavailable naming the key and its type", err)
	}

	// A rotation is logged.
	v.PutBankSecret(t, "acme", map[string]any{"api_key": marker + "-acme-2"})
	clock.Add(time.Minute)
	if s, err := p.Bank(t.Context(), "acme"); err != nil || s.Version != 2 {
		t.Fatalf("Bank(acme) after rotation = version %d, %v; want 2", s.Version, err)
	}

	// Logins that fail must not quote what they sent.
	_, err = credentials.New(t.Context(), credentials.Config{Address: v.Addr(),
		Auth: credentials.AuthConfig{Method: credentials.AuthToken, Token: "hvs." + marker + "-bogus-token"}})
	record("unknown token", err)
	_, err = credentials.New(t.Context(), credentials.Config{Address: v.Addr(),
		Auth: credentials.AuthConfig{Method: credentials.AuthAppRole,
			AppRole: credentials.AppRoleConfig{RoleID: roleID, SecretID: marker + "-wrong-secret-id"}}})
	record("wrong secret id", err)

	// An outage, first served from cache (and logged), then past MaxStale.
	v.Stop()
	clock.Add(2 * time.Minute)
	if _, err := p.Bank(t.Context(), "acme"); err != nil {
		t.Fatalf("Bank(acme) during the outage: %v", err)
	}
	clock.Add(time.Hour)
	_, err = p.Bank(t.Context(), "acme")
	record("past MaxStale", err)
	_, err = p.Partner(t.Context(), "shipper")
	record("uncached partner during the outage", err)

	// Printing a Config or a Secret by mistake.
	approleCfg := cfg
	approleCfg.Auth = credentials.AuthConfig{Method: credentials.AuthAppRole,
		AppRole: credentials.AppRoleConfig{RoleID: roleID, SecretID: credentials.Sensitive(secretID)}}
	printed := &testkit.SyncBuffer{}
	printedLog := debugLogger(printed)
	for _, x := range []any{cfg, approleCfg, acme} {
		texts = append(texts, fmt.Sprintf("%v | %+v | %#v | %s", x, x, x, x))
		printedLog.Info("printed", slog.Any("value", x))
	}
	texts = append(texts, printed.String(), logs.String())

	if !strings.Contains(logs.String(), "serving the cached version") || !strings.Contains(logs.String(), "credentials rotated") {
		t.Errorf("provider log lacks the stale-serving or rotation line; the scan below would prove little:\n%s", logs.String())
	}
	for _, text := range texts {
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%q leaks into:\n%s", f, text)
			}
		}
	}
}
