package bootstrap

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// svcConfig is a service config with a field of its own, as services
// write them.
type svcConfig struct {
	Config
	Window time.Duration
}

func (c *svcConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Window, "window", c.Window, "a service's own setting")
}

func (c *svcConfig) Validate() error {
	if c.Window < 0 {
		return errors.New("--window must not be negative")
	}
	return nil
}

func newSpec(kind Kind, needs Needs) (Spec, *svcConfig) {
	c := &svcConfig{Config: Defaults("balance", "127.0.0.1:0", "")}
	return Spec{Kind: kind, Config: c, Needs: needs, Logs: io.Discard,
		Start: func(context.Context, *Deps) (Service, error) { return Service{}, errors.New("not reached") }}, c
}

// TestParse reads flags and BANKBRIDGE_* variables. It sets environment
// variables, so it does not run in parallel.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		needs   Needs
		args    []string
		env     map[string]string
		check   func(*testing.T, *svcConfig, []string)
		wantErr string
	}{
		{
			name: "environment, and a flag wins over it", needs: Needs{Banks: true},
			args: []string{"--banks=/flag/banks.yaml", "--window=2s"},
			env:  map[string]string{"BANKBRIDGE_BANKS": "/env/banks.yaml", "BANKBRIDGE_ISSUER": "https://issuer", "BANKBRIDGE_WINDOW": "1s"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.BanksFile != "/flag/banks.yaml" || c.Server.Issuer != "https://issuer" || c.Window != 2*time.Second {
					t.Errorf("banks %q, issuer %q, window %s", c.BanksFile, c.Server.Issuer, c.Window)
				}
			},
		},
		{
			name: "storage defaults to a SQLite file named after the service", needs: Needs{Storage: true},
			args: []string{"--data-dir=/var/lib/bb"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.DatabaseURL != "sqlite:/var/lib/bb/balance.db" {
					t.Errorf("database URL %q", c.DatabaseURL)
				}
			},
		},
		{
			name: "the build version, not a default", args: nil,
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.Server.Version == "" || c.Server.Version == "dev" {
					t.Errorf("version %q", c.Server.Version)
				}
			},
		},
		{
			name: "arguments after the flags are returned", args: []string{"verify", "alice"},
			check: func(t *testing.T, _ *svcConfig, rest []string) {
				if strings.Join(rest, " ") != "verify alice" {
					t.Errorf("rest %q", rest)
				}
			},
		},
		{
			name: "every service takes the page token key", env: map[string]string{"BANKBRIDGE_PAGE_TOKEN_KEY": "k1,k0"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.PageTokenKey != "k1,k0" {
					t.Errorf("page token key %q", c.PageTokenKey)
				}
			},
		},
		{
			name: "the bus embeds NATS under the data dir", needs: Needs{Storage: true, Bus: true},
			args: []string{"--data-dir=/var/lib/bb", "--outbox-retention=48h", "--events-max-age=72h"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.NATSDir != "/var/lib/bb/balance/nats" || c.NATSURL != "" || c.OutboxRetention != 48*time.Hour || c.Events.MaxAge != 72*time.Hour {
					t.Errorf("nats dir %q, url %q, retention %s, max age %s", c.NATSDir, c.NATSURL, c.OutboxRetention, c.Events.MaxAge)
				}
			},
		},
		{
			name: "a NATS URL and Vault for its credentials", needs: Needs{Bus: true},
			env: map[string]string{"BANKBRIDGE_NATS_URL": "nats://nats-0:4222", "BANKBRIDGE_VAULT_ADDR": "https://vault:8200"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.NATSURL != "nats://nats-0:4222" || c.Vault.Address != "https://vault:8200" {
					t.Errorf("nats url %q, vault %q", c.NATSURL, c.Vault.Address)
				}
			},
		},
		{
			name: "a service with a public HTTP listener takes --http-addr", needs: Needs{HTTP: true},
			env: map[string]string{"BANKBRIDGE_HTTP_ADDR": "0.0.0.0:9305"},
			check: func(t *testing.T, c *svcConfig, _ []string) {
				if c.HTTPAddr != "0.0.0.0:9305" {
					t.Errorf("http addr %q", c.HTTPAddr)
				}
			},
		},
		{name: "no public HTTP listener undeclared", args: []string{"--http-addr=127.0.0.1:9305"}, wantErr: "flag provided but not defined: -http-addr"},
		{name: "a gateway has --addr, not --http-addr", kind: KindGateway, needs: Needs{HTTP: true}, args: []string{"--http-addr=x"}, wantErr: "-http-addr"},
		{name: "no outbox without storage", needs: Needs{Bus: true}, args: []string{"--outbox-retention=1h"}, wantErr: "-outbox-retention"},
		{name: "a gateway takes no page token key", kind: KindGateway, args: []string{"--page-token-key=x"}, wantErr: "-page-token-key"},
		{name: "an undeclared dependency has no flag", args: []string{"--consent-addr=x"}, wantErr: "flag provided but not defined: -consent-addr"},
		{name: "a gateway takes no gRPC flags", kind: KindGateway, args: []string{"--grpc-addr=x"}, wantErr: "-grpc-addr"},
		{name: "a bank takes no token flags", kind: KindBank, args: []string{"--jwks-url=x"}, wantErr: "-jwks-url"},
		{name: "a bad environment value names the variable", env: map[string]string{"BANKBRIDGE_DRAIN_DELAY": "soon"}, wantErr: "BANKBRIDGE_DRAIN_DELAY"},
		{name: "the service's own check", args: []string{"--window=-1s"}, wantErr: "--window must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			spec, c := newSpec(tt.kind, tt.needs)
			rest, err := Parse(spec, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c, rest)
		})
	}
}

