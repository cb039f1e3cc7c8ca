package helm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// TestVaultSetup runs the chart's vault-setup.sh, as an operator would, on
// a real Vault dev server (bin/vault, make vault), and checks what it
// wrote: each process's Kubernetes-auth role is bound to its Deployment's
// service account in the release's namespace with the audience of its
// projected token, and the role's policies let a token read that
// process's own paths and nothing of another process's; its PKI role
// issues the certificate its BANKBRIDGE_TLS_HOSTS asks for, and not one
// naming another process.
func TestVaultSetup(t *testing.T) {
	t.Parallel()
	r := render(t, []string{"examples/production.yaml", "examples/staging.yaml"})
	cm, ok := r.configMaps[releaseName+"-vault-setup"]
	if !ok {
		t.Fatal("no vault-setup ConfigMap")
	}
	script := cm.Data["vault-setup.sh"]
	v := startVault(t)

	// What docs/deploy.md asks an operator to set up before the script.
	v.cli(t, "auth", "enable", "kubernetes")
	v.cli(t, "secrets", "enable", "-path=bankbridge", "kv-v2")
	v.cli(t, "secrets", "enable", "transit")
	v.cli(t, "secrets", "enable", "pki")
	v.cli(t, "secrets", "tune", "-max-lease-ttl=8760h", "pki")
	v.cli(t, "write", "pki/root/generate/internal", "common_name=bankbridge test CA", "ttl=8760h", "key_type=ec", "key_bits=256")
	v.cli(t, "kv", "put", "bankbridge/banks/acme", "api_key=test-only")

	path := filepath.Join(t.TempDir(), "vault-setup.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := v.command("sh", path).CombinedOutput(); err != nil {
		t.Fatalf("vault-setup.sh: %v\n%s", err, out)
	}

	// Who may do what: each path, the capability a process needs on it,
	// and the processes that have it.
	type grant struct {
		path, capability string
		holders          []string
	}
	grants := []grant{
		{"bankbridge/data/banks/acme", "read", []string{"consent", "balance", "receipts", "support"}},
		{"bankbridge/data/nats", "read", []string{"consent", "receipts", "shipping", "support", "webhooks"}},
		{"bankbridge/data/carriers/parcelco", "read", []string{"shipping"}},
		{"bankbridge/data/keys/consent", "read", []string{"consent"}},
		{"bankbridge/data/webhooks/ep_1", "update", []string{"webhooks"}},
		{"bankbridge/metadata/webhooks/ep_1", "delete", []string{"webhooks"}},
		{"transit/sign/bankbridge-access-log", "update", []string{"consent"}},
		{"transit/keys/bankbridge-access-log", "read", []string{"consent"}},
		{"bankbridge/data/telemetry/pseudonym", "read", []string{"consent", "balance", "receipts", "shipping", "support", "webhooks"}},
		{"bankbridge/data/partners/acme-pay", "read", nil},
		{"sys/policies/acl/bankbridge-banks", "update", nil},
		{"auth/kubernetes/role/balance", "update", nil},
		{"pki/roles/balance", "update", nil},
	}
	for _, p := range processes(true) {
		grants = append(grants, grant{"pki/issue/" + p.name, "update", []string{p.name}})
	}

	for _, p := range processes(true) {
		t.Run(p.name, func(t *testing.T) {
			d := r.deployments[objName(p.name)]
			if d == nil {
				t.Fatalf("no Deployment %s", objName(p.name))
			}
			var role struct {
				Data struct {
					Names      []string `json:"bound_service_account_names"`
					Namespaces []string `json:"bound_service_account_namespaces"`
					Audience   string   `json:"audience"`
					Policies   []string `json:"token_policies"`
				} `json:"data"`
			}
			v.api(t, "GET", "auth/kubernetes/role/"+p.name, v.root, nil, &role)
			if sa := d.Spec.Template.Spec.ServiceAccountName; !slices.Equal(role.Data.Names, []string{sa}) {
				t.Errorf("role %s bound to service accounts %v, want the Deployment's [%s]", p.name, role.Data.Names, sa)
			}
			if !slices.Equal(role.Data.Namespaces, []string{namespace}) {
				t.Errorf("role %s bound to namespaces %v, want [%s]", p.name, role.Data.Namespaces, namespace)
			}
			if aud := tokenAudience(d); role.Data.Audience != aud || aud == "" {
				t.Errorf("role %s wants audience %q, the pod's token has %q", p.name, role.Data.Audience, aud)
			}
			if env := envOf(d); env["BANKBRIDGE_VAULT_K8S_ROLE"] != p.name {
				t.Errorf("the pod logs in as role %q, want %q", env["BANKBRIDGE_VAULT_K8S_ROLE"], p.name)
			}

			// A token with the role's policies, as its login gets.
			var created struct {
				Auth struct {
					Token string `json:"client_token"`
				} `json:"auth"`
			}
			v.api(t, "POST", "auth/token/create", v.root, map[string]any{"policies": role.Data.Policies, "ttl": "10m"}, &created)
			token := created.Auth.Token
			var paths []string
			for _, g := range grants {
				paths = append(paths, g.path)
			}
			var caps struct {
				Data map[string]any `json:"data"`
			}
			v.api(t, "POST", "sys/capabilities", v.root, map[string]any{"token": token, "paths": paths}, &caps)
			for _, g := range grants {
				raw, ok := caps.Data[g.path].([]any)
				if !ok {
					t.Fatalf("no capabilities of %s in Vault's answer %v", g.path, caps.Data)
				}
				var got []string
				for _, c := range raw {
					got = append(got, fmt.Sprint(c))
				}
				has := slices.Contains(got, g.capability)
				if want := slices.Contains(g.holders, p.name); has != want {
					t.Errorf("%s on %s: %v (capabilities %v), want %v", g.capability, g.path, has, got, want)
				}
			}

			// Reading a bank's credentials for real.
			err := v.try("GET", "bankbridge/data/banks/acme", token, nil, nil)
			if wantRead := p.banks; (err == nil) != wantRead {
				t.Errorf("read bankbridge/banks/acme: err %v, want allowed=%v", err, wantRead)
			}

			// Its certificate, as the process asks for it: its name, its
			// TLS hosts, localhost and 127.0.0.1.
			hosts := strings.Split(envOf(d)["BANKBRIDGE_TLS_HOSTS"], ",")
			issue := map[string]any{"common_name": p.name, "alt_names": strings.Join(append(hosts, "localhost"), ","), "ip_sans": "127.0.0.1", "ttl": "1h"}
			if err := v.try("POST", "pki/issue/"+p.name, token, issue, nil); err != nil {
				t.Errorf("issue %s's certificate for %v: %v", p.name, hosts, err)
			}
			other := "consent"
			if p.name == other {
				other = "balance"
			}
			for _, forged := range []map[string]any{
				{"common_name": other, "ttl": "1h"},
				{"common_name": p.name, "alt_names": objName(other), "ttl": "1h"},
				{"common_name": p.name, "alt_names": objName(other) + "." + namespace + ".svc", "ttl": "1h"},
			} {
				if err := v.try("POST", "pki/issue/"+p.name, token, forged, nil); err == nil {
					t.Errorf("%s's PKI role issued a certificate naming %s: %v", p.name, other, forged)
				}
			}
		})
	}
}

