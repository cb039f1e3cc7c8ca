package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
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
	if cfg.Retention != 396*24*time.Hour || cfg.IdempotencyTTL != 7*24*time.Hour || cfg.MatchGiveUp != 14*24*time.Hour ||
		cfg.ReconcileInterval != time.Hour || !slices.Equal(cfg.MatchBackoff, durations(app.DefaultMatchBackoff())) ||
		cfg.Server.GRPCAddr != "127.0.0.1:9103" || cfg.Server.AdminAddr != "127.0.0.1:9203" {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = parse("--match-backoff=1s, 2s", "--retention=48h", "--issuer-sync-interval=5s", "--reconcile-interval=3s")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.MatchBackoff, durations{time.Second, 2 * time.Second}) || cfg.Retention != 48*time.Hour ||
		cfg.IssuerInterval != 5*time.Second || cfg.ReconcileInterval != 3*time.Second {
		t.Errorf("parsed = %+v", cfg)
	}

	for _, tt := range []struct{ arg, want string }{
		{"--retention=23h", "--retention"},
		{"--idempotency-key-ttl=24h", "--idempotency-key-ttl"},
		{"--match-backoff=1m,0s", "--match-backoff"},
		{"--match-backoff=soon", "match-backoff"},
		{"--reconcile-interval=0s", "--reconcile-interval"},
	} {
		if _, err := parse(tt.arg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.arg, err, tt.want)
		}
	}
}
