package server_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/server"
)

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
		{"one audience for public and internal methods", func(c *server.Config) { c.DevMode = true; c.InternalAudience = c.Audience }, "BANKBRIDGE_INTERNAL_AUDIENCE"},
		{"no internal audience", func(c *server.Config) { c.DevMode = true; c.InternalAudience = "" }, "BANKBRIDGE_INTERNAL_AUDIENCE"},
		{"no metadata limit", func(c *server.Config) { c.DevMode = true; c.MaxHeaderListBytes = 0 }, "--max-header-list-bytes"},
		{"no stream limit", func(c *server.Config) { c.DevMode = true; c.MaxConcurrentStreams = 0 }, "--max-concurrent-streams"},
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

// TestReflectionIsOffUnlessAskedFor: a service's default config serves no
// reflection; --reflection turns it on.
func TestReflectionIsOffUnlessAskedFor(t *testing.T) {
	t.Parallel()
	cfg := server.Defaults("balance", "127.0.0.1:0", "")
	if cfg.Reflection {
		t.Fatal("reflection is on by default")
	}
	fs := flag.NewFlagSet("balance", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--reflection"}); err != nil || !cfg.Reflection {
		t.Fatalf("--reflection: %v, on = %v", err, cfg.Reflection)
	}
}
