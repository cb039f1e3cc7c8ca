package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestParseRefuses(t *testing.T) {
	bank := []string{"--bank-url", "https://bank.example", "--bank-cert", "c.pem", "--bank-key", "k.pem"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no bank", []string{"--plaintext"}, "--bank-url"},
		{"no server TLS", bank, "--tls-cert"},
		{"plaintext on a public address", append([]string{"--plaintext", "--listen", "0.0.0.0:9400"}, bank...), "loopback"},
		{"plaintext with TLS", append([]string{"--plaintext", "--tls-cert", "x"}, bank...), "--plaintext with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse(%q): %v, want an error naming %s", tt.args, err, tt.want)
			}
		})
	}
}

// TestServesMutualTLSAndAPIKey runs the command: a caller without a client
// certificate is refused at the handshake, one with a wrong API key with
// CREDENTIALS_REJECTED, and one with both gets through to the bank.
func TestServesMutualTLSAndAPIKey(t *testing.T) {
	pki, err := xs2asandbox.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bank := httptest.NewUnstartedServer(xs2asandbox.New(xs2asandbox.Options{}).Handler())
	if bank.TLS, err = pki.ServerTLS(); err != nil {
		t.Fatal(err)
	}
	bank.StartTLS()
	defer bank.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("the-right-key-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--bank-url", bank.URL, "--bank-ca", pki.CAFile,
			"--bank-cert", pki.ClientCert, "--bank-key", pki.ClientKey,
			"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-client-ca", pki.CAFile,
			"--api-key-file", keyFile, "--psu-ip-address", "192.0.2.1"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	full, err := pki.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	noCert := &tls.Config{RootCAs: full.RootCAs, MinVersion: tls.VersionTLS12}
	call := func(cfg *tls.Config, key string) (*adapterv1.StartScaResponse, error) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c = metadata.AppendToOutgoingContext(c, adapters.APIKeyMetadata, key)
		return adapterv1.NewBankAdapterServiceClient(conn).StartSca(c, &adapterv1.StartScaRequest{
			UserReference: "u1", LoginHint: xs2asandbox.PSUAnna, Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
			ValidUntil: timestampIn(time.Hour), IdempotencyKey: "cmd-test-" + key,
		}, grpc.WaitForReady(true))
	}
	// Wait until it serves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := call(full, "the-right-key-0123"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("bg-adapter does not serve: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, cancelNoCert := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancelNoCert()
	conn, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(noCert)))
	_, err = adapterv1.NewBankAdapterServiceClient(conn).GetAdapterInfo(c, &adapterv1.GetAdapterInfoRequest{})
	conn.Close()
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("without a client certificate: %v, want the handshake refused", err)
	}
	_, err = call(full, "the-wrong-key-0123")
	if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED {
		t.Errorf("with a wrong API key: %v, want CREDENTIALS_REJECTED", err)
	}
}

func timestampIn(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(d)) }
