package bootstrap_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestTheGatewayHasAnAdminListener: a gateway with --admin-addr serves
// /healthz, /metrics and a /readyz that answers 503 while one of its
// probes (its backends) does not answer, and 200 once it does.
func TestTheGatewayHasAnAdminListener(t *testing.T) {
	t.Parallel()
	var backendUp atomic.Bool
	ready := make(chan bootstrap.Listening, 1)
	cfg := bootstrap.Defaults("gateway", "", "")
	cfg.HTTPAddr = "127.0.0.1:0"
	spec := bootstrap.Spec{
		Kind: bootstrap.KindGateway, Config: &cfg, Logs: io.Discard,
		Ready: func(l bootstrap.Listening) { ready <- l },
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{HTTP: http.NotFoundHandler(), Probes: []server.Probe{{Name: "balance", Check: func(context.Context) error {
				if !backendUp.Load() {
					return errors.New("connection refused")
				}
				return nil
			}}}}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, []string{"--dev-mode", "--plaintext", "--admin-addr=127.0.0.1:0"}, spec)
	}()
	t.Cleanup(func() { cancel(); <-done })
	var admin string
	select {
	case l := <-ready:
		admin = "http://" + l.AdminAddr
	case err := <-done:
		t.Fatal(err)
	}
	if got := testkit.GetStatus(t, admin+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", got)
	}
	if got := testkit.GetStatus(t, admin+"/metrics"); got != http.StatusOK {
		t.Errorf("/metrics = %d, want 200", got)
	}
	if got := testkit.GetStatus(t, admin+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with its backend down = %d, want 503", got)
	}
	backendUp.Store(true)
	// A probe's result is reused for a second: poll until the next round.
	testkit.Eventually(t, func() bool { return testkit.GetStatus(t, admin+"/readyz") == http.StatusOK }, 10*time.Second)
}
