package server_test

// Partner methods (AUDIENCE_PARTNER): a partner (payment provider, merchant,
// carrier) pushes data with its own client-credentials token, under
// clients/{client}, and can call nothing else. Served here through the
// real chain with the real PartnerReceiptsService contract next to a
// public, a client and an internal service, so that a partner's token is
// tried on each.

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// otherPartner is a second configured partner, whose clients/ a partner
// must not name either.
const otherPartner = "other-partner"

type examplePartnerReceipts struct {
	receiptsv1.UnimplementedPartnerReceiptsServiceServer
}

// IngestReceipt answers with the receipt id and the idempotency key it
// received, and fails loudly if the kit made it a grant (partners read no
// user's data) or let through a caller other than the partner the parent
// names.
func (examplePartnerReceipts) IngestReceipt(ctx context.Context, req *receiptsv1.IngestReceiptRequest) (*receiptsv1.IngestReceiptResponse, error) {
	if _, ok := access.LookupGrant(ctx); ok {
		return nil, status.Error(codes.FailedPrecondition, "a partner call got a user grant")
	}
	p, _ := auth.PrincipalFrom(ctx)
	if client, _ := names.ClientOf(req.GetParent()); !p.ClientCredentials() || p.Client != client {
		return nil, status.Error(codes.FailedPrecondition, "the handler was reached by "+p.Client+" for "+req.GetParent())
	}
	return &receiptsv1.IngestReceiptResponse{ReceiptId: req.GetReceiptId() + "|" + req.GetIdempotencyKey(), Version: 1, CreateTime: timestamppb.Now()}, nil
}

type exampleConsentCheck struct {
	consentv1.UnimplementedConsentCheckServiceServer
}

type partnerExample struct {
	srv      *servertest.Server
	partner  receiptsv1.PartnerReceiptsServiceClient
	balance  balancev1.BalanceServiceClient
	shipping shippingv1.ShippingServiceClient
	webhooks webhooksv1.WebhooksServiceClient
	internal consentv1.ConsentCheckServiceClient
	hooks    *recorder
	logs     *testkit.SyncBuffer
}

// startPartnerExample serves a partner, a public, a client and an internal
// service in one server. The partner is also given purposes, as a
// misconfiguration might, to show that they do not let it read.
func startPartnerExample(t *testing.T) *partnerExample {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	hooks := &recorder{}
	s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks, Banks: knownBanks{"sandbox": true}},
		func(r grpc.ServiceRegistrar) {
			receiptsv1.RegisterPartnerReceiptsServiceServer(r, examplePartnerReceipts{})
			balancev1.RegisterBalanceServiceServer(r, exampleBalance{})
			shippingv1.RegisterShippingServiceServer(r, exampleShipping{})
			webhooksv1.RegisterWebhooksServiceServer(r, exampleWebhooks{})
			consentv1.RegisterConsentCheckServiceServer(r, exampleConsentCheck{})
		},
		servertest.Options{Name: "partner", Telemetry: telemetry.Config{LogOutput: logs}, Config: func(c *server.Config) {
			c.PartnerClients += "," + otherPartner
			c.ClientPurposes += ";" + servertest.Partner + "=ACCOUNT_INFORMATION,ORDER_TRACKING"
			c.InternalClients = "consent"
		}})
	return &partnerExample{
		srv: s, hooks: hooks, logs: logs,
		partner:  receiptsv1.NewPartnerReceiptsServiceClient(s.Conn),
		balance:  balancev1.NewBalanceServiceClient(s.Conn),
		shipping: shippingv1.NewShippingServiceClient(s.Conn),
		webhooks: webhooksv1.NewWebhooksServiceClient(s.Conn),
		internal: consentv1.NewConsentCheckServiceClient(s.Conn),
	}
}

