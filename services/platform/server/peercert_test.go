package server_test

// Internal methods over TLS: the token names the calling service, and the
// connection must carry a verified client certificate naming the same
// service (peercert.go).

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// tlsConn dials the server over TLS, trusting ca, presenting cert when
// given.
func tlsConn(t *testing.T, addr string, ca *testkit.CA, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		cfg.GetClientCertificate = testkit.SendCertificate(cert)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// startTLS serves register over TLS with a certificate of ca for
// "consent", client certificates verified when given, balance and
// receipts as internal clients.
func startTLS(t *testing.T, ca *testkit.CA, logs *testkit.SyncBuffer, register func(grpc.ServiceRegistrar)) *servertest.Server {
	t.Helper()
	cert := ca.Issue(t, "consent")
	return servertest.Start(t, server.Deps{TLS: &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool(),
	}}, register, servertest.Options{Name: "consent", Telemetry: telemetry.Config{LogOutput: logs}, Config: func(c *server.Config) {
		c.InternalClients = "balance,receipts"
	}})
}

func TestInternalMethodsTakeTheCallersCertificate(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	logs := &testkit.SyncBuffer{}
	s := startTLS(t, ca, logs, func(r grpc.ServiceRegistrar) {
		consentv1.RegisterConsentCheckServiceServer(r, exampleConsentCheck{})
		webhooksv1.RegisterWebhooksServiceServer(r, exampleWebhooks{}) // product teams call this server too
	})
	tok, err := s.Issuer.MintInternal("balance", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	balance, receipts := ca.Issue(t, "balance"), ca.Issue(t, "receipts")
	foreign := testkit.NewCA(t).Issue(t, "balance")
	check := func(conn *grpc.ClientConn) error {
		ctx, cancel := context.WithTimeout(withToken(context.Background(), tok), 5*time.Second)
		defer cancel()
		_, err := consentv1.NewConsentCheckServiceClient(conn).CheckConsent(ctx, &consentv1.CheckConsentRequest{User: "users/alice",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		return err
	}

	t.Run("the token's service's certificate reaches the handler", func(t *testing.T) {
		t.Parallel()
		if err := check(tlsConn(t, s.GRPCAddr(), ca, &balance)); status.Code(err) != codes.Unimplemented {
			t.Fatalf("got %v, want the handler's UNIMPLEMENTED", err)
		}
	})
	refusals := []struct {
		name string
		cert *tls.Certificate
	}{
		{"no client certificate", nil},
		{"another service's certificate", &receipts},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := check(tlsConn(t, s.GRPCAddr(), ca, tt.cert))
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("code %v, want PERMISSION_DENIED", status.Code(err))
			}
		})
	}
	t.Run("a certificate of another CA does not connect", func(t *testing.T) {
		t.Parallel()
		if err := check(tlsConn(t, s.GRPCAddr(), ca, &foreign)); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want the handshake refused (UNAVAILABLE)", err)
		}
	})
	t.Run("callers without a certificate are still served", func(t *testing.T) {
		t.Parallel()
		if _, err := healthpb.NewHealthClient(tlsConn(t, s.GRPCAddr(), ca, nil)).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health without a client certificate: %v", err)
		}
	})
	t.Cleanup(func() {
		if !strings.Contains(logs.String(), `"bankbridge.log_type":"security","rpc.method":"/bankbridge.consent.v1.ConsentCheckService/CheckConsent","bankbridge.reason":"CLIENT_NOT_ALLOWED"`) {
			t.Errorf("the refusals are not in the security log:\n%s", logs.String())
		}
	})
}

// TestAnInternalOnlyServerRequiresACertificate: where only bankbridge
// calls, a connection without a client certificate is refused at the
// handshake.
func TestAnInternalOnlyServerRequiresACertificate(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	s := startTLS(t, ca, &testkit.SyncBuffer{}, func(r grpc.ServiceRegistrar) {
		consentv1.RegisterConsentCheckServiceServer(r, exampleConsentCheck{})
	})
	balance := ca.Issue(t, "balance")
	health := func(cert *tls.Certificate) error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(tlsConn(t, s.GRPCAddr(), ca, cert)).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := health(&balance); err != nil {
		t.Fatalf("with bankbridge's certificate: %v", err)
	}
	if err := health(nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("without a client certificate: %v, want the handshake refused", err)
	}
}
