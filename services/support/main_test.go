package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

// TestFlags reads the service's own flags, their defaults, and refuses
// settings that make no sense.
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
	if cfg.BalanceAddr != "127.0.0.1:9102" || cfg.AgentIdleTimeout != 10*time.Minute || cfg.MessageRetention != 90*24*time.Hour ||
		cfg.SweepInterval != time.Minute || cfg.LeaseTTL != 15*time.Second ||
		cfg.Server.GRPCAddr != "127.0.0.1:9104" || cfg.Server.AdminAddr != "127.0.0.1:9204" {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = parse("--balance-addr=balance:9102", "--agent-idle-timeout=2m", "--message-retention=720h", "--sweep-interval=30s", "--bank-events-lease=30s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BalanceAddr != "balance:9102" || cfg.AgentIdleTimeout != 2*time.Minute || cfg.MessageRetention != 720*time.Hour ||
		cfg.SweepInterval != 30*time.Second || cfg.LeaseTTL != 30*time.Second {
		t.Errorf("parsed = %+v", cfg)
	}

	for _, tt := range []struct{ arg, want string }{
		{"--balance-addr=", "--balance-addr"},
		{"--agent-idle-timeout=0s", "--agent-idle-timeout"},
		{"--message-retention=59m", "--message-retention"},
		{"--sweep-interval=-1s", "--sweep-interval"},
		{"--bank-events-lease=500ms", "--bank-events-lease"},
		{"--agent-idle-timeout=soon", "agent-idle-timeout"},
	} {
		if _, err := parse(tt.arg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.arg, err, tt.want)
		}
	}
}