// tokenAudience is the audience of the service-account token projected
// into d's pods.
func tokenAudience(d *appsv1.Deployment) string {
	for _, vol := range d.Spec.Template.Spec.Volumes {
		if vol.Projected == nil {
			continue
		}
		for _, s := range vol.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return s.ServiceAccountToken.Audience
			}
		}
	}
	return ""
}

// vaultServer is a Vault dev server of the test's own.
type vaultServer struct {
	bin, addr, root string
	out             *bytes.Buffer
}

// startVault runs bin/vault server -dev on a free port and waits until it
// answers; the server is killed when the test ends.
func startVault(t *testing.T) *vaultServer {
	t.Helper()
	bin := tool(t, "BANKBRIDGE_VAULT_BIN", "vault", "vault")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	v := &vaultServer{bin: bin, addr: "http://127.0.0.1:" + strconv.Itoa(port), root: "root", out: &bytes.Buffer{}}
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+v.root,
		"-dev-listen-address=127.0.0.1:"+strconv.Itoa(port), "-dev-no-store-token")
	cmd.Env = append(withoutVault(os.Environ()), "HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = v.out, v.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(90 * time.Second) // a busy machine starts it slowly
	for {
		select {
		case <-exited:
			t.Fatalf("vault server exited:\n%s", v.out)
		default:
		}
		if resp, err := http.Get(v.addr + "/v1/sys/health"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault server at %s not healthy:\n%s", v.addr, v.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func withoutVault(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return out
}

// command is a command run as the operator: the vault CLI on PATH,
// VAULT_ADDR and the root token set.
func (v *vaultServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(withoutVault(os.Environ()),
		"PATH="+filepath.Dir(v.bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+v.addr, "VAULT_TOKEN="+v.root, "HOME="+os.TempDir())
	return cmd
}

// cli runs the vault CLI as root.
func (v *vaultServer) cli(t *testing.T, args ...string) {
	t.Helper()
	if out, err := v.command(v.bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// api calls Vault's HTTP API and fails the test on an error.
func (v *vaultServer) api(t *testing.T, method, path, token string, body, into any) {
	t.Helper()
	if err := v.try(method, path, token, body, into); err != nil {
		t.Fatal(err)
	}
}

// try calls Vault's HTTP API with token; an answer other than 2xx is an
// error.
func (v *vaultServer) try(method, path, token string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return errors.New(method + " " + path + ": " + resp.Status + ": " + strings.TrimSpace(string(data)))
	}
	if into != nil {
		return json.Unmarshal(data, into)
	}
	return nil
}
