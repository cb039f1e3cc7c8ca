package e2e

// The conformance command as an integrator runs it, and as CI runs it
// (make conformance): the real bankbridge-conformance binary against a
// real remote adapter. Sandbox Bank, run as the services/sandbox binary
// with mutual TLS from the stack's Vault PKI and an API key, passes every
// check; each deliberately broken adapter (adapters/conformance/internal/
// broken, served by the kit's testbank) fails, and its report.md names the
// check it breaks.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/services/platform/certs"
)

const (
	conformancePkg = "github.com/bankbridge/bankbridge/adapters/conformance/cmd/bankbridge-conformance"
	testbankPkg    = "github.com/bankbridge/bankbridge/adapters/conformance/internal/cmd/testbank"
)

// builds holds the binaries the conformance tests build, once per run.
var builds sync.Map // package path -> *builtBinary

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// buildBinary compiles pkg once per test binary, into the stack's data
// directory (removed with the stack), and returns its path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		b.path = filepath.Join(shared.stack.DataDir(), "conformance-bin", filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = ".." // the services module: its go.mod reaches the adapters module
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// runConformanceCommand builds and runs bankbridge-conformance with args,
// adding --report-dir (a fresh directory) unless args has one, and returns
// its exit status and the report directory. Its output is logged when the
// test fails.
func runConformanceCommand(t *testing.T, args ...string) (exitCode int, reportDir string) {
	t.Helper()
	bin := buildBinary(t, conformancePkg)
	for i, a := range args {
		if a == "--report-dir" && i+1 < len(args) {
			reportDir = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--report-dir="); ok {
			reportDir = v
		}
	}
	if reportDir == "" {
		reportDir = filepath.Join(t.TempDir(), "conformance-report")
		args = append(args, "--report-dir", reportDir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bankbridge-conformance %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, reportDir
	case errors.As(err, &exit):
		return exit.ExitCode(), reportDir
	}
	t.Fatalf("bankbridge-conformance: %v\n%s", err, out.String())
	return -1, ""
}

// readReport returns report.md of a run.
func readReport(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "junit.xml")); err != nil {
		t.Error(err)
	}
	return string(b)
}

