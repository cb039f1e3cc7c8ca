package e2e

// Transport security on the running stack: every listener speaks TLS only,
// a client certificate of another CA is refused, internal methods take the
// calling service's own certificate, and no process has a secret on its
// command line.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/certs"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// issueCert gets a certificate for the process name from the stack's
// Vault PKI, as that process does at start: a test playing a bankbridge
// service.
func issueCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: shared.stack.Vault.Addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(shared.stack.Vault.Token)
	secret, err := c.Logical().WriteWithContext(t.Context(), certs.DefaultMount+"/issue/"+name,
		map[string]any{"common_name": name, "ip_sans": "127.0.0.1", "ttl": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := secret.Data["certificate"].(string)
	keyPEM, _ := secret.Data["private_key"].(string)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// tlsCreds trust the stack's CA and present cert, if any.
func tlsCreds(cert *tls.Certificate) credentials.TransportCredentials {
	cfg := shared.stack.ClientTLS()
	if cert != nil {
		cfg.GetClientCertificate = testkit.SendCertificate(cert)
	}
	return credentials.NewTLS(cfg)
}

// grpcHealthCheck calls a gRPC listener's health service over creds.
func grpcHealthCheck(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// httpsStatus GETs url trusting the stack's CA, presenting cert when
// given.
func httpsStatus(url string, cert *tls.Certificate) (int, error) {
	cfg := shared.stack.ClientTLS()
	if cert != nil {
		cfg.GetClientCertificate = testkit.SendCertificate(cert)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// plaintextServed reports whether a plaintext HTTP request to addr got an
// answer from bankbridge rather than net/http's "400 Client sent an HTTP
// request to an HTTPS server", or an error.
func plaintextServed(addr, path string) (bool, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	refused := resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "HTTPS")
	return !refused, fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// listener is one listener of the stack.
type listener struct {
	process, kind, addr string
}

func listeners() []listener {
	s := shared.stack
	var out []listener
	for _, p := range stack.Table() {
		switch p.Kind {
		case stack.Gateway:
			out = append(out, listener{p.Name, "https", s.Addr(p.Name)})
		case stack.Web:
			// The demo chat is a client of bankbridge, not part of it:
			// plain HTTP on loopback by design (devstack/stack/table.go).
		default:
			out = append(out, listener{p.Name, "grpc", s.Addr(p.Name)})
			if a := s.AdminAddr(p.Name); a != "" {
				out = append(out, listener{p.Name, "admin", a})
			}
			if a := s.HTTPAddr(p.Name); a != "" {
				out = append(out, listener{p.Name, "https", a})
			}
		}
	}
	return out
}

// TestEveryListenerRefusesPlaintext tries every listener of the stack in
// plaintext, and then over TLS to show it is up.
func TestEveryListenerRefusesPlaintext(t *testing.T) {
	bankbridge := issueCert(t, "balance") // a bank's listener takes bankbridge's certificate only
	for _, l := range listeners() {
		t.Run(l.process+" "+l.kind, func(t *testing.T) {
			switch l.kind {
			case "grpc":
				if err := grpcHealthCheck(t, l.addr, insecure.NewCredentials()); err == nil {
					t.Errorf("%s: plaintext gRPC was served", l.addr)
				}
				if err := grpcHealthCheck(t, l.addr, tlsCreds(&bankbridge)); err != nil {
					t.Errorf("%s over TLS: %v", l.addr, err)
				}
			default:
				if served, got := plaintextServed(l.addr, "/readyz"); served {
					t.Errorf("%s: plaintext HTTP was served: %s", l.addr, got)
				}
				if code, err := httpsStatus("https://"+l.addr+"/readyz", nil); err != nil || code == 0 {
					t.Errorf("https://%s: %d, %v", l.addr, code, err)
				}
			}
		})
	}
}

// TestAnotherCAsClientCertificateIsRefused presents a certificate for
// "balance" of a CA that is not the stack's: listeners that require
// bankbridge's certificate and listeners that verify one when given
// refuse it alike.
func TestAnotherCAsClientCertificateIsRefused(t *testing.T) {
	foreign := testkit.NewCA(t).Issue(t, "balance")
	for _, l := range listeners() {
		t.Run(l.process+" "+l.kind, func(t *testing.T) {
			if l.kind == "grpc" {
				if err := grpcHealthCheck(t, l.addr, tlsCreds(&foreign)); err == nil {
					t.Errorf("%s served a client certificate of another CA", l.addr)
				}
				return
			}
			if code, err := httpsStatus("https://"+l.addr+"/readyz", &foreign); err == nil {
				t.Errorf("https://%s served a client certificate of another CA: %d", l.addr, code)
			}
		})
	}
	t.Run("the sandbox bank without a client certificate", func(t *testing.T) {
		if err := grpcHealthCheck(t, shared.stack.Addr("sandbox"), tlsCreds(nil)); err == nil {
			t.Error("the sandbox's adapter listener served a caller without a client certificate")
		}
	})
}

// serviceToken gets the internal token of a bankbridge service from the
// dev issuer, as the service itself does.
func serviceToken(t *testing.T, service string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {auth.DefaultInternalAudience}}
	req, _ := http.NewRequest(http.MethodPost, shared.stack.GatewayURL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(service, shared.stack.ServiceSecret())
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("service token for %s: %d %v", service, resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestInternalMethodsTakeTheCallersCertificate calls the consent
// service's internal CheckConsent with balance's own valid internal token:
// refused without a client certificate and with another service's, served
// with balance's.
func TestInternalMethodsTakeTheCallersCertificate(t *testing.T) {
	token := serviceToken(t, "balance")
	balance, receipts := issueCert(t, "balance"), issueCert(t, "receipts")
	check := func(cert *tls.Certificate) error {
		conn, err := grpc.NewClient(shared.consent, grpc.WithTransportCredentials(tlsCreds(cert)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token), 5*time.Second)
		defer cancel()
		_, err = consentv1.NewConsentCheckServiceClient(conn).CheckConsent(ctx, &consentv1.CheckConsentRequest{User: "users/alice",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		return err
	}
	if err := check(&balance); err != nil {
		t.Fatalf("with balance's certificate: %v", err)
	}
	for name, cert := range map[string]*tls.Certificate{"no client certificate": nil, "receipts' certificate": &receipts} {
		err := check(cert)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PERMISSION_DENIED", name, err)
			continue
		}
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	}
}

// TestNoSecretOnAnyCommandLine reads the command line of every process the
// stack runs (/proc/<pid>/cmdline, which every user of the machine can
// read) and looks for every secret the stack generated.
func TestNoSecretOnAnyCommandLine(t *testing.T) {
	secrets := shared.stack.Secrets()
	if len(secrets) < 7 {
		t.Fatalf("the stack names %d secrets, want its Vault token, service secret, page token key, partner secret, NATS token, API key and carrier secret", len(secrets))
	}
	pids := shared.stack.PIDs()
	if len(pids) != len(stack.Table())+1 {
		t.Fatalf("processes %v: want every process of the table and Vault", pids)
	}
	for name, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cmdline) == 0 {
			t.Fatalf("%s: empty command line", name)
		}
		for i, secret := range secrets {
			if strings.Contains(string(cmdline), secret) {
				t.Errorf("%s's command line holds secret #%d", name, i)
			}
		}
	}
}
