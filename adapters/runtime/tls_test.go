package runtime_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testCA issues certificates for the mTLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for name, as a server (with the
// loopback address) or a client.
func (ca *testCA) issue(t *testing.T, name string, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{name}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, "adapter.bank.example", 2, true)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	serverTLS := grpccreds.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	tb := &adaptertest.TestBank{}
	addr := adaptertest.ServeWith(t, tb, []grpc.ServerOption{grpc.Creds(serverTLS)},
		adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey := ca.issue(t, "bankbridge", 3, false)
	tests := []struct {
		name  string
		creds map[string]string
		// wantReason is UNSPECIFIED for success.
		wantReason commonv1.ErrorReason
	}{
		{
			name:  "client certificate from the credential",
			creds: map[string]string{"api_key": adaptertest.TestAPIKey, "tls_cert": string(clientCert), "tls_key": string(clientKey)},
		},
		{
			name:       "no client certificate",
			creds:      map[string]string{"api_key": adaptertest.TestAPIKey},
			wantReason: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bank := runtime.Bank{
				ID: "test", DisplayName: "Test Bank", Kind: runtime.KindRemote, Endpoint: addr,
				TLS: &runtime.TLS{CAFile: caFile, ServerName: "adapter.bank.example", ClientCertFromVault: true},
			}
			c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(tt.creds))), "test")
			_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "ok"})
			if tt.wantReason != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				adaptertest.WantReason(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			md := tb.Metadata()
			for _, k := range []string{"bankbridge-credential-tls_cert", "bankbridge-credential-tls_key"} {
				if len(md.Get(k)) > 0 {
					t.Errorf("%s was sent as metadata", k)
				}
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, caFile, wantErr string
	}{
		{name: "missing CA file", caFile: filepath.Join(t.TempDir(), "missing.pem"), wantErr: `banks[0] (id "test"): tls.ca_file:`},
		{name: "CA file without certificates", caFile: notPEM, wantErr: "tls.ca_file: no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bank := runtime.Bank{ID: "test", DisplayName: "Test", Kind: runtime.KindRemote, Endpoint: "127.0.0.1:1", TLS: &runtime.TLS{CAFile: tt.caFile}}
			_, err := runtime.NewRegistry([]runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(nil)))
			if err == nil || !adaptertest.ContainsStr(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestClientCertFromService: a bank whose TLS block asks for
// client_cert_from_service gets the calling service's own certificate
// (WithClientCertificate), asked for at each handshake so a renewed one is
// presented from the next connection on; a registry without it refuses
// the bank at start.
func TestClientCertFromService(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, "sandbox", 2, true)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	seen := make(chan string, 4)
	serverTLS := grpccreds.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen <- cs.PeerCertificates[0].Subject.CommonName
			return nil
		},
	})
	addr := adaptertest.ServeWith(t, &adaptertest.TestBank{}, []grpc.ServerOption{grpc.Creds(serverTLS)},
		adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey := ca.issue(t, "balance", 3, false)
	own, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	bank := runtime.Bank{
		ID: "test", DisplayName: "Test Bank", Kind: runtime.KindRemote, Endpoint: addr,
		TLS: &runtime.TLS{CAFile: caFile, ServerName: "sandbox", ClientCertFromService: true},
	}
	creds := adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey})

	_, err = runtime.NewRegistry([]runtime.Bank{bank}, runtime.WithCredentials(creds))
	if err == nil || !adaptertest.ContainsStr(err.Error(), "tls.client_cert_from_service: this process has no certificate of its own") {
		t.Fatalf("a registry without the service's certificate: %v", err)
	}

	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(creds),
		runtime.WithClientCertificate(func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &own, nil })), "test")
	if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "balance" {
		t.Errorf("the adapter saw client certificate %q, want the service's", got)
	}
}
