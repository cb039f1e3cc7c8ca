package main

import (
	"strings"
	"testing"
	"time"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
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

// TestChanges maps the consent checker's changes to what the app acts on.
func TestChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   consentcheck.Change
		want app.Change
	}{
		{consentcheck.Change{User: "alice", Link: "users/alice/links/l1", LinkState: consentv1.ConsentState_CONSENT_STATE_VALID},
			app.Change{User: "alice", Link: "users/alice/links/l1", LinkState: app.LinkValid}},
		{consentcheck.Change{User: "alice", Link: "users/alice/links/l1", LinkState: consentv1.ConsentState_CONSENT_STATE_REVOKED},
			app.Change{User: "alice", Link: "users/alice/links/l1", LinkState: app.LinkRevoked}},
		{consentcheck.Change{User: "alice", Link: "users/alice/links/l1", LinkState: consentv1.ConsentState_CONSENT_STATE_EXPIRED},
			app.Change{User: "alice", Link: "users/alice/links/l1", LinkState: app.LinkExpired}},
		{consentcheck.Change{User: "alice", Link: "users/alice/links/l1", LinkState: consentv1.ConsentState_CONSENT_STATE_REJECTED},
			app.Change{User: "alice", Link: "users/alice/links/l1", LinkState: app.LinkOther}},
		{consentcheck.Change{User: "alice", PartnerOptIn: "users/alice/partnerOptIns/o1", Partner: "shop", PartnerState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED},
			app.Change{User: "alice", PartnerOptIn: "users/alice/partnerOptIns/o1", Partner: "shop", PartnerRevoked: true}},
		{consentcheck.Change{Resync: true}, app.Change{Resync: true}},
	}
	for _, tt := range tests {
		if got := change(tt.in); got != tt.want {
			t.Errorf("change(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
