// Package stack starts bankbridge's whole dev stack as real processes on
// 127.0.0.1: a Vault (in-memory dev server, or one you point it at), the
// sandbox bank, every service built so far and the gateway, wired the way a
// production deployment is — JWTs checked against the gateway's dev issuer,
// bank credentials read from Vault, real gRPC between processes. `make dev`
// runs it through ../main.go; the end-to-end tests run it too.
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options say where things are and which addresses to use. Zero addresses
// take the documented defaults; tests pass "127.0.0.1:0"-style free ports
// from FreeAddr.
type Options struct {
	// Root is the repository root (the directory holding go.work).
	Root string
	// DataDir holds generated config, keys and SQLite files; default
	// <Root>/.dev.
	DataDir string

	GatewayAddr string // default 127.0.0.1:8080
	ConsentAddr string // default 127.0.0.1:9101
	BalanceAddr string // default 127.0.0.1:9102
	// Admin listeners (/healthz, /readyz, /metrics) of the services.
	ConsentAdminAddr string // default 127.0.0.1:9201
	BalanceAdminAddr string // default 127.0.0.1:9202
	SandboxAddr      string // default 127.0.0.1:9400
	VaultAddr        string // own dev Vault's address; default 127.0.0.1:8200

	// ExternalVault, when its Addr is set, is used instead of starting one:
	// the stack seeds the sandbox credential there (KV v2 mount bankbridge,
	// enabled if missing).
	ExternalVault VaultRef

	// Env is added to every service's environment (e.g. OTEL_* for tests).
	Env []string
	// Logs receives every process's output, each line prefixed by its name.
	Logs io.Writer
}

// VaultRef is a Vault address and token.
type VaultRef struct {
	Addr, Token string
}

// Stack is a running dev stack.
type Stack struct {
	opts       Options
	GatewayURL string
	Vault      VaultRef
	// SandboxKeyFile is the sandbox's accepted API key; rotate by writing a
	// new key to Vault (bankbridge/banks/sandbox api_key) and to this file.
	SandboxKeyFile string
	// DevClient is the client id of user tokens from POST /v1/dev/tokens.
	DevClient string

	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

const devClient = "dev-client"

// The purposes the dev client may declare: every one bankbridge serves.
const devClientPurposes = devClient + "=ACCOUNT_INFORMATION,PURCHASE_HISTORY,ORDER_TRACKING,CUSTOMER_SUPPORT,FRAUD_PREVENTION,CONSENT_MANAGEMENT"

func (o *Options) defaults() {
	o.DataDir = cmpOr(o.DataDir, filepath.Join(o.Root, ".dev"))
	o.GatewayAddr = cmpOr(o.GatewayAddr, "127.0.0.1:8080")
	o.ConsentAddr = cmpOr(o.ConsentAddr, "127.0.0.1:9101")
	o.BalanceAddr = cmpOr(o.BalanceAddr, "127.0.0.1:9102")
	o.ConsentAdminAddr = cmpOr(o.ConsentAdminAddr, "127.0.0.1:9201")
	o.BalanceAdminAddr = cmpOr(o.BalanceAdminAddr, "127.0.0.1:9202")
	o.SandboxAddr = cmpOr(o.SandboxAddr, "127.0.0.1:9400")
	o.VaultAddr = cmpOr(o.VaultAddr, "127.0.0.1:8200")
	if o.Logs == nil {
		o.Logs = io.Discard
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// BinDir is where Build puts the binaries.
func (o Options) BinDir() string { return filepath.Join(o.DataDir, "bin") }

// Build compiles the sandbox bank, the services and the gateway into
// BinDir, and checks that the Vault binary exists (make vault builds it).
func Build(ctx context.Context, o Options) error {
	o.defaults()
	if err := os.MkdirAll(o.BinDir(), 0o755); err != nil {
		return err
	}
	builds := []struct{ dir, pkg string }{
		{"services", "./consent"},
		{"services", "./balance"},
		{"services", "./gateway"},
		{"adapters", "./sandbox/cmd/sandbox"},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.BinDir()+"/", b.pkg)
		cmd.Dir = filepath.Join(o.Root, b.dir)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	if _, err := os.Stat(vaultBin(o)); err != nil && o.ExternalVault.Addr == "" {
		return fmt.Errorf("no Vault server binary at %s: run `make vault` (or set VAULT_ADDR and VAULT_TOKEN)", vaultBin(o))
	}
	return nil
}

func vaultBin(o Options) string { return filepath.Join(o.Root, "bin", "vault") }

// Start starts the stack from binaries Build made, and returns once the
// gateway reports every backend SERVING. On error, what started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	o.defaults()
	s = &Stack{opts: o, GatewayURL: "http://" + o.GatewayAddr, DevClient: devClient}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return s, err
	}

	// 1. Vault, and the sandbox bank's credential in it.
	if o.ExternalVault.Addr != "" {
		s.Vault = o.ExternalVault
	} else {
		s.Vault = VaultRef{Addr: "http://" + o.VaultAddr, Token: randomHex(16)}
		if err := s.start(ctx, "vault", vaultBin(o), nil, "server", "-dev",
			"-dev-root-token-id="+s.Vault.Token, "-dev-listen-address="+o.VaultAddr, "-dev-no-store-token"); err != nil {
			return s, err
		}
		if err := waitHTTP(ctx, s.Vault.Addr+"/v1/sys/health", 30*time.Second); err != nil {
			return s, fmt.Errorf("vault: %w", err)
		}
	}
	if err := s.vaultCLI(ctx, "secrets", "enable", "-path=bankbridge", "kv-v2"); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		return s, fmt.Errorf("enable KV v2 at bankbridge/: %w", err)
	}
	key := randomHex(24)
	if err := s.vaultCLI(ctx, "kv", "put", "bankbridge/banks/sandbox", "api_key="+key); err != nil {
		return s, fmt.Errorf("seed sandbox credential: %w", err)
	}
	s.SandboxKeyFile = filepath.Join(o.DataDir, "sandbox-api-key")
	if err := os.WriteFile(s.SandboxKeyFile, []byte(key+"\n"), 0o600); err != nil {
		return s, err
	}

	// 2. The sandbox bank.
	bin := o.BinDir()
	if err := s.start(ctx, "sandbox", filepath.Join(bin, "sandbox"), o.Env,
		"--addr="+o.SandboxAddr, "--api-key-file="+s.SandboxKeyFile); err != nil {
		return s, err
	}
	banks := filepath.Join(o.DataDir, "banks.yaml")
	if err := os.WriteFile(banks, []byte(fmt.Sprintf(banksYAML, o.SandboxAddr)), 0o600); err != nil {
		return s, err
	}

	// 3. The gateway first: in dev mode it is the token issuer the services
	// verify against.
	serviceSecret := randomHex(16)
	if err := s.start(ctx, "gateway", filepath.Join(bin, "gateway"), o.Env,
		"--addr="+o.GatewayAddr, "--dev-mode", "--dev-issuer="+s.GatewayURL,
		"--dev-service-clients=balance,consent", "--dev-service-secret="+serviceSecret,
		"--consent-addr="+o.ConsentAddr, "--balance-addr="+o.BalanceAddr); err != nil {
		return s, err
	}
	if err := waitHTTP(ctx, s.GatewayURL+"/.well-known/jwks.json", 30*time.Second); err != nil {
		return s, fmt.Errorf("gateway: %w", err)
	}

	common := []string{
		"--dev-mode", "--drain-delay=0s",
		"--issuer=" + s.GatewayURL, "--jwks-url=" + s.GatewayURL + "/.well-known/jwks.json",
		"--client-purposes=" + devClientPurposes, "--internal-clients=balance",
		"--vault-addr=" + s.Vault.Addr, "--vault-token=" + s.Vault.Token,
		"--banks=" + banks,
	}
	// 4. The consent service, with embedded SQLite.
	if err := s.start(ctx, "consent", filepath.Join(bin, "consent"), o.Env, append(common,
		"--grpc-addr="+o.ConsentAddr, "--admin-addr="+o.ConsentAdminAddr,
		"--data-dir="+filepath.Join(o.DataDir, "consent"))...); err != nil {
		return s, err
	}
	// 5. The balance service.
	if err := s.start(ctx, "balance", filepath.Join(bin, "balance"), o.Env, append(common,
		"--grpc-addr="+o.BalanceAddr, "--admin-addr="+o.BalanceAdminAddr,
		"--consent-addr="+o.ConsentAddr, "--token-url="+s.GatewayURL+"/oauth/token",
		"--client-id=balance", "--client-secret="+serviceSecret)...); err != nil {
		return s, err
	}
	if err := waitHTTP(ctx, s.GatewayURL+"/healthz", 60*time.Second); err != nil {
		return s, fmt.Errorf("backends did not become healthy: %w", err)
	}
	return s, nil
}

