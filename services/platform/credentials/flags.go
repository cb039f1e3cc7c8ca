package credentials

import (
	"flag"
	"time"
)

// RegisterFlags binds the Vault settings to fs (and so, through the server
// kit's parser, to BANKBRIDGE_VAULT_* environment variables), with c's values
// as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Address, "vault-addr", c.Address, "Vault address, e.g. https://vault.internal:8200")
	fs.StringVar(&c.CACert, "vault-cacert", c.CACert, "PEM file of the CA that signed Vault's certificate")
	fs.StringVar(&c.Mount, "vault-mount", c.Mount, "KV v2 mount holding bank and partner secrets (default bankbridge)")
	fs.Func("vault-auth", "Vault login method: token, approle or kubernetes (default token)", func(s string) error {
		c.Auth.Method = AuthMethod(s)
		return nil
	})
	fs.Func("vault-token", "Vault token, for --vault-auth=token", func(s string) error {
		c.Auth.Token = Sensitive(s)
		return nil
	})
	fs.StringVar(&c.Auth.AppRole.RoleID, "vault-role-id", c.Auth.AppRole.RoleID, "AppRole role id, for --vault-auth=approle")
	fs.StringVar(&c.Auth.AppRole.SecretIDFile, "vault-secret-id-file", c.Auth.AppRole.SecretIDFile, "file holding the AppRole secret id (re-read at each login)")
	fs.StringVar(&c.Auth.Kubernetes.Role, "vault-k8s-role", c.Auth.Kubernetes.Role, "Vault role, for --vault-auth=kubernetes")
	fs.DurationVar(&c.RefreshInterval, "vault-refresh", orDefault(c.RefreshInterval, DefaultRefreshInterval), "how often cached secrets are re-read (rotation is seen within this)")
	fs.DurationVar(&c.MaxStale, "vault-max-stale", orDefault(c.MaxStale, DefaultMaxStale), "how long a cached secret is served while Vault is unreachable")
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
