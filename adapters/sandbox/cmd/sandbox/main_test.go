package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*testing.T, config)
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--api-key-file", "/run/key"},
			check: func(t *testing.T, c config) {
				if c.addr != "127.0.0.1:9400" || c.adminAddr != "127.0.0.1:9401" || c.apiKeyGrace != time.Minute ||
					c.apiKeyPoll != time.Second || c.bank.BankID != "sandbox" || c.bank.ErrorRate != 0 || c.bank.Latency != 0 {
					t.Errorf("config %+v", c)
				}
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"BANKBRIDGE_SANDBOX_API_KEY_FILE": "/run/key", "BANKBRIDGE_SANDBOX_ADDR": "0.0.0.0:9500",
				"BANKBRIDGE_SANDBOX_LATENCY": "250ms", "BANKBRIDGE_SANDBOX_ERROR_RATE": "0.25", "BANKBRIDGE_SANDBOX_SEED": "42",
			},
			check: func(t *testing.T, c config) {
				if c.apiKeyFile != "/run/key" || c.addr != "0.0.0.0:9500" || c.bank.Latency != 250*time.Millisecond ||
					c.bank.ErrorRate != 0.25 || c.bank.Seed != 42 {
					t.Errorf("config %+v", c)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--latency", "1s"},
			env:  map[string]string{"BANKBRIDGE_SANDBOX_API_KEY_FILE": "/run/key", "BANKBRIDGE_SANDBOX_LATENCY": "250ms"},
			check: func(t *testing.T, c config) {
				if c.bank.Latency != time.Second {
					t.Errorf("latency %s, want the flag's 1s", c.bank.Latency)
				}
			},
		},
		{name: "api key file required", wantErr: "--api-key-file is required"},
		{
			name:    "bad environment value",
			env:     map[string]string{"BANKBRIDGE_SANDBOX_LATENCY": "slow"},
			wantErr: "BANKBRIDGE_SANDBOX_LATENCY",
		},
		{name: "stray argument", args: []string{"--api-key-file", "/run/key", "extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
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

func (c *credentials) BankCredential(context.Context, adapters.Bank) (map[string]string, error) {
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

// start runs the command on 127.0.0.1:0; stop (also run at the test's end)
// ends it and fails the test unless it returns cleanly within wait.
func start(t *testing.T, args ...string) (grpcAddr, adminAddr string, stop func(wait time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ grpc, admin net.Addr }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, io.Discard, func(g, a net.Addr) { ready <- addrs{g, a} })
	}()
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
		return a.grpc.String(), a.admin.String(), stop
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not start")
	}
	return "", "", stop
}

// TestAPIKeyRotation rotates the key file under a running sandbox: the new
// key works without a restart, the old one for the grace period only.
func TestAPIKeyRotation(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	const grace = 500 * time.Millisecond
	addr, _, _ := start(t, "--api-key-file", keyFile, "--api-key-poll", "20ms", "--api-key-grace", grace.String())

	creds := &credentials{key: "first-key-0001"}
	r, err := adapters.NewRegistry([]adapters.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: adapters.KindRemote, Endpoint: addr}},
		adapters.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	call := func() error {
		_, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
		return err
	}
	rejected := func(err error) bool { return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED) }

	if err := call(); err != nil {
		t.Fatal(err)
	}
	creds.set("wrong-key-0000")
	if err := call(); !rejected(err) {
		t.Fatalf("wrong key: want CREDENTIALS_REJECTED, got %v", err)
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
		t.Errorf("old key after the grace period: want CREDENTIALS_REJECTED, got %v", err)
	}
}

func TestAdminEndpointAndShutdown(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	writeKey(t, keyFile, "first-key-0001")
	addr, admin, stop := start(t, "--api-key-file", keyFile)

	resp, err := http.Post("http://"+admin+"/admin/fraud-alerts?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("alert before alice linked: %d, want 409", resp.StatusCode)
	}

	// An open event stream must not hold up a graceful stop, which would
	// otherwise wait for shutdownTimeout.
	r, err := adapters.NewRegistry([]adapters.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: adapters.KindRemote, Endpoint: addr}},
		adapters.WithCredentials(&credentials{key: "first-key-0001"}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
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
	stop(shutdownTimeout / 2)
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the stream ended with %v, want a clean end (io.EOF) that bankbridge resumes from", err)
		}
	case <-time.After(time.Second):
		t.Error("the stream did not end with the server")
	}
}
