package server_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/server"
)

func TestConfigFromFlagsAndEnv(t *testing.T) {
	t.Setenv("BANKBRIDGE_GRPC_ADDR", "127.0.0.1:9100")
	t.Setenv("BANKBRIDGE_JWKS_URL", "https://issuer.test/jwks")
	t.Setenv("BANKBRIDGE_ISSUER", "https://issuer.test")
	t.Setenv("BANKBRIDGE_SHUTDOWN_GRACE", "3s")
	t.Setenv("BANKBRIDGE_SUBJECT_KEY", "k")
	cfg := server.Defaults("balance", "127.0.0.1:9000", "")
	if err := cfg.Parse(flag.NewFlagSet("balance", flag.ContinueOnError), []string{"--shutdown-grace=7s"}); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9100" || cfg.JWKSURL != "https://issuer.test/jwks" {
		t.Errorf("env not applied: %+v", cfg)
	}
	if cfg.ShutdownGrace != 7*time.Second {
		t.Errorf("ShutdownGrace = %v, want the flag's 7s over the env's 3s", cfg.ShutdownGrace)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*server.Config)
		want string
	}{
		{"no JWKS outside dev mode", func(c *server.Config) { c.Issuer = "i" }, "BANKBRIDGE_JWKS_URL"},
		{"no issuer outside dev mode", func(c *server.Config) { c.JWKSURL = "u" }, "BANKBRIDGE_ISSUER"},
		{"no grpc address", func(c *server.Config) { c.DevMode = true; c.GRPCAddr = "" }, "BANKBRIDGE_GRPC_ADDR"},
		{"negative drain", func(c *server.Config) { c.DevMode = true; c.DrainDelay = -time.Second }, "--drain-delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := server.Defaults("balance", "127.0.0.1:0", "")
			tt.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
