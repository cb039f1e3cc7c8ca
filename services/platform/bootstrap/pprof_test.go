package bootstrap_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// runPprof runs a binary of kind with args until the test ends and returns
// the base URL of the listener that serves its profiles with --pprof: the
// admin listener, or the gateway's own.
func runPprof(t *testing.T, kind bootstrap.Kind, args ...string) string {
	t.Helper()
	ready := make(chan bootstrap.Listening, 1)
	cfg := bootstrap.Defaults("probe", "127.0.0.1:0", "127.0.0.1:0")
	cfg.HTTPAddr = "127.0.0.1:0"
	spec := bootstrap.Spec{
		Kind: kind, Config: &cfg, Logs: io.Discard,
		Ready: func(l bootstrap.Listening) { ready <- l },
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{HTTP: http.NotFoundHandler(), GRPC: func(grpc.ServiceRegistrar) {}}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, append([]string{"--dev-mode", "--plaintext", "--drain-delay=0s"}, args...), spec)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case l := <-ready:
		if kind == bootstrap.KindGateway {
			return "http://" + l.Addr
		}
		return "http://" + l.AdminAddr
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

// TestPprof: --pprof serves /debug/pprof/ on a bank's admin listener and
// on the gateway's; without it there is none, and the gateway refuses it
// outside --dev-mode, where its listener is public.
func TestPprof(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind bootstrap.Kind
		args []string
		want int
	}{
		{name: "bank with --pprof", kind: bootstrap.KindBank, args: []string{"--pprof"}, want: http.StatusOK},
		{name: "bank without", kind: bootstrap.KindBank, want: http.StatusNotFound},
		{name: "gateway with --pprof", kind: bootstrap.KindGateway, args: []string{"--pprof"}, want: http.StatusOK},
		{name: "gateway without", kind: bootstrap.KindGateway, want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := runPprof(t, tt.kind, tt.args...)
			if got := testkit.GetStatus(t, base+"/debug/pprof/cmdline"); got != tt.want {
				t.Errorf("/debug/pprof/cmdline = %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("gateway outside dev mode", func(t *testing.T) {
		t.Parallel()
		cfg := bootstrap.Defaults("gateway", "", "")
		cfg.HTTPAddr = "127.0.0.1:0"
		err := bootstrap.Run(t.Context(), []string{"--pprof"}, bootstrap.Spec{Kind: bootstrap.KindGateway, Config: &cfg, Logs: io.Discard,
			Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
				return bootstrap.Service{HTTP: http.NotFoundHandler()}, nil
			}})
		if err == nil || !strings.Contains(err.Error(), "--dev-mode only") {
			t.Errorf("Run = %v, want a refusal naming --dev-mode", err)
		}
	})
}
