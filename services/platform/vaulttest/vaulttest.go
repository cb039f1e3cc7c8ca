// Package vaulttest runs a real Vault dev server for tests: the binary that
// `make vault` builds from deploy/vault, never a fake. Each Start gives the
// test its own server with KV v2 mounted at bankbridge/, killed when the
// test ends.
package vaulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	// Mount is where Start mounts the KV v2 engine, as in production.
	Mount = "bankbridge"
	// BinEnv names the environment variable that overrides the binary's
	// location.
	BinEnv = "BANKBRIDGE_VAULT_BIN"

	rootToken = "root"
	// startTimeout bounds how long Start waits for a healthy server; a dev
	// server is up in well under a second, but race-enabled test binaries
	// on a busy machine are slow.
	startTimeout = 30 * time.Second
	// startAttempts covers the race between choosing a free port and the
	// server binding it (and the port after it, which dev mode uses for its
	// cluster listener).
	startAttempts = 3
	// requestTimeout bounds each setup request the helpers send.
	requestTimeout = 10 * time.Second
)

// Server is a running Vault dev server.
type Server struct {
	addr   string
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when the process has exited
	client *api.Client

	stopOnce sync.Once
	mu       sync.Mutex
	auths    map[string]bool // auth methods enabled so far, by path
	pkiCA    string          // the PKI's CA (EnablePKI)
}

// Start runs a Vault dev server on a free 127.0.0.1 port with a known root
// token, waits until it is healthy, mounts KV v2 at bankbridge/ and kills it
// when the test ends. The binary is $BANKBRIDGE_VAULT_BIN or, by default,
// bin/vault at the root of the repository (the directory holding go.work).
// A missing binary fails the test rather than skipping it: tests that
// silently skip prove nothing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binary(t)
	var errs []error
	for range startAttempts {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		errs = append(errs, err)
	}
	t.Fatalf("vaulttest: start %s: %v", bin, errors.Join(errs...))
	return nil
}

// binary finds the Vault binary or fails the test saying how to build it.
func binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("vaulttest: %s=%s: %v", BinEnv, bin, err)
		}
		return bin
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			bin := filepath.Join(dir, "bin", "vault")
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("vaulttest: no Vault binary at %s: build it with `make vault` (or set %s)", bin, BinEnv)
			}
			return bin
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("vaulttest: no go.work above %s to find bin/vault: build it with `make vault` and set %s", wd, BinEnv)
		}
	}
}

// start makes one attempt at starting a server. It returns an error, rather
// than failing the test, when the server exits before it is healthy, so
// Start can retry on another port.
func start(t testing.TB, bin string) (*Server, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		addr:   "http://" + addr,
		out:    &lockedBuffer{},
		exited: make(chan struct{}),
		auths:  make(map[string]bool),
	}
	s.cmd = exec.Command(bin, "server", "-dev",
		"-dev-root-token-id="+rootToken,
		"-dev-listen-address="+addr,
		"-dev-no-store-token")
	s.cmd.Env = serverEnv(t.TempDir())
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	go func() {
		_ = s.cmd.Wait() // the exit status of a killed server says nothing
		close(s.exited)
	}()

	if err := s.waitHealthy(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, s.out.String())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("vaulttest: output of the Vault server at %s:\n%s", s.addr, s.out.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	err = s.client.Sys().MountWithContext(ctx, Mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	if err != nil {
		t.Fatalf("vaulttest: mount KV v2 at %s/: %v", Mount, err)
	}
	return s, nil
}

// serverEnv is the test's environment without VAULT_* variables, which
// would configure the server differently from what tests expect, and with a
// HOME of its own so nothing is written to the developer's.
func serverEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

// freePort returns a port that was free a moment ago, as was the one after
// it, which a dev server also binds.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		_ = l.Close()
		if err == nil {
			_ = next.Close()
			return port, nil
		}
	}
	return 0, errors.New("find a free port: no free pair of adjacent ports")
}

// waitHealthy polls the health endpoint until the server is unsealed and
// active, the process exits, or startTimeout passes.
func (s *Server) waitHealthy() error {
	cfg := api.DefaultConfig()
	cfg.Address = s.addr
	cfg.Timeout = requestTimeout
	client, err := api.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("vault client: %w", err)
	}
	client.SetToken(rootToken)
	s.client = client

	deadline := time.After(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := client.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("vault exited before it was healthy")
		case <-deadline:
			return fmt.Errorf("vault not healthy after %s (last error: %v)", startTimeout, err)
		case <-tick.C:
		}
	}
}

// Addr returns the server's URL, such as http://127.0.0.1:41234.
func (s *Server) Addr() string { return s.addr }

// RootToken returns the root token.
func (s *Server) RootToken() string { return rootToken }

// Client returns a client that acts as root. It is shared: clone it before
// changing its token or settings.
func (s *Server) Client() *api.Client { return s.client }

// Stop kills the server, as an outage would, and waits for it to exit. It is
// safe to call more than once; Start's cleanup calls it too.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Kill() // fails only if it already exited
		<-s.exited
	})
}

// Seal seals the server, so that it answers every request with 503 while
// still listening: Vault up but unusable.
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := s.client.Sys().SealWithContext(ctx); err != nil {
		t.Fatalf("vaulttest: seal: %v", err)
	}
}

