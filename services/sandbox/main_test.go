package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	adapterruntime "github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestConfig parses flags and BANKBRIDGE_* variables as the binary does.
// It sets environment variables, so it does not run in parallel.
func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*testing.T, *config)
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--api-key-file", "/run/key"},
			check: func(t *testing.T, c *config) {
				if c.Server.GRPCAddr != "127.0.0.1:9400" || c.Server.AdminAddr != "127.0.0.1:9401" || c.APIKeyGrace != 10*time.Minute ||
					c.APIKeyPoll != time.Second || c.Bank.BankID != "sandbox" || c.Bank.ErrorRate != 0 || c.Bank.Latency != 0 || c.Bank.Seed != 1 ||
					c.Bank.FraudCaseStep != sandbox.DefaultFraudCaseStep ||
					c.Carrier != (carrierConfig{Step: 2 * time.Second}) {
					t.Errorf("config %+v", c)
				}
			},
		},
		{
			name: "carrier",
			args: []string{"--api-key-file", "/run/key", "--carrier-push-url", "http://127.0.0.1:8080/v1/carriers/sandbox/trackingEvents",
				"--carrier-secret-file", "/run/carrier-secret", "--carrier-step", "500ms", "--carrier-autoplay"},
			check: func(t *testing.T, c *config) {
				want := carrierConfig{PushURL: "http://127.0.0.1:8080/v1/carriers/sandbox/trackingEvents", SecretFile: "/run/carrier-secret",
					Step: 500 * time.Millisecond, Autoplay: true}
				if c.Carrier != want {
					t.Errorf("carrier %+v, want %+v", c.Carrier, want)
				}
			},
		},
		{
			name: "carrier from the environment",
			env: map[string]string{
				"BANKBRIDGE_API_KEY_FILE": "/run/key", "BANKBRIDGE_CARRIER_PUSH_URL": "https://gw.example/v1/carriers/sandbox/trackingEvents",
				"BANKBRIDGE_CARRIER_SECRET_FILE": "/run/carrier-secret", "BANKBRIDGE_CARRIER_STEP": "1s", "BANKBRIDGE_CARRIER_AUTOPLAY": "true",
			},
			check: func(t *testing.T, c *config) {
				if c.Carrier.PushURL != "https://gw.example/v1/carriers/sandbox/trackingEvents" || c.Carrier.SecretFile != "/run/carrier-secret" ||
					c.Carrier.Step != time.Second || !c.Carrier.Autoplay {
					t.Errorf("carrier %+v", c.Carrier)
				}
			},
		},
		{
			name:    "carrier push URL without a secret",
			args:    []string{"--api-key-file", "/run/key", "--carrier-push-url", "http://127.0.0.1:8080/v1/carriers/sandbox/trackingEvents"},
			wantErr: "--carrier-secret-file (BANKBRIDGE_CARRIER_SECRET_FILE) is required",
		},
		{
			name:    "carrier secret without a push URL",
			args:    []string{"--api-key-file", "/run/key", "--carrier-secret-file", "/run/carrier-secret"},
			wantErr: "--carrier-secret-file needs --carrier-push-url",
		},
		{
			name:    "carrier autoplay without a push URL",
			args:    []string{"--api-key-file", "/run/key", "--carrier-autoplay"},
			wantErr: "--carrier-autoplay needs --carrier-push-url",
		},
		{
			name:    "carrier push URL without a scheme",
			args:    []string{"--api-key-file", "/run/key", "--carrier-push-url", "127.0.0.1:8080/v1", "--carrier-secret-file", "/run/s"},
			wantErr: "--carrier-push-url must be an absolute http or https URL",
		},
		{
			name: "carrier step not positive",
			args: []string{"--api-key-file", "/run/key", "--carrier-push-url", "http://127.0.0.1:8080/v1", "--carrier-secret-file", "/run/s",
				"--carrier-step", "0s"},
			wantErr: "--carrier-step must be positive",
		},
		{
			name: "environment",
			env: map[string]string{
				"BANKBRIDGE_API_KEY_FILE": "/run/key", "BANKBRIDGE_GRPC_ADDR": "0.0.0.0:9500",
				"BANKBRIDGE_LATENCY": "250ms", "BANKBRIDGE_ERROR_RATE": "0.25", "BANKBRIDGE_SEED": "42",
			},
			check: func(t *testing.T, c *config) {
				if c.APIKeyFile != "/run/key" || c.Server.GRPCAddr != "0.0.0.0:9500" || c.Bank.Latency != 250*time.Millisecond ||
					c.Bank.ErrorRate != 0.25 || c.Bank.Seed != 42 {
					t.Errorf("config %+v", c)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--latency", "1s"},
			env:  map[string]string{"BANKBRIDGE_API_KEY_FILE": "/run/key", "BANKBRIDGE_LATENCY": "250ms"},
			check: func(t *testing.T, c *config) {
				if c.Bank.Latency != time.Second {
					t.Errorf("latency %s, want the flag's 1s", c.Bank.Latency)
				}
			},
		},
		{
			name: "fraud case step",
			args: []string{"--api-key-file", "/run/key", "--fraud-case-step", "0s"},
			env:  map[string]string{"BANKBRIDGE_FRAUD_CASE_STEP": "1s"},
			check: func(t *testing.T, c *config) {
				if c.Bank.FraudCaseStep != 0 {
					t.Errorf("fraud case step %s, want the flag's 0s", c.Bank.FraudCaseStep)
				}
			},
		},
		{name: "fraud case step negative", args: []string{"--api-key-file", "/run/key", "--fraud-case-step", "-1s"}, wantErr: "--fraud-case-step must not be negative"},
		{
			name: "synthetic customers",
			args: []string{"--api-key-file", "/run/key", "--synthetic-customers", "1000"},
			check: func(t *testing.T, c *config) {
				if c.Bank.SyntheticCustomers != 1000 {
					t.Errorf("synthetic customers %d, want 1000", c.Bank.SyntheticCustomers)
				}
			},
		},
		{name: "synthetic customers over the bound", args: []string{"--api-key-file", "/run/key", "--synthetic-customers", "10001"}, wantErr: "--synthetic-customers must be between 0 and 10000"},
		{name: "api key file required", wantErr: "--api-key-file (BANKBRIDGE_API_KEY_FILE) is required"},
		{name: "bad environment value", env: map[string]string{"BANKBRIDGE_LATENCY": "slow"}, wantErr: "BANKBRIDGE_LATENCY"},
		{name: "a service's flag is not a bank's", args: []string{"--api-key-file", "/run/key", "--jwks-url", "x"}, wantErr: "jwks-url"},
		{name: "stray argument", args: []string{"--api-key-file", "/run/key", "extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := defaults()
			s := spec(c)
			rest, err := bootstrap.Parse(s, tt.args)
			if err == nil && len(rest) > 0 {
				err = run(t.Context(), tt.args) // what the binary does with them
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// credentials is a CredentialSource standing in for Vault.
type credentials struct {
	mu  sync.Mutex
	key string
}

func (c *credentials) BankCredential(context.Context, adapterruntime.Bank) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]string{"api_key": c.key}, nil
}

func (c *credentials) set(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key = key
}

func writeKey(t *testing.T, path, key string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// start runs the sandbox in-process on 127.0.0.1:0, through the kit as the
// binary does; stop (also run at the test's end) ends it and fails the test
// unless it returns cleanly within wait.
func start(t *testing.T, args ...string) (addrs bootstrap.Listening, stop func(wait time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan bootstrap.Listening, 1)
	done := make(chan error, 1)
	s := spec(defaults())
	s.Ready = func(l bootstrap.Listening) { ready <- l }
	s.Logs = io.Discard
	args = append([]string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--dev-mode", "--plaintext"}, args...)
	go func() { done <- bootstrap.Run(ctx, args, s) }()
	var once sync.Once
	stop = func(wait time.Duration) {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("run did not return within %s after its context ended", wait)
			}
		})
	}
	t.Cleanup(func() { stop(10 * time.Second) })
	select {
	case a := <-ready:
		return a, stop
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not start")
	}
	return bootstrap.Listening{}, stop
}

func registry(t *testing.T, addr string, creds adapterruntime.CredentialSource) adapterv1.BankAdapterServiceClient {
	t.Helper()
	r, err := adapterruntime.NewRegistry([]adapterruntime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: adapterruntime.KindRemote, Endpoint: addr}},
		adapterruntime.WithCredentials(creds), adapterruntime.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	c, err := r.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAPIKeyRotation rotates the key file under a running sandbox: the new
// key works without a restart, the old one for the grace period only.
func TestAPIKeyRotation(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	const grace = 500 * time.Millisecond
	addrs, _ := start(t, "--api-key-file", keyFile, "--api-key-poll", "20ms", "--api-key-grace", grace.String())

	creds := &credentials{key: "first-key-0001"}
	c := registry(t, addrs.Addr, creds)
	call := func() error {
		_, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
		return err
	}
	// The bank's CREDENTIALS_REJECTED, as the registry passes it on.
	rejected := func(err error) bool { return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE) }

	if err := call(); err != nil {
		t.Fatal(err)
	}
	creds.set("wrong-key-0000")
	if err := call(); !rejected(err) {
		t.Fatalf("wrong key: want it refused, got %v", err)
	}

	// Rotate: the file first, then Vault, as an operator would.
	writeKey(t, keyFile, "second-key-0002")
	creds.set("second-key-0002")
	deadline := time.Now().Add(3 * time.Second)
	for err := call(); err != nil; err = call() {
		if !rejected(err) || time.Now().After(deadline) {
			t.Fatalf("new key after rotation: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rotatedAt := time.Now()
	creds.set("first-key-0001")
	if err := call(); err != nil {
		t.Errorf("old key within the grace period: %v", err)
	}
	time.Sleep(time.Until(rotatedAt.Add(grace + 200*time.Millisecond)))
	if err := call(); !rejected(err) {
		t.Errorf("old key after the grace period: want it refused, got %v", err)
	}
}

func TestAdminEndpointAndShutdown(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	addrs, stop := start(t, "--api-key-file", keyFile)

	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusOK, "/metrics": http.StatusOK} {
		if got := testkit.GetStatus(t, "http://"+addrs.AdminAddr+path); got != want {
			t.Errorf("GET %s = %d, want %d", path, got, want)
		}
	}
	resp, err := http.Post("http://"+addrs.AdminAddr+"/admin/fraud-alerts?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("alert before alice linked: %d, want 409", resp.StatusCode)
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/admin/fraud-alerts/alert-unknown"},
		{http.MethodPost, "/admin/support/request-control?case=case-unknown"},
	} {
		r, err := http.NewRequestWithContext(t.Context(), req.method, "http://"+addrs.AdminAddr+req.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s, want the sandbox's own JSON 404", req.method, req.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, err = http.Post("http://"+addrs.AdminAddr+"/admin/carrier/play?tracking_number="+sandbox.TrackingDelivered, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("carrier play without a carrier: %d, want 409", resp.StatusCode)
	}

	// An open event stream must not hold up a graceful stop, which would
	// otherwise wait for the whole grace period.
	c := registry(t, addrs.Addr, &credentials{key: "first-key-0001"})
	stream, err := c.StreamEvents(t.Context(), &adapterv1.StreamEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		ended <- err
	}()
	// The stream is open at the sandbox once a call behind it is answered.
	if _, err := c.CheckHealth(t.Context(), &adapterv1.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stop(defaults().Server.ShutdownGrace / 2)
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the stream ended with %v, want a clean end (io.EOF) that bankbridge resumes from", err)
		}
	case <-time.After(time.Second):
		t.Error("the stream did not end with the server")
	}
}

// TestBinary builds the command as a release would, with the version and
// commit set at link time, and runs it: --version prints them and exits 0,
// -h exits 2, a missing setting exits 1 naming it, and a serving sandbox
// reports the linked version and commit and exits 0 on SIGTERM within its
// drain delay and grace.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	const version, commit = "v9.8.7-linked", "c0ffee123456"
	bin := filepath.Join(t.TempDir(), "sandbox")
	build := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/bankbridge/bankbridge/services/platform/buildinfo.Version="+version+
			" -X github.com/bankbridge/bankbridge/services/platform/buildinfo.Commit="+commit, ".")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exitCode := func(err error) int {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return ee.ExitCode()
		}
		return 0
	}

	out, err := exec.Command(bin, "--version").Output()
	if want := "bankbridge-sandbox " + version + " (commit " + commit + ", " + runtime.Version() + ")\n"; err != nil || string(out) != want {
		t.Errorf("sandbox --version: %v, %q; want exit 0 and %q", err, out, want)
	}
	out, err = exec.Command(bin, "-h").CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(out), "-api-key-file") || !strings.Contains(string(out), "-version") {
		t.Errorf("sandbox -h: exit %d, want 2 with the usage; output:\n%s", exitCode(err), out)
	}
	out, err = exec.Command(bin).CombinedOutput()
	if exitCode(err) != 1 || !strings.HasPrefix(string(out), "sandbox: ") || !strings.Contains(string(out), "--api-key-file") {
		t.Errorf("sandbox without a key file: exit %d, want 1 naming the flag; output:\n%s", exitCode(err), out)
	}

	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	cmd := exec.Command(bin, "--grpc-addr=127.0.0.1:0", "--admin-addr=", "--api-key-file="+keyFile, "--dev-mode", "--plaintext",
		"--drain-delay=300ms", "--shutdown-grace=2s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	var started, serving bool
	for !serving && lines.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			Version string `json:"version"`
			Commit  string `json:"commit"`
		}
		_ = json.Unmarshal(lines.Bytes(), &line)
		switch line.Msg {
		case "starting":
			started = true
			if line.Version != version || line.Commit != commit {
				t.Errorf("reported version %q and commit %q, want the linked %q and %q", line.Version, line.Commit, version, commit)
			}
		case "serving":
			serving = true
		}
	}
	if !started || !serving {
		t.Fatalf("no starting and serving lines (%v)", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if took := time.Since(sent); exitCode(err) != 0 || err != nil || took > 2300*time.Millisecond+time.Second {
		t.Errorf("after SIGTERM: %v after %s; want exit 0 within drain + grace", err, took)
	}
}

// carrierReceiver stands in for bankbridge's carrier push endpoint: it
// answers 401 to a push whose signature does not verify with secret or
// whose push id it accepted before, and keeps the events of the others.
type carrierReceiver struct {
	secret string
	url    string

	mu     sync.Mutex
	events []*shippingv1.CarrierEvent
	seen   map[string]bool
	bad    int
}

func newCarrierReceiver(t *testing.T) *carrierReceiver {
	t.Helper()
	r := &carrierReceiver{secret: stdwebhook.NewSecret(), seen: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		id, err := stdwebhook.Verify([]string{r.secret}, req.Header, body, time.Now(), stdwebhook.DefaultTolerance)
		var push shippingv1.CarrierPush
		if err == nil && !r.seen[id] {
			err = protojson.Unmarshal(body, &push)
		}
		if err != nil || r.seen[id] || req.URL.Path != "/v1/carriers/sandbox/trackingEvents" {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.seen[id] = true
		r.events = append(r.events, push.GetEvents()...)
		_, _ = w.Write([]byte(`{"recordedCount":1}`))
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/v1/carriers/sandbox/trackingEvents"
	return r
}

// statuses returns the statuses received per tracking number, in order,
// and how many pushes were refused.
func (r *carrierReceiver) statuses() (map[string]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, e := range r.events {
		s := strings.TrimPrefix(e.GetCheckpoint().GetStatus().String(), "SHIPMENT_STATUS_")
		if out[e.GetTrackingNumber()] != "" {
			s = " " + s
		}
		out[e.GetTrackingNumber()] += s
	}
	return out, r.bad
}

func (r *carrierReceiver) secretFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "carrier-secret")
	if err := os.WriteFile(path, []byte(r.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitUntil polls cond for up to 15s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
	}
}

var carrierScripts = map[string]string{
	sandbox.TrackingDelivered:           "INFO_RECEIVED IN_TRANSIT IN_TRANSIT OUT_FOR_DELIVERY DELIVERED",
	sandbox.TrackingException:           "INFO_RECEIVED IN_TRANSIT EXCEPTION",
	sandbox.TrackingReturned:            "INFO_RECEIVED IN_TRANSIT ATTEMPT_FAILED RETURNED",
	sandbox.TrackingFailedThenDelivered: "INFO_RECEIVED IN_TRANSIT OUT_FOR_DELIVERY ATTEMPT_FAILED OUT_FOR_DELIVERY DELIVERED",
}

// TestCarrierPlay: with a carrier configured, the admin endpoint plays a
// number and the receiver gets its signed events in order.
func TestCarrierPlay(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	rcv := newCarrierReceiver(t)
	addrs, _ := start(t, "--api-key-file", keyFile,
		"--carrier-push-url", rcv.url, "--carrier-secret-file", rcv.secretFile(t), "--carrier-step", "10ms")

	play := func(number string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post("http://"+addrs.AdminAddr+"/admin/carrier/play?tracking_number="+number, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := play("SBX0000000109"); code != http.StatusNotFound {
		t.Errorf("a number not in the fixtures: %d, want 404", code)
	}
	if code, body := play(sandbox.TrackingFailedThenDelivered); code != http.StatusAccepted || body["steps"] != float64(6) {
		t.Fatalf("play: %d %v, want 202 with 6 steps", code, body)
	}
	want := carrierScripts[sandbox.TrackingFailedThenDelivered]
	waitUntil(t, "the script played", func() bool {
		got, _ := rcv.statuses()
		return len(got[sandbox.TrackingFailedThenDelivered]) >= len(want)
	})
	got, refused := rcv.statuses()
	if got[sandbox.TrackingFailedThenDelivered] != want || refused != 0 {
		t.Errorf("received %v (%d refused), want %s", got, refused, want)
	}
}

// TestCarrierAutoplay: --carrier-autoplay moves all four parcels.
func TestCarrierAutoplay(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	rcv := newCarrierReceiver(t)
	start(t, "--api-key-file", keyFile, "--carrier-push-url", rcv.url, "--carrier-secret-file", rcv.secretFile(t),
		"--carrier-step", "10ms", "--carrier-autoplay")
	waitUntil(t, "every parcel delivered, held or returned", func() bool {
		got, _ := rcv.statuses()
		for n, want := range carrierScripts {
			if len(got[n]) < len(want) {
				return false
			}
		}
		return true
	})
	got, refused := rcv.statuses()
	for n, want := range carrierScripts {
		if got[n] != want {
			t.Errorf("%s: received %s, want %s", n, got[n], want)
		}
	}
	if refused != 0 {
		t.Errorf("%d pushes refused", refused)
	}
}

// TestCarrierBadSecretFile: a secret that is not whsec_ fails start-up,
// naming the file but not its content.
func TestCarrierBadSecretFile(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	secretFile := filepath.Join(t.TempDir(), "carrier-secret")
	if err := os.WriteFile(secretFile, []byte("hunter2-not-a-whsec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := spec(defaults())
	s.Logs = io.Discard
	err := bootstrap.Run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--api-key-file", keyFile, "--dev-mode", "--plaintext",
		"--carrier-push-url", "http://127.0.0.1:1/v1/carriers/sandbox/trackingEvents", "--carrier-secret-file", secretFile}, s)
	if err == nil || !strings.Contains(err.Error(), secretFile) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("run = %v, want an error naming the secret file without its content", err)
	}
}
