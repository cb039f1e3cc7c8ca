package server_test

import (
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
