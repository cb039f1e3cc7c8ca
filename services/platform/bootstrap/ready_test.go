package bootstrap_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	bus "github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// forwarder relays TCP connections to target until closed; closing it
// drops every relayed connection, as a dependency's host going away does.
type forwarder struct {
	lis    net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func forward(t *testing.T, target string) *forwarder {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{lis: lis}
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			if !f.track(in, out) {
				return
			}
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *forwarder) track(c ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, x := range c {
			_ = x.Close()
		}
		return false
	}
	f.conns = append(f.conns, c...)
	return true
}

func (f *forwarder) addr() string { return f.lis.Addr().String() }

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	_ = f.lis.Close()
	for _, c := range f.conns {
		_ = c.Close()
	}
}

// readyService serves a service with storage and the bus at databaseURL
// and natsURL until the test ends, and returns its /readyz URL.
func readyService(t *testing.T, databaseURL, natsURL string) string {
	t.Helper()
	cfg := bootstrap.Defaults("readyprobe", "127.0.0.1:0", "127.0.0.1:0")
	listening := make(chan bootstrap.Listening, 1)
	spec := bootstrap.Spec{
		Kind: bootstrap.KindService, Config: &cfg, Needs: bootstrap.Needs{Storage: true, Bus: true}, Logs: io.Discard,
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{GRPC: func(grpc.ServiceRegistrar) {}}, nil
		},
		Ready: func(l bootstrap.Listening) { listening <- l },
	}
	args := []string{"--grpc-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0", "--issuer=https://issuer.test",
		"--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--plaintext", "--drain-delay=0s",
		"--database-url=" + databaseURL, "--nats-url=" + natsURL}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bootstrap.Run(ctx, args, spec) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the service did not stop")
		}
	})
	select {
	case l := <-listening:
		return "http://" + l.AdminAddr + "/readyz"
	case err := <-done:
		t.Fatalf("the service stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not start")
	}
	return ""
}

func readyz(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// postgresBehind creates a PostgreSQL database and returns its URL through
// a forwarder the test can cut.
func postgresBehind(t *testing.T) (string, *forwarder) {
	t.Helper()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	u, err := url.Parse(storagetest.PostgresDatabase(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	f := forward(t, u.Host)
	u.Host = f.addr()
	return u.String(), f
}

// natsServer is an embedded NATS server the test can stop.
func natsServer(t *testing.T) *bus.Server {
	t.Helper()
	srv, err := bus.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// requireNotReady waits for /readyz to say 503 naming what, and never the
// dependency's address.
func requireNotReady(t *testing.T, u, what string, secrets ...string) {
	t.Helper()
	var code int
	var body string
	if !testkit.Within(10*time.Second, func() bool {
		code, body = readyz(t, u)
		return code == http.StatusServiceUnavailable
	}) {
		t.Fatalf("/readyz = %d %q, want 503", code, body)
	}
	if !strings.Contains(body, what) {
		t.Errorf("/readyz body %q does not name the %s", body, what)
	}
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("/readyz body %q gives away %q", body, s)
		}
	}
}

func TestReadyzReflectsTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL, pg := postgresBehind(t)
	u := readyService(t, dbURL, natsServer(t).URL())
	if code, body := readyz(t, u); code != http.StatusOK {
		t.Fatalf("/readyz with every dependency up = %d %q, want 200", code, body)
	}
	pg.close()
	requireNotReady(t, u, "database", pg.addr(), "postgres", "bbtest_")
}

func TestReadyzReflectsTheBus(t *testing.T) {
	t.Parallel()
	nats := natsServer(t)
	u := readyService(t, storageURL(t), nats.URL())
	if code, body := readyz(t, u); code != http.StatusOK {
		t.Fatalf("/readyz with every dependency up = %d %q, want 200", code, body)
	}
	nats.Close()
	requireNotReady(t, u, "event bus", strings.TrimPrefix(nats.URL(), "nats://"))
}

// storageURL is a SQLite database of the test's own.
func storageURL(t *testing.T) string {
	t.Helper()
	return storage.SQLiteURL(t.TempDir(), "ready")
}
