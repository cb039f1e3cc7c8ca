package credentials_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() credentials.Config {
		return credentials.Config{
			Address: "https://vault.internal:8200",
			Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: "s.token"},
		}
	}
	tests := []struct {
		name   string
		modify func(c *credentials.Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "token", modify: func(*credentials.Config) {}},
		{name: "approle with secret id", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthAppRole,
				AppRole: credentials.AppRoleConfig{RoleID: "r", SecretID: "s"}}
		}},
		{name: "approle with secret id file", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthAppRole,
				AppRole: credentials.AppRoleConfig{RoleID: "r", SecretIDFile: "/run/secret-id"}}
		}},
		{name: "kubernetes with defaults", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthKubernetes,
				Kubernetes: credentials.KubernetesConfig{Role: "balance"}}
		}},
		{name: "missing address", modify: func(c *credentials.Config) { c.Address = "" },
			want: []string{"Address is required"}},
		{name: "address not a URL", modify: func(c *credentials.Config) { c.Address = "vault:8200" },
			want: []string{`Address "vault:8200" is not an http(s) URL`}},
		{name: "mount with slashes", modify: func(c *credentials.Config) { c.Mount = "/bankbridge/" },
			want: []string{`Mount "/bankbridge/" must not start or end with /`}},
		{name: "negative durations", modify: func(c *credentials.Config) {
			c.RefreshInterval, c.MaxStale, c.RequestTimeout = -1, -1, -1
		}, want: []string{"RefreshInterval -1ns is negative", "MaxStale -1ns is negative", "RequestTimeout -1ns is negative"}},
		{name: "max stale shorter than refresh", modify: func(c *credentials.Config) {
			c.RefreshInterval, c.MaxStale = time.Minute, time.Second
		}, want: []string{"MaxStale 1s is shorter than RefreshInterval 1m0s"}},
		{name: "max stale shorter than default refresh", modify: func(c *credentials.Config) { c.MaxStale = time.Minute },
			want: []string{"MaxStale 1m0s is shorter than RefreshInterval 5m0s"}},
		{name: "no method", modify: func(c *credentials.Config) { c.Auth = credentials.AuthConfig{} },
			want: []string{"Auth.Method is required: token, approle or kubernetes"}},
		{name: "unknown method", modify: func(c *credentials.Config) { c.Auth.Method = "userpass" },
			want: []string{`Auth.Method "userpass" is not one of token, approle, kubernetes`}},
		{name: "token without token", modify: func(c *credentials.Config) { c.Auth.Token = "" },
			want: []string{"Auth.Token is required"}},
		{name: "approle without anything", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthAppRole}
		}, want: []string{"Auth.AppRole.RoleID is required", "one of Auth.AppRole.SecretID and Auth.AppRole.SecretIDFile is required"}},
		{name: "approle with both secret sources", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthAppRole,
				AppRole: credentials.AppRoleConfig{RoleID: "r", SecretID: "s", SecretIDFile: "/f"}}
		}, want: []string{"only one of Auth.AppRole.SecretID and Auth.AppRole.SecretIDFile"}},
		{name: "kubernetes without role", modify: func(c *credentials.Config) {
			c.Auth = credentials.AuthConfig{Method: credentials.AuthKubernetes}
		}, want: []string{"Auth.Kubernetes.Role is required"}},
		{name: "every problem at once", modify: func(c *credentials.Config) { *c = credentials.Config{} },
			want: []string{"Address is required", "Auth.Method is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if _, ok := errors.AsType[*credentials.ConfigError](err); !ok {
				t.Fatalf("Validate = %v, want a *ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to say %q", err, w)
				}
			}
			// New refuses the config before touching the network.
			if _, newErr := credentials.New(context.Background(), cfg); newErr == nil || newErr.Error() != err.Error() {
				t.Errorf("New = %v, want the Validate error", newErr)
			}
		})
	}
}
