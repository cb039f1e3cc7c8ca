package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vaultBin is the real Vault `make vault` builds: BANKBRIDGE_VAULT_BIN, or
// bin/vault at the repository root.
func vaultBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BANKBRIDGE_VAULT_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "vault")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Vault binary (make vault builds bin/vault; or set BANKBRIDGE_VAULT_BIN): %v", err)
	}
	return bin
}

// devVault starts a real Vault in dev mode on a free port and returns its
// address; it stops with the test.
func devVault(t *testing.T, bin, token string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+listen, "-dev-no-store-token")
	cmd.Env = append(os.Environ(), "VAULT_DEV_ROOT_TOKEN_ID="+token)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "http://" + listen
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(addr + "/v1/sys/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Vault did not come up on %s:\n%s", addr, logs.String())
		}
	}
}

// vaultCall makes one Vault API call and decodes its "data".
func vaultCall(t *testing.T, addr, token, method, path string, body any) map[string]any {
	t.Helper()
	var in bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&in).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, addr+"/v1/"+path, &in)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []string       `json:"errors"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %v", method, path, resp.Status, out.Errors)
	}
	return out.Data
}

// TestVaultInitSeedsVault runs the compose file's vault-init.sh, twice (a
// restarted stack runs it again), against a real Vault in dev mode, as the
// compose file does, and checks what the processes rely on: the sandbox's
// API key and the carrier's secret in Vault match the files the sandbox
// reads, the consent service's keys, the NATS token and the Transit key
// are there, and the PKI issues a certificate for a process, under the CA
// written for the services to trust.
func TestVaultInitSeedsVault(t *testing.T) {
	t.Parallel()
	const token, natsToken = "vault-init-test-root", "vault-init-test-nats"
	bin := vaultBin(t)
	addr := devVault(t, bin, token)
	shared := t.TempDir()
	script, err := filepath.Abs(filepath.Join("..", "compose", "vault-init.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("sh", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
			"VAULT_ADDR="+addr, "VAULT_TOKEN="+token, "NATS_TOKEN="+natsToken, "SHARED_DIR="+shared)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vault-init.sh, run %d: %v\n%s", run, err, out)
		}
	}

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	kv := func(path, key string) string {
		v, _ := vaultCall(t, addr, token, http.MethodGet, "bankbridge/data/"+path, nil)["data"].(map[string]any)[key].(string)
		return v
	}
	if key := read("sandbox-api-key"); key == "" || kv("banks/sandbox", "api_key") != key {
		t.Errorf("the sandbox's API key in Vault is not the one in its --api-key-file")
	}
	secret := read("sandbox-carrier-secret")
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); !strings.HasPrefix(secret, "whsec_") || err != nil || len(raw) != 32 {
		t.Errorf("carrier secret is not whsec_ and 32 bytes in base64 (decode: %v)", err)
	}
	if kv("carriers/sandbox", "secret") != secret {
		t.Errorf("the carrier's secret in Vault is not the one in the sandbox's --carrier-secret-file")
	}
	for _, k := range []string{"code_hmac_key", "login_hmac_key"} {
		if len(kv("keys/consent", k)) != 64 {
			t.Errorf("keys/consent %s is not 32 bytes in hex", k)
		}
	}
	if kv("nats", "token") != natsToken {
		t.Errorf("bankbridge/nats token is not NATS_TOKEN")
	}
	if typ := vaultCall(t, addr, token, http.MethodGet, "transit/keys/bankbridge-access-log", nil)["type"]; typ != "ed25519" {
		t.Errorf("Transit key bankbridge-access-log is %v, want ed25519", typ)
	}

	block, _ := pem.Decode([]byte(read("ca.pem")))
	if block == nil {
		t.Fatal("ca.pem holds no PEM block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range Names() {
		issued := vaultCall(t, addr, token, http.MethodPost, "pki/issue/"+name,
			map[string]any{"common_name": name, "ip_sans": "127.0.0.1", "alt_names": "localhost"})
		certPEM, _ := issued["certificate"].(string)
		b, _ := pem.Decode([]byte(certPEM))
		if b == nil {
			t.Fatalf("pki/issue/%s: no certificate", name)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s's certificate does not verify under ca.pem: %v", name, err)
		}
	}
	if got := fmt.Sprint(vaultCall(t, addr, token, http.MethodGet, "pki/roles/balance", nil)["allowed_domains"]); got != "[balance localhost]" {
		t.Errorf("PKI role balance allows %s, want its name and localhost only", got)
	}
}