const banksYAML = `# Written by the dev stack. See adapters/README.md for every field.
banks:
  - id: sandbox
    display_name: Sandbox Bank
    kind: remote
    endpoint: %s
    timeout: 5s
    # Generous for load tests on one machine; a real bank sets its own.
    rate_limit:
      per_second: 2000
      burst: 2000
`

// vaultCLI runs the real vault binary as a client.
func (s *Stack) vaultCLI(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, vaultBin(s.opts), args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Vault.Addr, "VAULT_TOKEN="+s.Vault.Token)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vault %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RotateSandboxKey writes a new API key to Vault and to the sandbox's key
// file, as an operator rotating the bank's credential would.
func (s *Stack) RotateSandboxKey(ctx context.Context) error {
	key := randomHex(24)
	if err := s.vaultCLI(ctx, "kv", "put", "bankbridge/banks/sandbox", "api_key="+key); err != nil {
		return err
	}
	return os.WriteFile(s.SandboxKeyFile, []byte(key+"\n"), 0o600)
}

func (s *Stack) start(ctx context.Context, name, bin string, env []string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintf(s.opts.Logs, "%-8s| %s\n", name, sc.Text())
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	// A process that dies at once (bad flag, port taken) is an error now,
	// not a mystery later.
	select {
	case <-p.done:
		return fmt.Errorf("%s exited at start (exit %v); its output is above", name, cmd.ProcessState)
	case <-time.After(200 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// StopProcess stops one process of the stack by name ("sandbox",
// "balance", ...), as an outage would; tests use it.
func (s *Stack) StopProcess(name string) error {
	s.mu.Lock()
	var p *proc
	for i, q := range s.procs {
		if q.name == name {
			p = q
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no process %q in the stack", name)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// Stop sends SIGTERM to every process, newest first, and kills what has not
// exited after 10 seconds.
func (s *Stack) Stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %w", limit, last)
}

// FreeAddr returns a 127.0.0.1 address with a port free right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ErrNoRoot is returned by FindRoot outside the repository.
var ErrNoRoot = errors.New("not inside the bankbridge repository (no go.work found)")

// FindRoot walks up from dir to the directory holding go.work.
func FindRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRoot
		}
		dir = parent
	}
}
