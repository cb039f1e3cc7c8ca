package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// env is the running stack shared by the tests in this package.
type env struct {
	stack    *stack.Stack
	spans    *collector
	logs     *testkit.SyncBuffer
	balance  string // gRPC address
	consent  string // gRPC address
	balAdmin string // balance admin HTTP address (/metrics)
	// http trusts the stack's CA: every listener is HTTPS.
	http *http.Client
}

var shared *env

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tb := &mainTB{}
	spans, received := startCollector(tb)
	defer tb.cleanup()
	logs := &testkit.SyncBuffer{}
	// The stack exports to the real collector, which exports to spans.
	otlp, err := startOtelcol(tb, root, received, logs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err, "\n--- collector output ---\n", logs.String())
		return 1
	}
	opts := stack.Options{
		Root:      root,
		DataDir:   must(os.MkdirTemp("", "bankbridge-e2e-")),
		FreePorts: true,
		Logs:      logs,
		// The sandbox carrier's scripted parcels move fast (shipping_test.go).
		CarrierStep: 300 * time.Millisecond,
		Env: []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlp,
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_EXPORTER_OTLP_INSECURE=true",
			"OTEL_BSP_SCHEDULE_DELAY=50",
			// The consent service's sweep writes expiry warnings (events_test.go).
			"BANKBRIDGE_SWEEP_INTERVAL=1s",
		},
	}
	defer os.RemoveAll(opts.DataDir)
	if err := stack.Build(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err, "\n--- stack output ---\n", logs.String())
		return 1
	}
	defer s.Stop()
	shared = &env{stack: s, spans: spans, logs: logs, balance: s.Addr("balance"), consent: s.Addr("consent"), balAdmin: s.AdminAddr("balance"),
		http: s.HTTPClient()}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "--- stack output ---\n"+logs.String())
	}
	return code
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// mainTB lets TestMain use helpers written for tests.
type mainTB struct {
	testing.TB
	cleanups []func()
}

func (m *mainTB) Helper()           {}
func (m *mainTB) Cleanup(f func())  { m.cleanups = append(m.cleanups, f) }
func (m *mainTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (m *mainTB) cleanup() {
	for i := len(m.cleanups) - 1; i >= 0; i-- {
		m.cleanups[i]()
	}
}

// rest is one HTTP call to the gateway.
type rest struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t testing.TB, method, path, token, purpose string, body any) rest {
	t.Helper()
	return callWithKey(t, method, path, token, purpose, "", body)
}

// callWithKey is call with the Idempotency-Key of a POST chosen by the
// caller; "" picks a fresh one.
func callWithKey(t testing.TB, method, path, token, purpose, key string, body any) rest {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, shared.stack.GatewayURL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set("Bankbridge-Purpose", purpose)
	}
	if method == http.MethodPost {
		if key == "" {
			key = randomKey()
		}
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := rest{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func randomKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r rest) reason() string {
	details, _ := r.body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

func (r rest) want(t testing.TB, status int, reason string) {
	t.Helper()
	if r.status != status || r.reason() != reason {
		t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.reason(), status, reason, r.raw)
	}
}

func devToken(t testing.TB, user string) string {
	t.Helper()
	r := call(t, http.MethodPost, "/v1/dev/tokens", "", "", map[string]string{"user": user})
	tok, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || tok == "" {
		t.Fatalf("dev token: %d %s", r.status, r.raw)
	}
	return tok
}

// link links user's sandbox bank, as the sandbox customer of the same name,
// with the sandbox code and returns the link name.
func link(t testing.TB, token, user string) string {
	t.Helper()
	return linkLogin(t, token, user, user)
}

func grpcCtx(token, purpose string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token, "bankbridge-purpose", purpose)
}

// dial connects to a service's gRPC listener over TLS, as a product team
// does: trusting the stack's CA, without a client certificate.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(shared.stack.ClientTLS())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
