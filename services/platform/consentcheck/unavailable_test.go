package consentcheck_test

// A consent service that cannot be reached: a consent-gated call through a
// real server (the kit's access check, a real Checker dialed the kit's
// way) is refused at once with UNAVAILABLE (CONSENT_UNAVAILABLE) and a
// retry hint, never served and never a masked INTERNAL.

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// servedBalance answers every GetBalance: reaching it is serving data.
type servedBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	mu     sync.Mutex
	served int
}

func (b *servedBalance) GetBalance(context.Context, *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.served++
	return &balancev1.GetBalanceResponse{}, nil
}

// servedShipping opens every WatchShipments stream and ends it at once.
type servedShipping struct {
	shippingv1.UnimplementedShippingServiceServer
}

func (servedShipping) WatchShipments(*shippingv1.WatchShipmentsRequest, grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	return nil
}

// deadlines records the time left on each outgoing CheckConsent.
type deadlines struct {
	mu   sync.Mutex
	left []time.Duration
}

func (d *deadlines) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method == consentv1.ConsentCheckService_CheckConsent_FullMethodName {
		dl, _ := ctx.Deadline()
		d.mu.Lock()
		d.left = append(d.left, time.Until(dl))
		d.mu.Unlock()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// mute is a consent service that completes the gRPC handshake and then
// never answers a call, as one that hangs on its database does.
type mute struct {
	consentv1.UnimplementedConsentCheckServiceServer
}

func (mute) CheckConsent(ctx context.Context, _ *consentv1.CheckConsentRequest) (*consentv1.CheckConsentResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (mute) RecordAccess(ctx context.Context, _ *consentv1.RecordAccessRequest) (*consentv1.RecordAccessResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func muteServer(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	consentv1.RegisterConsentCheckServiceServer(srv, mute{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// gatedServer serves balance and shipping through the kit, deciding
// consent with a Checker dialed to consentAddr as bootstrap dials it.
func gatedServer(t *testing.T, consentAddr string) (*servertest.Server, *servedBalance, *deadlines) {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "consent-client", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	seen := &deadlines{}
	conn, err := client.Dial(consentAddr, tel, client.Options{
		RetryMethods: []string{consentv1.ConsentCheckService_CheckConsent_FullMethodName},
		Extra:        []grpc.DialOption{grpc.WithChainUnaryInterceptor(seen.intercept)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	checker := consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{CacheTTL: time.Hour})
	balance := &servedBalance{}
	s := servertest.Start(t, server.Deps{Consent: checker, Recorder: checker}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, balance)
		shippingv1.RegisterShippingServiceServer(r, servedShipping{})
	}, servertest.Options{Name: "balance"})
	return s, balance, seen
}

func asAlice(t *testing.T, s *servertest.Server, purpose string) context.Context {
	t.Helper()
	tok, err := s.Issuer.Mint("alice", servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok, "bankbridge-purpose", purpose)
}

// requireConsentUnavailable checks what the caller sees.
func requireConsentUnavailable(t *testing.T, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code = %v (%v), want UNAVAILABLE", status.Code(err), err)
	}
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE)
	if d := apierr.RetryDelay(err); d <= 0 {
		t.Errorf("RetryInfo delay = %v, want a retry hint", d)
	}
}

func TestAnUnreachableConsentServiceRefusesAtOnceWithConsentUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		consent func(t testing.TB) string
	}{
		{"connection refused", testkit.ClosedAddr},
		{"accepts and never answers", testkit.Blackhole},
		{"handshakes and never answers a call", muteServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, balance, seen := gatedServer(t, tt.consent(t))
			// The caller gives the call 30s, as the gateway does; the
			// consent check must not take it all.
			ctx, cancel := context.WithTimeout(asAlice(t, s, "ACCOUNT_INFORMATION"), 30*time.Second)
			defer cancel()
			for range 2 { // the first call connects; the second finds the connection as the first left it
				began := time.Now()
				_, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(ctx, &balancev1.GetBalanceRequest{Name: "users/alice/accounts/sandbox~a1/balance"})
				took := time.Since(began)
				requireConsentUnavailable(t, err)
				// A generous bound: the point is "not the caller's 30s"; the
				// deadline set on the consent call is checked below.
				if took > 2*time.Second {
					t.Errorf("refused after %v, want well within the caller's 30s", took)
				}
			}
			balance.mu.Lock()
			defer balance.mu.Unlock()
			if balance.served != 0 {
				t.Errorf("the handler served %d calls without a consent decision", balance.served)
			}
			seen.mu.Lock()
			defer seen.mu.Unlock()
			if len(seen.left) == 0 {
				t.Fatal("no CheckConsent went out")
			}
			for _, left := range seen.left {
				if left > consentcheck.DefaultCheckTimeout {
					t.Errorf("CheckConsent went out with %v to its deadline, want at most %v", left, consentcheck.DefaultCheckTimeout)
				}
			}
		})
	}
}

func TestAnUnreachableConsentServiceRefusesAStreamWithConsentUnavailable(t *testing.T) {
	t.Parallel()
	s, _, _ := gatedServer(t, testkit.Blackhole(t))
	ctx, cancel := context.WithTimeout(asAlice(t, s, "ORDER_TRACKING"), 30*time.Second)
	defer cancel()
	stream, err := shippingv1.NewShippingServiceClient(s.Conn).WatchShipments(ctx, &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	requireConsentUnavailable(t, err)
}
