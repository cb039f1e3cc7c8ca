package bootstrap_test

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	bus "github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// serviceArgs start a KindService in dev mode; the JWKS is never fetched.
var serviceArgs = []string{"--grpc-addr=127.0.0.1:0", "--admin-addr=", "--issuer=https://issuer.test",
	"--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--plaintext", "--drain-delay=0s"}

// runService serves a service that needs storage and the bus until the
// test ends, and hands its Deps to check, from Start.
func runService(t *testing.T, args []string, check func(context.Context, *bootstrap.Deps) error) {
	t.Helper()
	cfg := bootstrap.Defaults("busprobe", "127.0.0.1:0", "")
	checked := make(chan error, 1)
	spec := bootstrap.Spec{
		Kind:   bootstrap.KindService,
		Config: &cfg,
		Needs:  bootstrap.Needs{Storage: true, Bus: true},
		Logs:   io.Discard,
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{
				GRPC:  func(grpc.ServiceRegistrar) {},
				Tasks: []func(context.Context) error{func(context.Context) error { checked <- check(ctx, d); return nil }},
			}, nil
		},
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bootstrap.Run(ctx, append(append([]string(nil), serviceArgs...), args...), spec) }()
	select {
	case err := <-checked:
		if err != nil {
			t.Error(err)
		}
	case err := <-done:
		t.Fatalf("the service stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not start")
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// throughTheOutbox writes an event through Deps.Outbox and waits for it on
// Deps.Bus: the relay the kit runs published it.
func throughTheOutbox(ctx context.Context, d *bootstrap.Deps) error {
	ch, err := d.Bus.Subscribe(ctx, bus.Filter{User: "alice"}, "")
	if err != nil {
		return err
	}
	e := bus.Event{ID: "ev-1", Type: "probe.thing.done", Source: "busprobe", User: "alice", Resource: "users/alice/things/1"}
	if err := d.DB.InTx(ctx, func(tx *sql.Tx) error { return d.Outbox.Add(ctx, tx, e) }); err != nil {
		return err
	}
	select {
	case got := <-ch:
		if got.ID != e.ID {
			return &unexpected{got.ID}
		}
		return nil
	case <-time.After(10 * time.Second):
		return &unexpected{"nothing"}
	}
}

type unexpected struct{ got string }

func (u *unexpected) Error() string { return "delivered " + u.got + ", want ev-1" }

// TestBusEmbedded: with no --nats-url a service embeds a NATS server under
// its data dir, and what it writes to the outbox reaches the bus.
func TestBusEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runService(t, []string{"--data-dir=" + dir}, throughTheOutbox)
	if m, _ := filepath.Glob(filepath.Join(dir, "busprobe", "nats", "jetstream")); len(m) != 1 {
		t.Errorf("no JetStream store under %s/busprobe/nats", dir)
	}
}

// TestBusWithVaultCredentials: with --nats-url and --vault-addr the
// service reads the NATS token from Vault (bankbridge/nats).
func TestBusWithVaultCredentials(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	srv, err := bus.Embedded(t.TempDir(), bus.WithToken("nats-token-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	args := []string{"--data-dir=" + t.TempDir(), "--nats-url=" + srv.URL(), "--vault-addr=" + v.Addr(), "--vault-token=" + v.RootToken()}

	// No secret: the service connects without credentials, which this
	// server refuses.
	cfg := bootstrap.Defaults("busprobe", "127.0.0.1:0", "")
	err = bootstrap.Run(t.Context(), append(append([]string(nil), serviceArgs...), args...), bootstrap.Spec{
		Kind: bootstrap.KindService, Config: &cfg, Needs: bootstrap.Needs{Storage: true, Bus: true}, Logs: io.Discard,
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) { return bootstrap.Service{}, nil },
	})
	if err == nil || !strings.Contains(err.Error(), "connect to NATS") {
		t.Fatalf("without credentials: %v, want a refused connection", err)
	}

	v.Write(t, "bankbridge/data/nats", map[string]any{"data": map[string]any{"token": "nats-token-1"}})
	runService(t, args, throughTheOutbox)
}
