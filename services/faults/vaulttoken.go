package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// tokenTTL is the lifetime, and the longest renewal, of the Vault tokens
// the token-expiry row's AppRole hands out: a service must log in again
// every tokenTTL.
const tokenTTL = 15 * time.Second

// appRoleFlags sets up, in the stack's Vault, an AppRole whose tokens live
// tokenTTL at most, and returns the flags that make a process log in with
// it instead of the stack's root token.
func (h *Harness) appRoleFlags(ctx context.Context, name string) ([]string, error) {
	c, err := api.NewClient(&api.Config{Address: h.Stack.Vault.Addr})
	if err != nil {
		return nil, err
	}
	c.SetToken(h.Stack.Vault.Token)
	sys := c.Sys()
	auths, err := sys.ListAuthWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: list auth methods: %w", err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := sys.EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
			return nil, fmt.Errorf("vault: enable approle: %w", err)
		}
	}
	// What the root token may do, as a policy: the row is about the
	// token's lifetime, not its rights.
	if err := sys.PutPolicyWithContext(ctx, "faults-"+name, `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`); err != nil {
		return nil, fmt.Errorf("vault: policy: %w", err)
	}
	role := "auth/approle/role/faults-" + name
	ttl := fmt.Sprintf("%ds", int(tokenTTL.Seconds()))
	if _, err := c.Logical().WriteWithContext(ctx, role, map[string]any{
		"token_policies": "faults-" + name, "token_ttl": ttl, "token_max_ttl": ttl,
	}); err != nil {
		return nil, fmt.Errorf("vault: role: %w", err)
	}
	id, err := c.Logical().ReadWithContext(ctx, role+"/role-id")
	if err != nil || id == nil {
		return nil, fmt.Errorf("vault: role id: %v", err)
	}
	secret, err := c.Logical().WriteWithContext(ctx, role+"/secret-id", nil)
	if err != nil || secret == nil {
		return nil, fmt.Errorf("vault: secret id: %v", err)
	}
	file := filepath.Join(h.dataDir, name+"-secret-id")
	if err := os.WriteFile(file, []byte(fmt.Sprint(secret.Data["secret_id"])), 0o600); err != nil {
		return nil, err
	}
	return []string{"--vault-auth=approle", "--vault-role-id=" + fmt.Sprint(id.Data["role_id"]), "--vault-secret-id-file=" + file}, nil
}

// vaultTokenExpiry runs balance on AppRole tokens that expire every
// tokenTTL, under load, across several expiries.
func vaultTokenExpiry(ctx context.Context, m *Matrix) Outcome {
	o := Outcome{Pass: true}
	flags, err := m.H.appRoleFlags(ctx, "balance")
	if err == nil {
		if err = m.H.Stack.StopProcess("balance"); err == nil {
			err = m.H.Stack.Restart(ctx, "balance", flags...)
		}
	}
	defer func() {
		// Back to the stack's own token for the rows after.
		_ = m.H.Stack.StopProcess("balance")
		if err := m.H.Stack.Restart(context.Background(), "balance"); err != nil {
			o.fail("balance did not come back on the root token: %v", err)
		}
	}()
	if err != nil {
		o.fail("balance on AppRole: %v", err)
		return o
	}
	res := m.H.RunLoad(ctx, Load{Duration: 3*tokenTTL + 5*time.Second, Workers: 8})
	o.Summary = Summarize(res.Calls, time.Time{}, time.Time{})
	o.note("balance logged in with AppRole, tokens of %s (no renewal past it): %d expiries under load", tokenTTL, int(res.End.Sub(res.Start)/tokenTTL))
	if o.Availability < 0.99 {
		o.fail("%.2f %% available across the token expiries (%s)", o.Availability*100, strings.TrimSpace(o.ErrorsText()))
	}
	return o
}
