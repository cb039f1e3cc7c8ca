package server_test

// A tiny example service, started through the kit on 127.0.0.1:0 with the
// real interceptor chain, a real JWKS over HTTP and an in-memory span
// exporter. It serves the real BalanceService and ShippingService contracts
// (so validation rules are the real ones) with canned answers.

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/limits"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// Fixture values that must never show up in telemetry.
const (
	fixtureLast4       = "4821"
	fixtureAmountUnits = 98765
	fixturePanicText   = "boom: card 4111111111111111"
	fixtureErrText     = "db password=hunter2"
)

type exampleBalance struct {
	balancev1.UnimplementedBalanceServiceServer
}

// GetAccount answers with the grant the kit handed it in DisplayName
// (bank|link|bank consent id), so tests see what reached the handler.
func (exampleBalance) GetAccount(ctx context.Context, req *balancev1.GetAccountRequest) (*balancev1.GetAccountResponse, error) {
	switch {
	case strings.HasSuffix(req.GetName(), "~panic"):
		panic(fixturePanicText)
	case strings.HasSuffix(req.GetName(), "~plainerr"):
		return nil, errors.New(fixtureErrText)
	case strings.HasSuffix(req.GetName(), "~gone"):
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank no longer honours this consent")
	case strings.HasSuffix(req.GetName(), "~baggage"):
		// What the handler's context carries of W3C baggage.
		return &balancev1.GetAccountResponse{Account: &balancev1.Account{Name: req.GetName(),
			DisplayName: baggage.FromContext(ctx).String()}}, nil
	}
	g := access.GrantFrom(ctx)
	return &balancev1.GetAccountResponse{Account: &balancev1.Account{
		Name:         req.GetName(),
		DisplayName:  g.BankID + "|" + g.Link + "|" + g.BankConsentID,
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: fixtureLast4, Display: "•••• " + fixtureLast4},
	}}, nil
}

func (exampleBalance) GetBalance(_ context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	return &balancev1.GetBalanceResponse{Balance: &balancev1.AccountBalance{
		Name: req.GetName(),
		Balances: []*balancev1.Balance{{
			Type:   balancev1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE,
			Amount: &commonv1.Money{CurrencyCode: "EUR", Units: fixtureAmountUnits, Nanos: 120000000},
			AsOf:   timestamppb.Now(),
		}},
		AsOf: timestamppb.Now(),
	}}, nil
}

func (exampleBalance) ListAccounts(context.Context, *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	return &balancev1.ListAccountsResponse{}, nil
}

type exampleShipping struct {
	shippingv1.UnimplementedShippingServiceServer
}

// CreateShipment echoes the idempotency key it received as the tracking
// number, so tests can see what the kit filled in.
func (exampleShipping) CreateShipment(_ context.Context, req *shippingv1.CreateShipmentRequest) (*shippingv1.CreateShipmentResponse, error) {
	return &shippingv1.CreateShipmentResponse{Shipment: &shippingv1.Shipment{TrackingNumber: req.GetIdempotencyKey()}}, nil
}

// WatchShipments sends one event; with resume_cursor "revoke" the consent
// then ends the stream, as events/stream does on a revocation; with "hold"
// it stays open, as a live stream does.
func (exampleShipping) WatchShipments(req *shippingv1.WatchShipmentsRequest, stream grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	if err := stream.Send(&shippingv1.WatchShipmentsResponse{Cursor: "c1"}); err != nil {
		return err
	}
	switch req.GetResumeCursor() {
	case "revoke":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the user revoked the consent")
	case "hold": // a live stream: open until the client or the server ends it
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	return nil
}

// recorder is a consent checker and access-log recorder that remembers
// what it saw.
type recorder struct {
	mu        sync.Mutex
	refuse    error
	recordErr error
	checked   []checked
	entries   []access.Entry
	reported  []string
}

type checked struct {
	user    string
	need    access.Need
	purpose commonv1.Purpose
}

func (r *recorder) Decide(_ context.Context, user string, need access.Need, purpose commonv1.Purpose) (access.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = append(r.checked, checked{user: user, need: need, purpose: purpose})
	if r.refuse != nil {
		return access.Decision{}, r.refuse
	}
	return access.Decision{Link: "users/" + user + "/links/l1", BankConsentID: "bc-1"}, nil
}

func (r *recorder) ReportBankRevocation(_ context.Context, link string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reported = append(r.reported, link)
	return nil
}

func (r *recorder) Record(_ context.Context, e access.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recordErr != nil {
		return r.recordErr
	}
	r.entries = append(r.entries, e)
	return nil
}

func (r *recorder) set(f func(r *recorder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *recorder) recorded() []access.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]access.Entry(nil), r.entries...)
}