func TestPageTokens(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", pagetoken.MinKeyBytes)
	list := pagetoken.List{Method: "m", Parent: "users/alice"}
	a, err := pageTokens(credentials.Sensitive(key), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pagetoken.FromKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Decode(list, a.Encode(list, pagetoken.Position{Offset: 1})); err != nil {
		t.Errorf("another replica with the same key refused the token: %v", err)
	}
	if _, err := pageTokens("short", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "BANKBRIDGE_PAGE_TOKEN_KEY") {
		t.Errorf("a short key: %v, want an error naming the setting", err)
	}
	var logs strings.Builder
	if r, err := pageTokens("", slog.New(slog.NewTextHandler(&logs, nil))); err != nil || r == nil {
		t.Fatalf("no key: %v, %v", r, err)
	}
	if !strings.Contains(logs.String(), "page-token-key") {
		t.Errorf("no warning about the random key: %q", logs.String())
	}
}

func TestHelpIsErrHelp(t *testing.T) {
	t.Parallel()
	spec, _ := newSpec(KindService, Needs{})
	if _, err := Parse(spec, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp (Main exits 2)", err)
	}
}

// TestServeNamesTheMissingFlag: a declared dependency that is not
// configured stops the start with the flag to set.
func TestServeNamesTheMissingFlag(t *testing.T) {
	t.Parallel()
	remote := filepath.Join(t.TempDir(), "banks.yaml")
	if err := os.WriteFile(remote, []byte("banks:\n  - id: acme\n    display_name: Acme\n    kind: remote\n    endpoint: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	service := []string{"--issuer=https://issuer.test", "--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--plaintext"}
	tests := []struct {
		name  string
		kind  Kind
		needs Needs
		args  []string
		want  string
	}{
		{name: "token issuer", want: "balance needs --issuer (BANKBRIDGE_ISSUER) and --jwks-url (BANKBRIDGE_JWKS_URL)"},
		{name: "banks", needs: Needs{Banks: true}, args: service, want: "balance needs --banks (BANKBRIDGE_BANKS)"},
		{name: "vault", needs: Needs{Vault: true}, args: service, want: "balance needs --vault-addr (BANKBRIDGE_VAULT_ADDR)"},
		{name: "consent service", needs: Needs{Consent: true}, args: service, want: "balance needs --consent-addr (BANKBRIDGE_CONSENT_ADDR)"},
		{name: "service credentials", needs: Needs{Consent: true}, args: append(service, "--consent-addr=127.0.0.1:1"),
			want: "balance needs --token-url (BANKBRIDGE_TOKEN_URL)"},
		{name: "storage", needs: Needs{Storage: true}, args: append(service, "--data-dir="), want: "balance needs --database-url (BANKBRIDGE_DATABASE_URL)"},
		{name: "gateway address", kind: KindGateway, args: []string{"--addr="}, want: "balance needs --addr (BANKBRIDGE_ADDR)"},
		{name: "event bus", needs: Needs{Bus: true}, args: append(service, "--data-dir="),
			want: "balance needs --nats-url (BANKBRIDGE_NATS_URL) or, for an embedded NATS server, --nats-dir (BANKBRIDGE_NATS_DIR)"},
		{name: "event bus outside a service", kind: KindGateway, needs: Needs{Bus: true}, args: []string{"--addr=127.0.0.1:0", "--dev-mode", "--plaintext"},
			want: "balance: only a service can need the event bus"},
		{name: "public HTTP listener", needs: Needs{HTTP: true}, args: service, want: "balance needs --http-addr (BANKBRIDGE_HTTP_ADDR)"},
		{name: "public HTTP outside a service", kind: KindGateway, needs: Needs{HTTP: true}, args: []string{"--addr=127.0.0.1:0", "--dev-mode", "--plaintext"},
			want: "balance: only a service can need a public HTTP listener"},
		{name: "vault for remote banks", needs: Needs{Banks: true}, args: append(service, "--banks="+remote),
			want: "balance needs --vault-addr (BANKBRIDGE_VAULT_ADDR): bank acme is remote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, _ := newSpec(tt.kind, tt.needs)
			err := Run(t.Context(), tt.args, spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