// token mints a token for sub acting through client, with a purpose
// declared; sub == client is a client-credentials token.
func (e *partnerExample) token(t *testing.T, sub, client string) context.Context {
	t.Helper()
	tok, err := e.srv.Issuer.Mint(sub, client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return withPurpose(withToken(context.Background(), tok), "ACCOUNT_INFORMATION")
}

// ingest is a valid IngestReceiptRequest under parent.
func ingest(parent, idempotencyKey string) *receiptsv1.IngestReceiptRequest {
	return &receiptsv1.IngestReceiptRequest{
		Parent:         parent,
		PartnerUserId:  "pu_12345678",
		ReceiptId:      "order-1001",
		IdempotencyKey: idempotencyKey,
		Receipt: &receiptsv1.Receipt{
			MerchantName: "Nordic Outdoor",
			Summary:      &receiptsv1.Summary{TotalCost: &commonv1.Money{CurrencyCode: "EUR", Units: 42}},
			PurchaseTime: timestamppb.New(time.Now().Add(-time.Hour)),
		},
	}
}

func TestPartnerMethodsTakeOnlyTheirPartnersOwnToken(t *testing.T) {
	t.Parallel()
	e := startPartnerExample(t)
	own := names.Client(servertest.Partner)
	tests := []struct {
		name   string
		ctx    context.Context
		req    *receiptsv1.IngestReceiptRequest
		reason commonv1.ErrorReason // UNSPECIFIED: served
		field  string               // for INVALID_ARGUMENT, the field named
	}{
		{"the partner's own token, no purpose needed", e.token(t, servertest.Partner, servertest.Partner), ingest(own, "key-0001"), 0, ""},
		{"a client-credentials token of a client that is no partner", e.token(t, servertest.Client, servertest.Client), ingest(names.Client(servertest.Client), "key-0002"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a user's token through the partner", e.token(t, "alice", servertest.Partner), ingest(own, "key-0003"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a user named like the partner, through another client", e.token(t, servertest.Partner, servertest.Client), ingest(own, "key-0004"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"another partner's parent", e.token(t, servertest.Partner, servertest.Partner), ingest(names.Client(otherPartner), "key-0005"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a prefix of the partner is another client", e.token(t, servertest.Partner, servertest.Partner), ingest(own+"-2", "key-0006"), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"no token", context.Background(), ingest(own, "key-0007"), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"a user's name instead of a client's", e.token(t, servertest.Partner, servertest.Partner), ingest("users/"+servertest.Partner, "key-0008"), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "parent"},
		{"no idempotency key", e.token(t, servertest.Partner, servertest.Partner), ingest(own, ""), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.partner.IngestReceipt(tt.ctx, tt.req)
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if err != nil || resp.GetReceiptId() != tt.req.GetReceiptId()+"|"+tt.req.GetIdempotencyKey() {
					t.Fatalf("IngestReceipt = %v, %v; want it served", resp, err)
				}
				return
			}
			md := testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED && md["client_id"] == "" {
				t.Errorf("ErrorInfo metadata %v does not name the client", md)
			}
		})
	}
	t.Run("the Idempotency-Key header fills the key", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(e.token(t, servertest.Partner, servertest.Partner), server.IdempotencyKeyHeader, "key-from-header")
		resp, err := e.partner.IngestReceipt(ctx, ingest(own, ""))
		if err != nil || resp.GetReceiptId() != "order-1001|key-from-header" {
			t.Fatalf("IngestReceipt = %v, %v; want it served with the header's key", resp, err)
		}
	})
	// Partner calls read no user's data: nothing was asked of the consent
	// checker nor written to a user's access log. Refusals went to the
	// security log, naming the client but nothing of the request.
	e.hooks.mu.Lock()
	checked, entries := len(e.hooks.checked), len(e.hooks.entries)
	e.hooks.mu.Unlock()
	if checked != 0 || entries != 0 {
		t.Errorf("partner calls asked %d consent decisions and wrote %d access-log entries, want none", checked, entries)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"bankbridge.log_type":"security","rpc.method":"/bankbridge.receipts.v1.PartnerReceiptsService/IngestReceipt","bankbridge.reason":"CLIENT_NOT_ALLOWED"`) {
		t.Errorf("no security log line for the partner refusals in:\n%s", logs)
	}
	if strings.Contains(logs, "pu_12345678") || strings.Contains(logs, "order-1001") {
		t.Errorf("the logs quote the request:\n%s", logs)
	}
}

// Partners write, never read: a partner's token, its own or a user's
// through it, is refused by every method that is not a partner method,
// even one the partner would otherwise pass (a client method under its own
// clients/, a public method for the user it names with purposes the
// client is configured for).
func TestAPartnersTokenIsRefusedByEveryOtherMethod(t *testing.T) {
	t.Parallel()
	e := startPartnerExample(t)
	partner := e.token(t, servertest.Partner, servertest.Partner)
	partnersUser := e.token(t, "alice", servertest.Partner)
	tests := []struct {
		name string
		call func() error
	}{
		{"public unary, the partner's token", func() error {
			_, err := e.balance.GetAccount(partner, getAccount("users/"+servertest.Partner+"/accounts/sandbox~a1"))
			return err
		}},
		{"public unary, a user's token through the partner", func() error {
			_, err := e.balance.GetAccount(partnersUser, getAccount("users/alice/accounts/sandbox~a1"))
			return err
		}},
		{"public stream", func() error {
			stream, err := e.shipping.WatchShipments(withPurpose(partnersUser, "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
		{"client method under the partner's own clients/", func() error {
			_, err := e.webhooks.GetEndpoint(partner, &webhooksv1.GetEndpointRequest{Name: names.Client(servertest.Partner) + "/endpoints/ep1"})
			return err
		}},
		{"internal method", func() error {
			_, err := e.internal.CheckConsent(partner, &consentv1.CheckConsentRequest{User: "users/alice",
				Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
			if md["client_id"] != servertest.Partner {
				t.Errorf("ErrorInfo metadata %v, want client_id %s", md, servertest.Partner)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "partner methods only") {
				t.Errorf("message %q: refused for another cause than being a partner", msg)
			}
		})
	}
	t.Run("the same calls by the product's client pass", func(t *testing.T) {
		if _, err := e.balance.GetAccount(e.token(t, "alice", servertest.Client), getAccount("users/alice/accounts/sandbox~a1")); err != nil {
			t.Errorf("GetAccount by the product: %v", err)
		}
		cc := e.token(t, servertest.Client, servertest.Client)
		if _, err := e.webhooks.GetEndpoint(cc, &webhooksv1.GetEndpointRequest{Name: names.Client(servertest.Client) + "/endpoints/ep1"}); err != nil {
			t.Errorf("GetEndpoint by the product: %v", err)
		}
	})
	// The refusals reached no user's access log: only the product's call did.
	for _, entry := range e.hooks.recorded() {
		if entry.ClientID == servertest.Partner {
			t.Errorf("a partner's refusal was written to a user's access log: %+v", entry)
		}
	}
	if !strings.Contains(e.logs.String(), `"rpc.method":"/bankbridge.balance.v1.BalanceService/GetAccount","bankbridge.reason":"CLIENT_NOT_ALLOWED","bankbridge.client_id":"test-partner"`) {
		t.Errorf("no security log line for the partner's refusal in:\n%s", e.logs.String())
	}
	resp, err := http.Get("http://" + e.srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !regexp.MustCompile(`bankbridge_security_refusals_total\{[^}]*bankbridge_reason="CLIENT_NOT_ALLOWED"[^}]*rpc_method="/bankbridge.webhooks.v1.WebhooksService/GetEndpoint"[^}]*\} 1`).Match(body) {
		t.Errorf("the refusal of the client method is not counted in /metrics:\n%s", body)
	}
}

// A partner's token is refused by internal methods, so a client listed as
// both a partner and an internal client is a mistake the server does not
// start with.
func TestAPartnerCannotAlsoBeAnInternalClient(t *testing.T) {
	t.Parallel()
	e := startPartnerExample(t) // for its telemetry and verifier
	cfg := server.Defaults("both", "127.0.0.1:0", "")
	cfg.DevMode = true
	cfg.InternalClients, cfg.PartnerClients = "consent, billing", "billing"
	_, err := server.New(cfg, server.Deps{Telemetry: e.srv.Telemetry, Verifier: e.srv.Verifier}, func(r grpc.ServiceRegistrar) {
		receiptsv1.RegisterPartnerReceiptsServiceServer(r, examplePartnerReceipts{})
	})
	if err == nil || !strings.Contains(err.Error(), "client billing is configured as both an internal client and a partner") {
		t.Fatalf("New = %v, want a refusal naming the client", err)
	}
}

// A service that serves only partner methods needs no consent checker and
// no access-log recorder: partner methods declare no access rule.
func TestAPartnerOnlyServiceStartsWithoutConsentOrRecorder(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, server.Deps{}, func(r grpc.ServiceRegistrar) {
		receiptsv1.RegisterPartnerReceiptsServiceServer(r, examplePartnerReceipts{})
	}, servertest.Options{Name: "partner-only"})
	tok, err := s.Issuer.Mint(servertest.Partner, servertest.Partner, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := receiptsv1.NewPartnerReceiptsServiceClient(s.Conn).IngestReceipt(withToken(context.Background(), tok), ingest(names.Client(servertest.Partner), "key-0100"))
	if err != nil || resp.GetVersion() != 1 {
		t.Fatalf("IngestReceipt = %v, %v", resp, err)
	}
}