// knownBanks is the set of banks the example serves.
type knownBanks map[string]bool

func (k knownBanks) HasBank(id string) bool { return k[id] }

const (
	testIssuer   = servertest.Issuer
	testAudience = servertest.Audience
	testClient   = servertest.Client
)

type example struct {
	srv      *server.Server
	conn     *grpc.ClientConn
	balance  balancev1.BalanceServiceClient
	shipping shippingv1.ShippingServiceClient
	issuer   *auth.DevIssuer
	spans    *sdktrace.InMemoryExporter
	logs     *testkit.SyncBuffer
	hooks    *recorder
	tel      *telemetry.Telemetry
	verifier *auth.Verifier
	stop     context.CancelFunc
	done     chan error
}

type exampleOpts struct {
	drainDelay time.Duration
	// quiet exports no spans and discards logs, as a production process
	// without a collector would; benchmarks use it.
	quiet bool
	// loadLimits sets every rate limit far above what a benchmark sends
	// as one user (the limiter still runs).
	loadLimits bool
	// reflection turns gRPC reflection on (--reflection).
	reflection bool
	// config edits the server's config last.
	config func(*server.Config)
}

func startExample(t testing.TB, o exampleOpts) *example {
	t.Helper()
	spans := sdktrace.NewInMemoryExporter()
	logs := &testkit.SyncBuffer{}
	tcfg := telemetry.Config{SpanExporter: spans, SyncExport: true, LogOutput: logs}
	if o.quiet {
		tcfg.SpanExporter, tcfg.LogOutput = nil, io.Discard
	}
	hooks := &recorder{}
	s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks, Banks: knownBanks{"sandbox": true}},
		func(r grpc.ServiceRegistrar) {
			balancev1.RegisterBalanceServiceServer(r, exampleBalance{})
			shippingv1.RegisterShippingServiceServer(r, exampleShipping{})
		},
		servertest.Options{Name: "example", Telemetry: tcfg, Config: func(c *server.Config) {
			c.DrainDelay = o.drainDelay
			c.Reflection = o.reflection
			if o.config != nil {
				defer o.config(c)
			}
			if o.loadLimits {
				for _, b := range limits.Buckets() {
					setRate(&c.Limits, b, loose)
				}
			}
		}})
	return &example{
		srv: s.Server, conn: s.Conn, issuer: s.Issuer, spans: spans, logs: logs, hooks: hooks,
		tel: s.Telemetry, verifier: s.Verifier, stop: s.Stop, done: s.Done,
		balance:  balancev1.NewBalanceServiceClient(s.Conn),
		shipping: shippingv1.NewShippingServiceClient(s.Conn),
	}
}

// as returns a context for calls by user, with a fresh token and the
// purpose ACCOUNT_INFORMATION.
func (e *example) as(t testing.TB, user string) context.Context {
	return e.asFor(t, user, "ACCOUNT_INFORMATION")
}

// asFor is as with another purpose; "" declares none.
func (e *example) asFor(t testing.TB, user, purpose string) context.Context {
	t.Helper()
	tok, err := e.issuer.Mint(user, testClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return withPurpose(withToken(context.Background(), tok), purpose)
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func withPurpose(ctx context.Context, purpose string) context.Context {
	if purpose == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "bankbridge-purpose", purpose)
}

func getAccount(name string) *balancev1.GetAccountRequest {
	return &balancev1.GetAccountRequest{Name: name}
}
