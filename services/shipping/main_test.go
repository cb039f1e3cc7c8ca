package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

// TestFlags reads the service's own flags, their defaults, and refuses
// settings that would break a promise of the contract.
func TestFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (*config, error) {
		cfg := defaults()
		_, err := bootstrap.Parse(spec(cfg), args)
		return cfg, err
	}
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExpireAfter != 30*24*time.Hour || cfg.SweepInterval != 10*time.Minute || cfg.IdempotencyTTL != 7*24*time.Hour ||
		cfg.Server.GRPCAddr != "127.0.0.1:9105" || cfg.Server.AdminAddr != "127.0.0.1:9205" || cfg.HTTPAddr != "127.0.0.1:9305" {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = parse("--expire-after=48h", "--sweep-interval=30s", "--idempotency-key-ttl=240h", "--http-addr=127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExpireAfter != 48*time.Hour || cfg.SweepInterval != 30*time.Second || cfg.IdempotencyTTL != 240*time.Hour || cfg.HTTPAddr != "127.0.0.1:0" {
		t.Errorf("parsed = %+v", cfg)
	}

	for _, tt := range []struct{ arg, want string }{
		{"--expire-after=0s", "--expire-after"},
		{"--sweep-interval=-1s", "--sweep-interval"},
		{"--idempotency-key-ttl=167h", "--idempotency-key-ttl"},
		{"--expire-after=soon", "expire-after"},
	} {
		if _, err := parse(tt.arg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.arg, err, tt.want)
		}
	}
}
