package bootstrap_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// serveTLS runs a binary of kind against v, whose PKI has a role for
// name, until the test ends, and returns where it listens.
func serveTLS(t *testing.T, v *vaulttest.Server, kind bootstrap.Kind, name string, needs bootstrap.Needs, args ...string) bootstrap.Listening {
	t.Helper()
	cfg := bootstrap.Defaults(name, "127.0.0.1:0", "127.0.0.1:0")
	cfg.HTTPAddr = "127.0.0.1:0"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	ready := make(chan bootstrap.Listening, 1)
	spec := bootstrap.Spec{
		Kind: kind, Config: &cfg, Needs: needs, Logs: io.Discard,
		Ready: func(l bootstrap.Listening) { ready <- l },
		Start: func(context.Context, *bootstrap.Deps) (bootstrap.Service, error) {
			svc := bootstrap.Service{GRPC: func(grpc.ServiceRegistrar) {}}
			if kind == bootstrap.KindGateway || needs.HTTP {
				svc.HTTP = ok
			}
			return svc, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bootstrap.Run(ctx, append([]string{"--vault-addr=" + v.Addr(), "--vault-token=" + v.RootToken(),
			"--drain-delay=0s", "--shutdown-grace=1s"}, args...), spec)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case l := <-ready:
		return l
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	return bootstrap.Listening{}
}

// grpcHealth calls the health service at addr with creds.
func grpcHealth(t *testing.T, addr string, creds credentials.TransportCredentials) error {
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

// httpsGet gets url with a client that trusts pool and presents cert
// (none when nil), and returns the status, or the error.
func httpsGet(url string, pool *x509.CertPool, cert *tls.Certificate) (int, error) {
	cfg := &tls.Config{RootCAs: pool}
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

// refusedPlaintext reports whether a plaintext HTTP request to addr got no
// answer from the handler: an error, or net/http's 400 to HTTP on a TLS
// port.
func refusedPlaintext(t *testing.T, addr string) bool {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return true
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "HTTPS")
}

// TestEveryListenerServesTLSFromVault: each kind of binary serves every
// listener over TLS with a certificate for its name from Vault's PKI, and
// refuses plaintext and certificates of another CA; a bank's gRPC listener
// takes bankbridge's client certificates only, a service's also callers
// without one.
func TestEveryListenerServesTLSFromVault(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	pool := v.EnablePKI(t, "svcprobe", "bankprobe", "gateway", "balance")
	ours := v.IssueCertificate(t, "balance", time.Hour)
	foreign := testkit.NewCA(t).Issue(t, "balance")
	withCert := func(c *tls.Certificate) credentials.TransportCredentials {
		cfg := &tls.Config{RootCAs: pool}
		if c != nil {
			cfg.GetClientCertificate = testkit.SendCertificate(c)
		}
		return credentials.NewTLS(cfg)
	}

	t.Run("a service", func(t *testing.T) {
		t.Parallel()
		l := serveTLS(t, v, bootstrap.KindService, "svcprobe", bootstrap.Needs{HTTP: true},
			"--issuer=https://issuer.test", "--jwks-url=http://127.0.0.1:1/jwks", "--dev-mode", "--http-addr=127.0.0.1:0")
		if err := grpcHealth(t, l.Addr, withCert(nil)); err != nil {
			t.Errorf("gRPC over TLS without a client certificate (a product team): %v", err)
		}
		if err := grpcHealth(t, l.Addr, withCert(&ours)); err != nil {
			t.Errorf("gRPC over TLS with a bankbridge client certificate: %v", err)
		}
		if err := grpcHealth(t, l.Addr, withCert(&foreign)); err == nil {
			t.Error("gRPC with a client certificate of another CA was served")
		}
		if err := grpcHealth(t, l.Addr, insecure.NewCredentials()); err == nil {
			t.Error("plaintext gRPC was served")
		}
		for _, addr := range []string{l.AdminAddr, l.HTTPAddr} {
			if code, err := httpsGet("https://"+addr+"/readyz", pool, nil); err != nil || code != http.StatusOK {
				t.Errorf("https://%s: %d, %v", addr, code, err)
			}
			if _, err := httpsGet("https://"+addr+"/readyz", pool, &foreign); err == nil {
				t.Errorf("https://%s served a client certificate of another CA", addr)
			}
			if !refusedPlaintext(t, addr) {
				t.Errorf("plaintext HTTP to %s was served", addr)
			}
		}
	})
	t.Run("a bank", func(t *testing.T) {
		t.Parallel()
		l := serveTLS(t, v, bootstrap.KindBank, "bankprobe", bootstrap.Needs{})
		if err := grpcHealth(t, l.Addr, withCert(&ours)); err != nil {
			t.Errorf("gRPC with a bankbridge client certificate: %v", err)
		}
		if err := grpcHealth(t, l.Addr, withCert(nil)); err == nil {
			t.Error("a bank's gRPC served a caller without a client certificate")
		}
		if err := grpcHealth(t, l.Addr, withCert(&foreign)); err == nil {
			t.Error("a bank's gRPC served a client certificate of another CA")
		}
		if err := grpcHealth(t, l.Addr, insecure.NewCredentials()); err == nil {
			t.Error("plaintext gRPC was served")
		}
		if code, err := httpsGet("https://"+l.AdminAddr+"/readyz", pool, nil); err != nil || code != http.StatusOK {
			t.Errorf("admin over https: %d, %v", code, err)
		}
		if !refusedPlaintext(t, l.AdminAddr) {
			t.Error("plaintext HTTP to the admin listener was served")
		}
	})
	t.Run("a gateway", func(t *testing.T) {
		t.Parallel()
		l := serveTLS(t, v, bootstrap.KindGateway, "gateway", bootstrap.Needs{}, "--dev-mode")
		if code, err := httpsGet("https://"+l.Addr+"/readyz", pool, nil); err != nil || code != http.StatusOK {
			t.Errorf("https: %d, %v", code, err)
		}
		if _, err := httpsGet("https://"+l.Addr+"/readyz", pool, &foreign); err == nil {
			t.Error("the gateway served a client certificate of another CA")
		}
		if !refusedPlaintext(t, l.Addr) {
			t.Error("plaintext HTTP to the gateway was served")
		}
		// The certificate is for the gateway, issued by the PKI's CA.
		conn, err := tls.Dial("tcp", l.Addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "gateway" {
			t.Errorf("certificate for %q, want gateway", cn)
		}
	})
}