// writeTestFile writes content to name in a fresh directory.
func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// conformanceFixtures are Sandbox Bank's customers, as
// adapters/conformance/fixtures.example.yaml gives them, with the triggers
// at the sandbox's admin listener adminURL (caFile signs its certificate;
// empty for plain HTTP).
func conformanceFixtures(t *testing.T, adminURL, caFile string) string {
	t.Helper()
	trigger := fmt.Sprintf("{method: POST, url: %q, ca_file: %q}", adminURL+"/admin/fraud-alerts?user=alice", caFile)
	return writeTestFile(t, "fixtures.yaml", `version: 1
customer: {login_hint: alice, good_code: "123456", bad_code: "654321"}
unknown_login_hint: mallory
second_customer: {login_hint: bob}
unavailable_customer: {login_hint: dave}
trigger_event: `+trigger+`
trigger_fraud_alert: `+trigger+`
prompt_events: true
call_timeout: 10s
`)
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// issuePEM gets a certificate for name from the stack's Vault PKI, as a
// bankbridge service does at start, and writes it and its key as PEM files.
func issuePEM(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: shared.stack.Vault.Addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(shared.stack.Vault.Token)
	secret, err := c.Logical().WriteWithContext(t.Context(), certs.DefaultMount+"/issue/"+name,
		map[string]any{"common_name": name, "ip_sans": "127.0.0.1", "ttl": "30m"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := secret.Data["certificate"].(string)
	keyPEM, _ := secret.Data["private_key"].(string)
	if p, _ := pem.Decode([]byte(certPEM)); p == nil {
		t.Fatal("vault PKI: the certificate is not PEM")
	}
	return writeTestFile(t, name+".pem", certPEM), writeTestFile(t, name+"-key.pem", keyPEM)
}

// startProcess starts bin with args and env, stops it when the test ends,
// and logs its output when the test fails.
func startProcess(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a process's two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestConformanceCommandSandbox runs the command against Sandbox Bank as
// production reaches a remote adapter: the services/sandbox binary, on its
// own ports, serving mutual TLS with a certificate from the stack's Vault
// PKI and refusing calls without its API key. The command presents a
// service's certificate and the key; every check passes, none is skipped.
func TestConformanceCommandSandbox(t *testing.T) {
	t.Parallel()
	grpcAddr, adminAddr := freeAddr(t), freeAddr(t)
	keyFile := writeTestFile(t, "api-key", "conformance-e2e-"+randomKey()+"\n")
	startProcess(t, filepath.Join(shared.stack.BinDir(), "sandbox"), []string{"BANKBRIDGE_VAULT_TOKEN=" + shared.stack.Vault.Token},
		"--grpc-addr="+grpcAddr, "--admin-addr="+adminAddr, "--api-key-file="+keyFile,
		"--vault-addr="+shared.stack.Vault.Addr, "--fraud-case-step=50ms")
	waitReady(t, "https://"+adminAddr+"/readyz")

	cert, key := issuePEM(t, "balance")
	code, dir := runConformanceCommand(t,
		"--addr", grpcAddr, "--tls-ca", shared.stack.CAFile, "--tls-cert", cert, "--tls-key", key, "--server-name", "sandbox",
		"--api-key-file", keyFile, "--fixtures", conformanceFixtures(t, "https://"+adminAddr, shared.stack.CAFile))
	report := readReport(t, dir)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, report)
	}
	for _, want := range []string{"Verdict: **passed**", " 0 failed, 0 skipped of ", "| `transactions/count-honoured` | PASS |",
		"| `auth/credentials-rejected` | PASS |", "| `errors/bank-unavailable` | PASS |", "| `accounts/other-customer-isolation` | PASS |"} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md does not say %q:\n%s", want, report)
		}
	}

	t.Run("without the client certificate", func(t *testing.T) {
		code, _ := runConformanceCommand(t, "--addr", grpcAddr, "--tls-ca", shared.stack.CAFile, "--server-name", "sandbox",
			"--api-key-file", keyFile, "--fixtures", conformanceFixtures(t, "https://"+adminAddr, shared.stack.CAFile))
		if code != 2 {
			t.Errorf("exit %d, want 2 (the adapter cannot be reached)", code)
		}
	})
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := shared.http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConformanceCommandBrokenAdapters runs the command against each
// deliberately broken adapter: exit 1, and report.md names the check the
// adapter breaks as failed.
func TestConformanceCommandBrokenAdapters(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t, testbankPkg)
	for _, tt := range []struct{ adapter, check string }{
		{"ignores-count", "transactions/count-honoured"},
		{"leaks-accounts", "accounts/other-customer-isolation"},
		{"accepts-any-key", "auth/credentials-rejected"},
		{"hides-outage", "errors/bank-unavailable"},
	} {
		t.Run(tt.adapter, func(t *testing.T) {
			t.Parallel()
			keyFile := writeTestFile(t, "api-key", "conformance-e2e-"+randomKey())
			out := startProcessLine(t, bin, "--broken="+tt.adapter, "--api-key-file="+keyFile)
			var grpcAddr, adminAddr string
			if _, err := fmt.Sscanf(out, "grpc=%s admin=%s", &grpcAddr, &adminAddr); err != nil {
				t.Fatalf("testbank said %q: %v", out, err)
			}
			code, dir := runConformanceCommand(t, "--addr", grpcAddr, "--insecure", "--api-key-file", keyFile,
				"--fixtures", conformanceFixtures(t, "http://"+adminAddr, ""))
			report := readReport(t, dir)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(report, "| `"+tt.check+"` | FAIL |") || !strings.Contains(report, "### `"+tt.check+"`") {
				t.Errorf("report.md does not name %s as failed:\n%s", tt.check, report)
			}
		})
	}
}

// startProcessLine starts bin and returns the first line it prints.
func startProcessLine(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s printed no address: %v", filepath.Base(bin), err)
	}
	return strings.TrimSpace(line)
}
