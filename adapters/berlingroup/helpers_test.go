package berlingroup_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/berlingroup"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// env is a sandbox bank over mutual TLS and the adapter in front of it,
// served over real gRPC on 127.0.0.1 through the SDK's server.
type env struct {
	pki     *xs2asandbox.PKI
	bank    *xs2asandbox.Bank
	bankURL string
	adapter *berlingroup.Adapter
	client  adapterv1.BankAdapterServiceClient
}

// bankServer serves h over TLS that requires a client certificate of the
// test CA, as the sandbox's command does.
func bankServer(t *testing.T, pki *xs2asandbox.PKI, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	cfg, err := pki.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// httpClient is the TPP's client: its certificate, trusting the test CA.
func httpClient(t *testing.T, certFile, keyFile, caFile string) *http.Client {
	t.Helper()
	cfg, err := berlingroup.ClientTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func newEnv(t *testing.T, opts xs2asandbox.Options) *env {
	t.Helper()
	pki, err := xs2asandbox.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bank := xs2asandbox.New(opts)
	srv := bankServer(t, pki, bank.Handler())
	e := &env{pki: pki, bank: bank, bankURL: srv.URL}
	e.adapter = e.newAdapter(t, berlingroup.Options{})
	e.client = serve(t, e.adapter)
	return e
}

func (e *env) newAdapter(t *testing.T, opts berlingroup.Options) *berlingroup.Adapter {
	t.Helper()
	if opts.BaseURL == "" {
		opts.BaseURL = e.bankURL
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = httpClient(t, e.pki.ClientCert, e.pki.ClientKey, e.pki.CAFile)
	}
	opts.PSUIPAddress = "192.0.2.10"
	a, err := berlingroup.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve serves a over gRPC on 127.0.0.1 through adapters.NewServer.
func serve(t *testing.T, a adapters.Adapter, opts ...adapters.ServerOption) adapterv1.BankAdapterServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	opts = append([]adapters.ServerOption{adapters.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(a, opts...))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return adapterv1.NewBankAdapterServiceClient(conn)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(c, adapters.PurposeMetadata, "ACCOUNT_INFORMATION")
}