// PutBankSecret writes a new version of a bank's secret at
// bankbridge/banks/<bankID> and returns its version.
func (s *Server) PutBankSecret(t testing.TB, bankID string, data map[string]any) int {
	t.Helper()
	return s.put(t, "banks/"+bankID, data)
}

// PutPartnerSecret writes a new version of a partner's secret at
// bankbridge/partners/<partnerID> and returns its version.
func (s *Server) PutPartnerSecret(t testing.TB, partnerID string, data map[string]any) int {
	t.Helper()
	return s.put(t, "partners/"+partnerID, data)
}

func (s *Server) put(t testing.TB, path string, data map[string]any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	kv, err := s.client.KVv2(Mount).Put(ctx, path, data)
	if err != nil {
		t.Fatalf("vaulttest: put %s/%s: %v", Mount, path, err)
	}
	return kv.VersionMetadata.Version
}

// DeleteBankSecret deletes the latest version of a bank's secret, as an
// operator removing a bank would.
func (s *Server) DeleteBankSecret(t testing.TB, bankID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := s.client.KVv2(Mount).Delete(ctx, "banks/"+bankID); err != nil {
		t.Fatalf("vaulttest: delete %s/banks/%s: %v", Mount, bankID, err)
	}
}

// PutPolicy writes an ACL policy.
func (s *Server) PutPolicy(t testing.TB, name, rules string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := s.client.Sys().PutPolicyWithContext(ctx, name, rules); err != nil {
		t.Fatalf("vaulttest: put policy %s: %v", name, err)
	}
}

// BankReadPolicy returns the rules of a policy that may read the given
// banks' secrets and nothing else under the mount.
func BankReadPolicy(bankIDs ...string) string {
	var b strings.Builder
	for _, id := range bankIDs {
		fmt.Fprintf(&b, "path %q {\n  capabilities = [\"read\"]\n}\n", Mount+"/data/banks/"+id)
	}
	return b.String()
}

// TokenRequest describes a token for CreateToken.
type TokenRequest struct {
	// Policies are attached besides Vault's default policy, which lets a
	// token look itself up and renew itself.
	Policies []string
	// TTL is the token's time to live; zero means Vault's default.
	TTL time.Duration
}

// CreateToken creates a renewable token and returns it.
func (s *Server) CreateToken(t testing.TB, r TokenRequest) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req := &api.TokenCreateRequest{Policies: r.Policies}
	if r.TTL > 0 {
		req.TTL = r.TTL.String()
	}
	secret, err := s.client.Auth().Token().CreateWithContext(ctx, req)
	if err != nil {
		t.Fatalf("vaulttest: create token: %v", err)
	}
	return secret.Auth.ClientToken
}

// AppRole describes a role for CreateAppRole.
type AppRole struct {
	// Name is the role's name.
	Name string
	// Policies are attached to the role's tokens.
	Policies []string
	// TokenTTL and TokenMaxTTL bound the life of the role's tokens: renewal
	// extends a token by TokenTTL up to TokenMaxTTL after login. Zero means
	// Vault's default.
	TokenTTL, TokenMaxTTL time.Duration
}

// CreateAppRole enables the AppRole auth method at auth/approle if need be,
// creates the role and returns its role id and a new secret id.
func (s *Server) CreateAppRole(t testing.TB, r AppRole) (roleID, secretID string) {
	t.Helper()
	s.EnableAuth(t, "approle", "approle")
	role := "auth/approle/role/" + r.Name
	data := map[string]any{"token_policies": r.Policies}
	if r.TokenTTL > 0 {
		data["token_ttl"] = r.TokenTTL.String()
	}
	if r.TokenMaxTTL > 0 {
		data["token_max_ttl"] = r.TokenMaxTTL.String()
	}
	s.Write(t, role, data)
	roleID, _ = s.read(t, role+"/role-id").Data["role_id"].(string)
	secretID, _ = s.Write(t, role+"/secret-id", nil).Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("vaulttest: approle %s: no role id or secret id in Vault's answers", r.Name)
	}
	return roleID, secretID
}

// EnableAuth enables an auth method of the given type at auth/<path>, once
// per server.
func (s *Server) EnableAuth(t testing.TB, path, methodType string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auths[path] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := s.client.Sys().EnableAuthWithOptionsWithContext(ctx, path, &api.EnableAuthOptions{Type: methodType}); err != nil {
		t.Fatalf("vaulttest: enable %s auth at auth/%s: %v", methodType, path, err)
	}
	s.auths[path] = true
}

// Write writes data at a Vault API path as root and returns Vault's answer,
// for setup the other helpers do not cover.
func (s *Server) Write(t testing.TB, path string, data map[string]any) *api.Secret {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	secret, err := s.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		t.Fatalf("vaulttest: write %s: %v", path, err)
	}
	if secret == nil {
		secret = &api.Secret{}
	}
	return secret
}

func (s *Server) read(t testing.TB, path string) *api.Secret {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	secret, err := s.client.Logical().ReadWithContext(ctx, path)
	if err != nil || secret == nil {
		t.Fatalf("vaulttest: read %s: %v (answer: %v)", path, err, secret)
	}
	return secret
}

// lockedBuffer collects the server's output, written by exec's copying
// goroutines and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
