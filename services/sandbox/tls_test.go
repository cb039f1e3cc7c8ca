package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// TestServesMutualTLS runs the sandbox as the dev stack does: its
// certificate from Vault's PKI, and only bankbridge's client certificates
// let in. The registry reaches it as banks.yaml says (ca_file,
// server_name, client_cert_from_service) with a service's certificate; a
// client certificate of another CA, or none, is refused before the API
// key is even looked at.
func TestServesMutualTLS(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.EnablePKI(t, "sandbox", "balance")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte(v.PKICA()), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "api-key")
	writeKey(t, keyFile, "first-key-0001")

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan bootstrap.Listening, 1)
	done := make(chan error, 1)
	s := spec(defaults())
	s.Ready = func(l bootstrap.Listening) { ready <- l }
	s.Logs = io.Discard
	go func() {
		done <- bootstrap.Run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--api-key-file", keyFile,
			"--vault-addr", v.Addr(), "--vault-token", v.RootToken()}, s)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var addrs bootstrap.Listening
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the sandbox did not start")
	}

	balance := v.IssueCertificate(t, "balance", time.Hour)
	foreign := testkit.NewCA(t).Issue(t, "balance")
	tests := []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"a bankbridge service's certificate", &balance, true},
		{"a certificate of another CA", &foreign, false},
		{"no client certificate", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []runtime.Option
			if tt.cert != nil {
				opts = append(opts, runtime.WithClientCertificate(func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tt.cert, nil }))
			} else {
				opts = append(opts, runtime.WithClientCertificate(func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &tls.Certificate{}, nil // what a client without one sends
				}))
			}
			r, err := runtime.NewRegistry([]runtime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindRemote, Endpoint: addrs.Addr,
				TLS: &runtime.TLS{CAFile: caFile, ServerName: "sandbox", ClientCertFromService: true}}},
				append(opts, runtime.WithCredentials(&credentials{key: "first-key-0001"}), runtime.WithRegistryLogger(slog.New(slog.DiscardHandler)))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			c, err := r.Client("sandbox")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
			switch {
			case tt.ok && err != nil:
				t.Fatalf("GetAdapterInfo: %v", err)
			case !tt.ok && !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE):
				t.Fatalf("GetAdapterInfo = %v, want the connection refused (BANK_UNAVAILABLE)", err)
			}
		})
	}
}
