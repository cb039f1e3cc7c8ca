package bootstrap_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

const drain, grace = time.Second, 3 * time.Second

// events records what happened when, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, what)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := ""
	for i, s := range e.list {
		if i > 0 {
			out += " < "
		}
		out += s
	}
	return out
}

// probe is a tiny gRPC service: Read waits as long as its request says,
// then answers bank acme's API key from the Vault provider the kit built.
// slow, when set, learns that a call that waited got its answer from the
// server's dependencies (on the server's side: the client may hear of it
// after the server has moved on).
type probe struct {
	vault *credentials.Provider
	slow  func()
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: "bootstraptest.Probe",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Read",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(durationpb.Duration)
			if err := dec(in); err != nil {
				return nil, err
			}
			time.Sleep(in.AsDuration())
			p := srv.(*probe)
			s, err := p.vault.Bank(ctx, "acme")
			if err != nil {
				return nil, err
			}
			if in.AsDuration() > 0 && p.slow != nil {
				p.slow()
			}
			return wrapperspb.String(s.Data["api_key"]), nil
		},
	}},
}

func read(ctx context.Context, conn *grpc.ClientConn, wait time.Duration) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/bootstraptest.Probe/Read", durationpb.New(wait), out)
	return out.GetValue(), err
}

// TestDependenciesOutliveTheSignal stops a binary while calls that need
// Vault are in flight and arriving: through the drain the Vault provider
// still serves, the in-flight call started before the signal finishes
// during the graceful stop, and only then do the tasks end, Close run and
// the provider close.
func TestDependenciesOutliveTheSignal(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})

	var ev events
	var vault *credentials.Provider
	ready := make(chan bootstrap.Listening, 1)
	cfg := bootstrap.Defaults("probe", "127.0.0.1:0", "127.0.0.1:0")
	spec := bootstrap.Spec{
		Kind:   bootstrap.KindBank,
		Config: &cfg,
		Needs:  bootstrap.Needs{Vault: true},
		Logs:   io.Discard,
		Ready:  func(l bootstrap.Listening) { ready <- l },
		Start: func(_ context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			vault = d.Vault
			return bootstrap.Service{
				GRPC: func(r grpc.ServiceRegistrar) {
					r.RegisterService(&probeDesc, &probe{vault: d.Vault, slow: func() { ev.add("slow call answered") }})
				},
				Tasks: []func(context.Context) error{func(ctx context.Context) error {
					<-d.Stopping
					ev.add("stopping")
					<-ctx.Done()
					ev.add("tasks end")
					return nil
				}},
				Close: func() { ev.add("close") },
			}, nil
		},
	}
	ctx, signal := context.WithCancel(context.Background())
	defer signal()
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, []string{
			"--vault-addr=" + v.Addr(), "--vault-token=" + v.RootToken(), "--dev-mode", "--plaintext",
			"--drain-delay=" + drain.String(), "--shutdown-grace=" + grace.String(),
		}, spec)
	}()
	var addrs bootstrap.Listening
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addrs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := read(t.Context(), conn, 0); got != "k1" || err != nil {
		t.Fatalf("before the signal: %q, %v", got, err)
	}

	slow := make(chan error, 1)
	go func() {
		_, err := read(context.Background(), conn, drain+500*time.Millisecond)
		slow <- err
	}()
	time.Sleep(100 * time.Millisecond)
	sent := time.Now()
	signal()

	time.Sleep(100 * time.Millisecond)
	if got := testkit.GetStatus(t, "http://"+addrs.AdminAddr+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain = %d, want 503", got)
	}
	if h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during the drain = %v, %v; want NOT_SERVING", h, err)
	}
	if got, err := read(t.Context(), conn, 0); got != "k1" || err != nil {
		t.Errorf("a call during the drain: %q, %v; want Vault's secret", got, err)
	}
	if err := <-slow; err != nil {
		t.Errorf("the call in flight when the graceful stop began: %v", err)
	}
	waitRun(t, done)
	if took := time.Since(sent); took < drain {
		t.Errorf("Run returned %s after the signal, before the drain delay ended", took)
	}
	if got, want := ev.String(), "stopping < slow call answered < tasks end < close"; got != want {
		t.Errorf("order: %s; want %s", got, want)
	}
	if _, err := vault.Bank(t.Context(), "acme"); err == nil {
		t.Error("the Vault provider still serves after Run returned; it was not closed")
	}
}

// TestGatewayDrains runs the same sequence on an HTTP binary: /readyz turns
// 503 at the signal, requests are served through the drain, and one in
// flight when the graceful stop begins finishes.
func TestGatewayDrains(t *testing.T) {
	t.Parallel()
	ready := make(chan bootstrap.Listening, 1)
	cfg := bootstrap.Defaults("gateway", "", "")
	cfg.HTTPAddr = "127.0.0.1:0"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		_, _ = w.Write([]byte("ok"))
	})
	spec := bootstrap.Spec{
		Kind:   bootstrap.KindGateway,
		Config: &cfg,
		Logs:   io.Discard,
		Ready:  func(l bootstrap.Listening) { ready <- l },
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{HTTP: mux}, nil
		},
	}
	ctx, signal := context.WithCancel(context.Background())
	defer signal()
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, []string{"--dev-mode", "--plaintext", "--drain-delay=" + drain.String(), "--shutdown-grace=" + grace.String()}, spec)
	}()
	var base string
	select {
	case l := <-ready:
		base = "http://" + l.Addr
	case err := <-done:
		t.Fatal(err)
	}
	if got := testkit.GetStatus(t, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d before the signal", got)
	}
	slow := make(chan int, 1)
	go func() { slow <- testkit.GetStatus(t, base+"/wait?d="+(drain+500*time.Millisecond).String()) }()
	time.Sleep(100 * time.Millisecond)
	signal()
	time.Sleep(100 * time.Millisecond)
	if got := testkit.GetStatus(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain = %d, want 503", got)
	}
	if got := testkit.GetStatus(t, base+"/wait?d=0s"); got != http.StatusOK {
		t.Errorf("a request during the drain = %d, want 200", got)
	}
	if got := <-slow; got != http.StatusOK {
		t.Errorf("the request in flight when the graceful stop began = %d, want 200", got)
	}
	waitRun(t, done)
}

