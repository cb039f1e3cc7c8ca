package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance/internal/broken"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

const apiKey = "cmd-test-key-1"

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type pki struct {
	dir                                                  string
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "conformance test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{name},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = issue("bank", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("bankbridge", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bank serves Sandbox Bank (or a broken adapter over it) on 127.0.0.1 with
// mutual TLS of p and the API key, and its admin API over plain HTTP.
func bank(t *testing.T, p *pki, brokenName string) (addr, adminURL string) {
	t.Helper()
	b, err := sandbox.New(sandbox.Options{FraudCaseStep: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	keys := func() []string { return []string{apiKey} }
	quiet := adapters.WithLogger(slog.New(slog.DiscardHandler))
	srv := adapters.NewServer(b, adapters.WithAPIKeys(keys), quiet)
	if brokenName != "" {
		a, err := broken.Lookup(brokenName)
		if err != nil {
			t.Fatal(err)
		}
		srv = a.Server(b, keys, quiet)
	}
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair},
		ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(creds))
	adapterv1.RegisterBankAdapterServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	admin := httptest.NewServer(b.AdminHandler())
	t.Cleanup(admin.Close)
	return lis.Addr().String(), admin.URL
}

// fixtures is fixtures.example.yaml, with the admin API at adminURL.
func fixtures(t *testing.T, adminURL string) string {
	t.Helper()
	example, err := os.ReadFile("../../fixtures.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "fixtures.yaml", strings.ReplaceAll(string(example), "https://127.0.0.1:9401", adminURL))
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestMutualTLSSandboxPasses runs the command against Sandbox Bank over
// mutual TLS with an API key and the example fixtures: every check
// passes, none is skipped, and both reports are written.
func TestMutualTLSSandboxPasses(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	addr, admin := bank(t, p, "")
	dir := filepath.Join(t.TempDir(), "report")
	code, out, errOut := runCmd(t, "--addr", addr, "--tls-ca", p.caFile, "--tls-cert", p.clientCert, "--tls-key", p.clientKey,
		"--server-name", "bank", "--api-key-file", writeFile(t, "key", apiKey+"\n"), "--fixtures", fixtures(t, admin), "--report-dir", dir)
	if code != exitPassed {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "bankbridge conformance PASSED: 40 passed, 0 failed, 0 skipped") {
		t.Errorf("summary:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| `transactions/count-honoured` | PASS |") || !strings.Contains(string(md), "Verdict: **passed**") {
		t.Errorf("report.md:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(dir, "junit.xml")); err != nil {
		t.Error(err)
	}
}

// TestBrokenAdapterFails runs the command against each broken adapter:
// exit 1, and report.md names the check it breaks as failed.
func TestBrokenAdapterFails(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, a := range broken.Adapters() {
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			addr, admin := bank(t, p, a.Name)
			dir := t.TempDir()
			code, out, errOut := runCmd(t, "--addr", addr, "--tls-ca", p.caFile, "--tls-cert", p.clientCert, "--tls-key", p.clientKey,
				"--server-name", "bank", "--api-key-file", writeFile(t, "key", apiKey), "--fixtures", fixtures(t, admin), "--report-dir", dir)
			if code != exitFailed {
				t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
			}
			md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
			if !strings.Contains(string(md), "| `"+a.Fails+"` | FAIL |") || !strings.Contains(string(md), "### `"+a.Fails+"`") {
				t.Errorf("report.md does not name %s as failed:\n%s", a.Fails, md)
			}
			if !strings.Contains(out, "FAIL "+a.Fails+":") {
				t.Errorf("the printed summary does not name %s:\n%s", a.Fails, out)
			}
		})
	}
}

// TestConnectionErrors wants exit 2, saying why, when the adapter cannot be
// reached: nothing listening, no client certificate for a server that
// requires one, a CA that did not sign the server's certificate.
func TestConnectionErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	other := newPKI(t)
	addr, admin := bank(t, p, "")
	fx := fixtures(t, admin)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing listening", []string{"--addr", closedAddr, "--insecure"}, "cannot reach the adapter"},
		{"no client certificate", []string{"--addr", addr, "--tls-ca", p.caFile, "--server-name", "bank"}, "cannot reach the adapter"},
		{"another CA", []string{"--addr", addr, "--tls-ca", other.caFile, "--tls-cert", p.clientCert, "--tls-key", p.clientKey, "--server-name", "bank"},
			"cannot reach the adapter"},
		{"plaintext to TLS", []string{"--addr", addr, "--insecure"}, "cannot reach the adapter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(t, append(tt.args, "--fixtures", fx, "--report-dir", t.TempDir())...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want 2 saying %q\n%s", code, errOut, tt.want, out)
			}
		})
	}
}

// TestUsageErrors wants exit 2 and a reason for flags and fixtures the
// command cannot run with.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "fx.yaml", "version: 1\ncustomer: {login_hint: alice, good_code: \"123456\"}\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no addr", []string{"--fixtures", good}, "--addr is required"},
		{"no fixtures", []string{"--addr", "127.0.0.1:1", "--insecure"}, "--fixtures is required"},
		{"cert without key", []string{"--addr", "127.0.0.1:1", "--fixtures", good, "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"insecure off loopback", []string{"--addr", "10.1.2.3:9400", "--insecure", "--fixtures", good}, "loopback address only"},
		{"insecure with a CA", []string{"--addr", "127.0.0.1:1", "--insecure", "--tls-ca", "ca.pem", "--fixtures", good}, "does not go with"},
		{"missing key file", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures", good, "--api-key-file", "/nonexistent/key"}, "--api-key-file"},
		{"two-word key", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures", good, "--api-key-file", writeFile(t, "k", "a b")}, "one word"},
		{"unknown field", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures",
			writeFile(t, "f.yaml", "version: 1\ncustomer: {login_hint: alice, good_code: \"1\"}\nsecond_custmer: {login_hint: bob}\n")}, "second_custmer"},
		{"wrong version", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures", writeFile(t, "f.yaml", "version: 2\n")}, "version is 2"},
		{"no customer", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures", writeFile(t, "f.yaml", "version: 1\n")}, "customer needs"},
		{"bad scope", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures",
			writeFile(t, "f.yaml", "version: 1\ncustomer: {bank_consent_id: c1}\nscopes: [ACCOUNTS]\n")}, `"ACCOUNTS" is not`},
		{"prompt without trigger", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures",
			writeFile(t, "f.yaml", "version: 1\ncustomer: {bank_consent_id: c1}\nprompt_events: true\n")}, "prompt_events needs trigger_event"},
		{"trigger without url", []string{"--addr", "127.0.0.1:1", "--insecure", "--fixtures",
			writeFile(t, "f.yaml", "version: 1\ncustomer: {bank_consent_id: c1}\ntrigger_event: {method: POST}\n")}, "trigger_event.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCmd(t, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want 2 saying %q", code, errOut, tt.want)
			}
		})
	}
}

// TestTriggerFailsTheCheck wants a trigger the bank refuses to fail the
// check that needed it, naming the trigger and the status.
func TestTriggerFailsTheCheck(t *testing.T) {
	t.Parallel()
	fx, err := parseFixtures([]byte("version: 1\ncustomer: {bank_consent_id: c1}\ntrigger_event: {url: " + refusing(t) + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = fx.TriggerEvent(context.Background())
	if err == nil || !strings.Contains(err.Error(), "trigger_event: POST") || !strings.Contains(err.Error(), "403") {
		t.Errorf("trigger error %v, want the request and its status", err)
	}
}

func refusing(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }))
	t.Cleanup(srv.Close)
	return srv.URL
}
