package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// TestConformanceCommandBerlinGroup runs the real bankbridge-conformance
// command against the Berlin Group adapter (bg-adapter) in front of the
// NextGenPSD2 sandbox bank (xs2a-sandbox), each its own process built from
// adapters/berlingroup/cmd: the bank over HTTPS with mutual TLS (a test
// PKI it writes at start), the adapter over gRPC with mutual TLS and an
// API key, with the fixtures committed beside the adapter. The run must
// pass, and the checks that prove the promises must have passed,
// not been skipped.
func TestConformanceCommandBerlinGroup(t *testing.T) {
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	sandboxBin := buildBinary(t, "github.com/bankbridge/bankbridge/adapters/berlingroup/cmd/xs2a-sandbox")
	adapterBin := buildBinary(t, "github.com/bankbridge/bankbridge/adapters/berlingroup/cmd/bg-adapter")

	pki := filepath.Join(t.TempDir(), "pki")
	bankAddr := freeAddr(t)
	startBGProcess(t, sandboxBin, bankAddr, "--addr", bankAddr, "--pki-dir", pki)
	file := func(name string) string { return filepath.Join(pki, name) }

	const apiKey = "bg-adapter-conformance-key-7d1e"
	keyFile := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adapterAddr := freeAddr(t)
	startBGProcess(t, adapterBin, adapterAddr,
		"--listen", adapterAddr, "--bank-url", "https://"+bankAddr,
		"--bank-ca", file("ca.pem"), "--bank-cert", file("client.pem"), "--bank-key", file("client-key.pem"),
		"--tls-cert", file("server.pem"), "--tls-key", file("server-key.pem"), "--tls-client-ca", file("ca.pem"),
		"--api-key-file", keyFile, "--psu-ip-address", "192.0.2.1")

	code, reportDir := runConformanceCommand(t,
		"--addr", adapterAddr,
		"--tls-ca", file("ca.pem"), "--tls-cert", file("client.pem"), "--tls-key", file("client-key.pem"),
		"--api-key-file", keyFile,
		"--fixtures", filepath.Join(root, "adapters", "berlingroup", "conformance.fixtures.yaml"))
	report, err := os.ReadFile(filepath.Join(reportDir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("bankbridge-conformance exited %d, want 0 (passed):\n%s", code, report)
	}
	for _, id := range []string{
		"auth/credentials-rejected", "consent/unknown-consent", "sca/unknown-login", "sca/start-idempotent",
		"sca/bad-code", "sca/link", "sca/verify-idempotent", "accounts/list", "accounts/other-customer-isolation",
		"balances/get", "balances/unknown-account", "transactions/sync", "transactions/count-honoured",
		"transactions/cursor-other-account", "errors/bank-unavailable", "revoke/revoke-consent",
	} {
		if !strings.Contains(string(report), "| `"+id+"` | PASS |") {
			t.Errorf("report.md does not show %s as passed:\n%s", id, report)
		}
	}
}

// startBGProcess starts a command, waits until addr accepts connections,
// and stops it (SIGTERM) when the test ends; its output goes to the test's
// log on failure.
func startBGProcess(t *testing.T, path, addr string, args ...string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(path), out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it served:\n%s", filepath.Base(path), out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s:\n%s", filepath.Base(path), addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