// waitRun waits for Run's result on done: nil, within drain + grace.
func waitRun(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(drain + grace + time.Second):
		t.Fatal("Run did not return within drain + grace")
	}
}

// TestServicePublicHTTP runs a service with a public HTTP listener
// (Needs.HTTP): it serves beside gRPC with the trace id header and panics
// masked, and follows the gRPC listener's stop: requests are served
// through the drain, and one in flight when the graceful stop begins
// finishes.
func TestServicePublicHTTP(t *testing.T) {
	t.Parallel()
	logs := &testkit.SyncBuffer{}
	ready := make(chan bootstrap.Listening, 1)
	cfg := bootstrap.Defaults("carrierprobe", "127.0.0.1:0", "127.0.0.1:0")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("a value built from a request") })
	spec := bootstrap.Spec{
		Kind:   bootstrap.KindService,
		Config: &cfg,
		Needs:  bootstrap.Needs{HTTP: true},
		Logs:   logs,
		Ready:  func(l bootstrap.Listening) { ready <- l },
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			return bootstrap.Service{GRPC: func(grpc.ServiceRegistrar) {}, HTTP: mux}, nil
		},
	}
	ctx, signal := context.WithCancel(context.Background())
	defer signal()
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, []string{"--issuer=https://issuer.test", "--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--plaintext",
			"--http-addr=127.0.0.1:0", "--drain-delay=" + drain.String(), "--shutdown-grace=" + grace.String()}, spec)
	}()
	var l bootstrap.Listening
	select {
	case l = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	if l.HTTPAddr == "" || l.HTTPAddr == l.Addr || l.HTTPAddr == l.AdminAddr {
		t.Fatalf("Listening = %+v, want a public HTTP address of its own", l)
	}
	base := "http://" + l.HTTPAddr

	resp, err := http.Get(base + "/wait?d=0s")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Header.Get("X-Trace-Id")) != 32 {
		t.Errorf("status %d, X-Trace-Id %q; want 200 and a trace id", resp.StatusCode, resp.Header.Get("X-Trace-Id"))
	}

	t.Run("a panic is masked", func(t *testing.T) {
		resp, err := http.Get(base + "/panic")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var st spb.Status
		if err := protojson.Unmarshal(raw, &st); err != nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d, body %s (%v); want 500 and a JSON google.rpc.Status", resp.StatusCode, raw, err)
		}
		md := testkit.RequireReason(t, status.ErrorProto(&st), commonv1.ErrorReason_ERROR_REASON_INTERNAL)
		if id := md["incident_id"]; id == "" || !strings.Contains(logs.String(), id) {
			t.Errorf("incident %q not logged", id)
		}
		if strings.Contains(string(raw)+logs.String(), "built from a request") {
			t.Error("the panic value reached the caller or the log")
		}
	})

	slow := make(chan int, 1)
	go func() { slow <- testkit.GetStatus(t, base+"/wait?d="+(drain+500*time.Millisecond).String()) }()
	time.Sleep(100 * time.Millisecond)
	signal()
	time.Sleep(100 * time.Millisecond)
	if got := testkit.GetStatus(t, "http://"+l.AdminAddr+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain = %d, want 503", got)
	}
	if got := testkit.GetStatus(t, base+"/wait?d=0s"); got != http.StatusOK {
		t.Errorf("a public request during the drain = %d, want 200", got)
	}
	if got := <-slow; got != http.StatusOK {
		t.Errorf("the public request in flight when the graceful stop began = %d, want 200", got)
	}
	waitRun(t, done)
	if _, err := http.Get(base + "/wait?d=0s"); err == nil {
		t.Error("the public listener still answers after Run returned")
	}
}

// TestPublicHTTPIsDeclared: a service serves HTTP only when its Spec
// declares Needs.HTTP, and must hand a handler when it does.
func TestPublicHTTPIsDeclared(t *testing.T) {
	t.Parallel()
	args := []string{"--grpc-addr=127.0.0.1:0", "--admin-addr=", "--issuer=https://issuer.test", "--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--plaintext"}
	tests := []struct {
		name  string
		needs bootstrap.Needs
		args  []string
		http  http.Handler
		want  string
	}{
		{"a handler without Needs.HTTP", bootstrap.Needs{}, nil, http.NotFoundHandler(), "does not declare Needs.HTTP"},
		{"Needs.HTTP without a handler", bootstrap.Needs{HTTP: true}, []string{"--http-addr=127.0.0.1:0"}, nil, "returned no HTTP handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := bootstrap.Defaults("carrierprobe", "127.0.0.1:0", "")
			err := bootstrap.Run(t.Context(), append(append([]string(nil), args...), tt.args...), bootstrap.Spec{
				Kind: bootstrap.KindService, Config: &cfg, Needs: tt.needs, Logs: io.Discard,
				Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
					return bootstrap.Service{GRPC: func(grpc.ServiceRegistrar) {}, HTTP: tt.http}, nil
				},
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
