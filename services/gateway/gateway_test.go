package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/gen/openapi"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// cannedBalance answers GetBalance for any account of the caller.
type cannedBalance struct {
	balancev1.UnimplementedBalanceServiceServer
}

func (cannedBalance) GetBalance(_ context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	return &balancev1.GetBalanceResponse{Balance: &balancev1.AccountBalance{
		Name: req.GetName(),
		Balances: []*balancev1.Balance{{
			Type:   balancev1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE,
			Amount: &commonv1.Money{CurrencyCode: "EUR", Units: 1234, Nanos: 560000000},
			AsOf:   timestamppb.Now(),
		}},
		AsOf: timestamppb.Now(),
	}}, nil
}

func (cannedBalance) ListAccounts(context.Context, *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	return &balancev1.ListAccountsResponse{}, nil
}

// cannedPartnerReceipts takes any receipt, and answers with its id and
// the idempotency key that reached it.
type cannedPartnerReceipts struct {
	receiptsv1.UnimplementedPartnerReceiptsServiceServer
}

func (cannedPartnerReceipts) IngestReceipt(_ context.Context, req *receiptsv1.IngestReceiptRequest) (*receiptsv1.IngestReceiptResponse, error) {
	return &receiptsv1.IngestReceiptResponse{ReceiptId: req.GetReceiptId() + "|" + req.GetIdempotencyKey(), Version: 1, CreateTime: timestamppb.Now()}, nil
}

// consentAndLog allows every consent and keeps no access log: the gateway's
// tests are about HTTP, the kit's own tests about consent and audit.
type consentAndLog struct{}

func (consentAndLog) Decide(context.Context, string, access.Need, commonv1.Purpose) (access.Decision, error) {
	return access.Decision{Link: "users/alice/links/l1", BankConsentID: "c1"}, nil
}
func (consentAndLog) ReportBankRevocation(context.Context, string) error { return nil }
func (consentAndLog) Record(context.Context, access.Entry) error         { return nil }
func (consentAndLog) HasBank(id string) bool                             { return id == "sandbox" }

type fixture struct {
	url    string
	issuer *auth.DevIssuer
	stopBE context.CancelFunc
	beDone chan error
}

// Dev clients of the fixture's /oauth/token.
const (
	devPartner       = "demo-partner"
	devPartnerSecret = "dev-partner-secret"
	devService       = "balance"
	devServiceSecret = "dev-service-secret"
)

// start runs a real backend through the server kit, serving balance and
// partner receipts, and the gateway in front of it, in dev mode so the
// gateway is the token issuer.
func start(t *testing.T, devMode bool) *fixture {
	t.Helper()
	return startLogged(t, devMode, io.Discard)
}

// startLogged is start with the gateway's and the backend's log lines
// (JSON) going to logs.
func startLogged(t *testing.T, devMode bool, logs io.Writer) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway-test", LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewDevIssuer(true, "https://dev.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(issuer.JWKSHandler())
	t.Cleanup(jwks.Close)
	verifier, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://dev.test", Audience: "bankbridge", JWKSURL: jwks.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults("balance", "127.0.0.1:0", "")
	cfg.DevMode, cfg.DrainDelay = true, 0
	cfg.ClientPurposes = "dev-client=ACCOUNT_INFORMATION"
	cfg.PartnerClients = devPartner
	beCtx, stopBE := context.WithCancel(ctx)
	srv, err := server.New(cfg, server.Deps{Telemetry: tel, Verifier: verifier, Consent: consentAndLog{}, Recorder: consentAndLog{}, Banks: consentAndLog{}}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, cannedBalance{})
		receiptsv1.RegisterPartnerReceiptsServiceServer(r, cannedPartnerReceipts{})
	})
	if err != nil {
		t.Fatal(err)
	}
	beDone := make(chan error, 1)
	go func() { beDone <- srv.Serve(beCtx) }()

	gcfg := Config{Backends: map[string]string{"balance": srv.GRPCAddr(), "receipts": srv.GRPCAddr()}, MaxBodyBytes: 1024, RequestTimeout: 5 * time.Second,
		DevClient: "dev-client", DevServiceClients: devService, DevServiceSecret: devServiceSecret,
		DevPartnerClients: devPartner, DevPartnerSecret: devPartnerSecret, DevOperatorClient: "dev-oncall"}
	var gwIssuer *auth.DevIssuer
	if devMode {
		gwIssuer = issuer
	}
	g, err := New(ctx, gcfg, tel, gwIssuer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	return &fixture{url: hs.URL, issuer: issuer, stopBE: stopBE, beDone: beDone}
}

func (f *fixture) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := f.issuer.Mint(user, "dev-client", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func do(t *testing.T, method, url, token, purpose string, body []byte) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set("Bankbridge-Purpose", purpose)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

// reason digs ErrorInfo.reason out of a JSON google.rpc.Status.
func reason(body map[string]any) string {
	details, _ := body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

func TestRESTCallsPassTheWholeChain(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	alice := f.token(t, "alice")
	balanceURL := f.url + "/v1/users/alice/accounts/sandbox~a1/balance"
	tests := []struct {
		name, url, token, purpose string
		status                    int
		reason                    string
	}{
		{"ok", balanceURL, alice, "ACCOUNT_INFORMATION", http.StatusOK, ""},
		{"no token", balanceURL, "", "ACCOUNT_INFORMATION", http.StatusUnauthorized, "TOKEN_INVALID"},
		{"another user's path", balanceURL, f.token(t, "bob"), "ACCOUNT_INFORMATION", http.StatusForbidden, "USER_MISMATCH"},
		{"advertising", balanceURL, alice, "ADVERTISING", http.StatusForbidden, "PURPOSE_NOT_ALLOWED"},
		{"no purpose", balanceURL, alice, "", http.StatusBadRequest, "INVALID_ARGUMENT"},
		{"bad page size", f.url + "/v1/users/alice/accounts?page_size=1000", alice, "ACCOUNT_INFORMATION", http.StatusBadRequest, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, tt.url, tt.token, tt.purpose, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %v", resp.StatusCode, tt.status, body)
			}
			if got := reason(body); got != tt.reason {
				t.Errorf("reason = %q, want %q; body %v", got, tt.reason, body)
			}
			if len(resp.Header.Get("X-Trace-Id")) != 32 {
				t.Errorf("X-Trace-Id = %q", resp.Header.Get("X-Trace-Id"))
			}
		})
	}
	t.Run("field path of a bad page size", func(t *testing.T) {
		_, body := do(t, http.MethodGet, f.url+"/v1/users/alice/accounts?page_size=1000", alice, "ACCOUNT_INFORMATION", nil)
		if !strings.Contains(mustJSON(body), `"field":"page_size"`) {
			t.Errorf("no field violation on page_size in %s", mustJSON(body))
		}
	})
	t.Run("money on the wire", func(t *testing.T) {
		_, body := do(t, http.MethodGet, balanceURL, alice, "ACCOUNT_INFORMATION", nil)
		if !strings.Contains(mustJSON(body), `"amount":{"currency_code":"EUR","nanos":560000000,"units":"1234"}`) {
			t.Errorf("balance JSON = %s", mustJSON(body))
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEdges(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	t.Run("trace id on a 404", func(t *testing.T) {
		resp, _ := do(t, http.MethodGet, f.url+"/v1/nothing/here", "", "", nil)
		if resp.StatusCode != http.StatusNotFound || len(resp.Header.Get("X-Trace-Id")) != 32 {
			t.Errorf("status %d, X-Trace-Id %q", resp.StatusCode, resp.Header.Get("X-Trace-Id"))
		}
	})
	t.Run("body limit", func(t *testing.T) {
		big := []byte(`{"code":"` + strings.Repeat("1", 4096) + `"}`)
		resp, _ := do(t, http.MethodPost, f.url+"/v1/users/alice/links/l1:verify", f.token(t, "alice"), "CONSENT_MANAGEMENT", big)
		if resp.StatusCode < 400 {
			t.Errorf("a body over the limit got %d", resp.StatusCode)
		}
	})
	t.Run("openapi", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, f.url+"/openapi.json", "", "", nil)
		if resp.StatusCode != http.StatusOK || body["swagger"] != "2.0" {
			t.Errorf("status %d, swagger %v", resp.StatusCode, body["swagger"])
		}
	})
	t.Run("dev token", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, f.url+"/v1/dev/tokens", "", "", []byte(`{"user":"alice"}`))
		tok, _ := body["access_token"].(string)
		if resp.StatusCode != http.StatusOK || tok == "" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		resp, _ = do(t, http.MethodGet, f.url+"/v1/users/alice/accounts/sandbox~a1/balance", tok, "ACCOUNT_INFORMATION", nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a minted dev token got %d", resp.StatusCode)
		}
	})
	t.Run("healthz reflects the backend", func(t *testing.T) {
		if resp, _ := do(t, http.MethodGet, f.url+"/healthz", "", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz %d with the backend up", resp.StatusCode)
		}
		f.stopBE()
		<-f.beDone
		resp, body := do(t, http.MethodGet, f.url+"/healthz", "", "", nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("healthz %d with the backend down; body %v", resp.StatusCode, body)
		}
	})
}

func TestDevTokensAreNotFoundOutsideDevMode(t *testing.T) {
	t.Parallel()
	f := start(t, false)
	resp, _ := do(t, http.MethodPost, f.url+"/v1/dev/tokens", "", "", []byte(`{"user":"alice"}`))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/dev/tokens outside dev mode = %d, want 404", resp.StatusCode)
	}
	if resp, _ := oauthToken(t, f.url, devPartner, devPartnerSecret); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /oauth/token outside dev mode = %d, want 404", resp.StatusCode)
	}
}

// oauthToken asks the dev /oauth/token endpoint for a client-credentials
// token, as a partner's quick start does with curl -u id:secret.
func oauthToken(t *testing.T, base, id, secret string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// In dev mode the gateway's /oauth/token also serves the dev partners,
// with their own secret, and the token it gives a partner pushes over
// REST and reads nothing.
func TestDevPartnerTokens(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	tests := []struct {
		name, id, secret string
		status           int
	}{
		{"a partner with its secret", devPartner, devPartnerSecret, http.StatusOK},
		{"a partner with a wrong secret", devPartner, "guess", http.StatusUnauthorized},
		{"a partner with the services' secret", devPartner, devServiceSecret, http.StatusUnauthorized},
		{"a service with the partners' secret", devService, devPartnerSecret, http.StatusUnauthorized},
		{"a service with its secret", devService, devServiceSecret, http.StatusOK},
		{"an unknown client with the partners' secret", "other-partner", devPartnerSecret, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := oauthToken(t, f.url, tt.id, tt.secret)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %v", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				if body["error"] != "invalid_client" || body["access_token"] != nil {
					t.Errorf("body = %v, want error invalid_client and no token", body)
				}
				return
			}
			if tok, _ := body["access_token"].(string); tok == "" || body["token_type"] != "Bearer" {
				t.Errorf("body = %v, want a Bearer access_token", body)
			}
		})
	}

	_, body := oauthToken(t, f.url, devPartner, devPartnerSecret)
	partner, _ := body["access_token"].(string)
	ingest := func(client string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/clients/"+client+"/receipts:ingest", strings.NewReader(`{
			"partner_user_id": "pu_12345678", "receipt_id": "order-1001",
			"receipt": {"merchant_name": "Nordic Outdoor", "summary": {"total_cost": {"currency_code": "EUR", "units": "42"}},
				"purchase_time": "2025-01-02T03:04:05Z"}}`))
		req.Header.Set("Authorization", "Bearer "+partner)
		req.Header.Set("Idempotency-Key", "key-0001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	t.Run("the partner's token pushes a receipt over REST", func(t *testing.T) {
		resp, body := ingest(devPartner)
		if resp.StatusCode != http.StatusOK || body["receipt_id"] != "order-1001|key-0001" {
			t.Errorf("status %d body %v; want 200 with the receipt id and the Idempotency-Key that reached the service", resp.StatusCode, body)
		}
	})
	t.Run("under another client's name", func(t *testing.T) {
		resp, body := ingest("other-partner")
		if resp.StatusCode != http.StatusForbidden || reason(body) != "CLIENT_NOT_ALLOWED" {
			t.Errorf("status %d reason %q, want 403 CLIENT_NOT_ALLOWED; body %v", resp.StatusCode, reason(body), body)
		}
	})
	t.Run("the partner's token reads nothing", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, f.url+"/v1/users/"+devPartner+"/accounts/sandbox~a1/balance", partner, "ACCOUNT_INFORMATION", nil)
		if resp.StatusCode != http.StatusForbidden || reason(body) != "CLIENT_NOT_ALLOWED" {
			t.Errorf("status %d reason %q, want 403 CLIENT_NOT_ALLOWED; body %v", resp.StatusCode, reason(body), body)
		}
	})
}

func TestDevClientMistakesStopTheStart(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewDevIssuer(true, "https://dev.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"a client in both lists", Config{DevServiceClients: "balance, receipts", DevServiceSecret: "s1", DevPartnerClients: "receipts", DevPartnerSecret: "s2"},
			"dev client receipts is both a service and a partner"},
		{"partners without a secret", Config{DevServiceClients: "balance", DevServiceSecret: "s1", DevPartnerClients: "demo-partner"},
			"dev client demo-partner has no secret: set --dev-partner-secret"},
		{"services without a secret", Config{DevServiceClients: "balance"},
			"dev client balance has no secret: set --dev-service-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(t.Context(), tt.cfg, tel, issuer)
			if err == nil {
				g.Close()
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("New = %v, want %q", err, tt.want)
			}
		})
	}
}

// violations lists "field reason" of the BadRequest in a JSON google.rpc.Status.
func violations(body map[string]any) []string {
	var out []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		vs, _ := m["field_violations"].([]any)
		for _, v := range vs {
			fv, _ := v.(map[string]any)
			out = append(out, fmt.Sprint(fv["field"], " ", fv["reason"]))
		}
	}
	return out
}

func TestUnknownQueryParametersAreRefused(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	alice := f.token(t, "alice")
	accounts := f.url + "/v1/users/alice/accounts"
	tests := []struct {
		name, url string
		status    int
		// violations are "field reason" of the BadRequest, in order.
		violations []string
	}{
		{"misspelt page_size", accounts + "?page_sise=2", http.StatusBadRequest, []string{"page_sise query_parameter.unknown"}},
		{"page_size", accounts + "?page_size=2", http.StatusOK, nil},
		{"every field by its JSON name", accounts + "?pageSize=2&pageToken=&bankId=sandbox", http.StatusOK, nil},
		{"every unknown one is named", accounts + "?zeta=1&page_size=2&alpha=2", http.StatusBadRequest, []string{"alpha query_parameter.unknown", "zeta query_parameter.unknown"}},
		// grpc-gateway would drop it silently; refusing it keeps another
		// user's name out of a call that could look like it read theirs.
		{"path-bound field as a query parameter", accounts + "?parent=users/bob", http.StatusBadRequest, []string{"parent query_parameter.bound_by_path"}},
		{"a path into a scalar", accounts + "?page_size.value=2", http.StatusBadRequest, []string{"page_size.value query_parameter.unknown"}},
		{"a map entry of a field that is no map", accounts + "?bank_id[x]=sandbox", http.StatusBadRequest, []string{"bank_id[x] query_parameter.unknown"}},
		{"out of range page_size", accounts + "?page_size=1000", http.StatusBadRequest, []string{"page_size int32.gte_lte"}},
		{"unknown on a Get", f.url + "/v1/users/alice/accounts/sandbox~a1/balance?verbose=1", http.StatusBadRequest, []string{"verbose query_parameter.unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, http.MethodGet, tt.url, alice, "ACCOUNT_INFORMATION", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %v", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusOK {
				return
			}
			if got := reason(body); got != "INVALID_ARGUMENT" {
				t.Errorf("reason = %q, want INVALID_ARGUMENT; body %v", got, body)
			}
			if got := violations(body); !slices.Equal(got, tt.violations) {
				t.Errorf("field violations = %q, want %q", got, tt.violations)
			}
		})
	}
	t.Run("the error lists what the call takes", func(t *testing.T) {
		_, body := do(t, http.MethodGet, accounts+"?page_sise=2", alice, "ACCOUNT_INFORMATION", nil)
		if msg, _ := body["message"].(string); !strings.Contains(msg, "page_sise") || !strings.Contains(msg, "page_size, page_token, bank_id") {
			t.Errorf("message = %q, want it to name page_sise and list page_size, page_token, bank_id", msg)
		}
	})
}

// TestEveryRouteRefusesUnknownQueryParameters sends an unknown parameter to
// every HTTP binding in the contracts, so that each route the gateway serves
// is indexed (a route it cannot place fails closed with 500).
func TestEveryRouteRefusesUnknownQueryParameters(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	// The refusal comes before any backend is called: these never answer.
	const nowhere = "127.0.0.1:1"
	backends := map[string]string{}
	for _, name := range Backends() {
		backends[name] = nowhere
	}
	g, err := New(ctx, Config{Backends: backends}, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)

	tested := map[string]bool{}
	for _, b := range g.backends {
		for _, svc := range b.services {
			for _, binding := range httpBindings(t, svc.name) {
				method, template := httpBinding(binding)
				tested[method+" "+template] = true
				t.Run(method+" "+template, func(t *testing.T) {
					resp, body := do(t, method, hs.URL+samplePath(template)+"?zz_unknown=1", "", "", []byte("{}"))
					if resp.StatusCode != http.StatusBadRequest || !slices.Equal(violations(body), []string{"zz_unknown query_parameter.unknown"}) {
						t.Errorf("status %d, field violations %q; want 400 naming zz_unknown; body %v", resp.StatusCode, violations(body), body)
					}
				})
			}
		}
	}
	if len(tested) < 30 {
		t.Errorf("only %d HTTP bindings found; the contracts have more", len(tested))
	}
	// Client and partner routes live under clients/: the partner's push
	// is routed, and indexed, like any other.
	for _, want := range []string{"POST /v1/{parent=clients/*}/receipts:ingest", "GET /v1/{parent=clients/*}/endpoints"} {
		if !tested[want] {
			t.Errorf("%s is not among the routes the gateway serves", want)
		}
	}
}

// httpBindings returns every HTTP binding of the service's methods.
func httpBindings(t *testing.T, service string) []*annotations.HttpRule {
	t.Helper()
	sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatal(err)
	}
	var out []*annotations.HttpRule
	methods := sd.(protoreflect.ServiceDescriptor).Methods()
	for i := range methods.Len() {
		if rule, _ := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule); rule != nil {
			out = append(out, append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...)...)
		}
	}
	return out
}

// TestTheOpenAPIDocumentHasEveryRoute holds the served /openapi.json to
// the routes: every RPC the gateway serves over REST, partner pushes
// included, is an operation of the document with its HTTP method.
func TestTheOpenAPIDocumentHasEveryRoute(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, methods := range doc.Paths {
		for verb, op := range methods {
			ops[strings.ToUpper(verb)+" "+op.OperationID] = true
		}
	}
	for _, r := range routes {
		for _, svc := range r.services {
			sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.name))
			if err != nil {
				t.Fatal(err)
			}
			methods := sd.(protoreflect.ServiceDescriptor).Methods()
			for i := range methods.Len() {
				m := methods.Get(i)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				verb, _ := httpBinding(rule)
				if op := verb + " " + string(sd.Name()) + "_" + string(m.Name()); !ops[op] {
					t.Errorf("the OpenAPI document has no operation %s", op)
				}
			}
		}
	}
	if !ops["POST PartnerReceiptsService_IngestReceipt"] {
		t.Error("the OpenAPI document lacks the partner push")
	}
}

// samplePath fills a path template's variables with ids:
// /v1/{parent=users/*}/accounts becomes /v1/users/x/accounts.
func samplePath(template string) string {
	return regexp.MustCompile(`\{[^=}]+(=([^}]*))?\}`).ReplaceAllStringFunc(template, func(v string) string {
		_, tmpl, ok := strings.Cut(strings.Trim(v, "{}"), "=")
		if !ok {
			tmpl = "*"
		}
		return strings.NewReplacer("**", "x/y", "*", "x").Replace(tmpl)
	})
}

// TestCanonicalTemplate holds the route index's spelling of a template to
// the one the mux prints for the pattern it compiled from it.
func TestCanonicalTemplate(t *testing.T) {
	t.Parallel()
	for _, template := range []string{
		"/v1/{parent=users/*}/accounts",
		"/v1/{name=users/*/accounts/*/balance}",
		"/v1/{parent=users/*/accounts/*}/transactions:sync",
		"/v1/{name}",
		"/v1/things/{thing}/parts/{part=p/*}:do",
		"/v1/{name=files/**}",
	} {
		var got string
		mux := runtime.NewServeMux(runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request, p map[string]string) {
				pat, _ := runtime.HTTPPattern(r.Context())
				got = pat.String()
				next(w, r, p)
			}
		}))
		if err := mux.HandlePath(http.MethodGet, template, func(http.ResponseWriter, *http.Request, map[string]string) {}); err != nil {
			t.Fatalf("%s: %v", template, err)
		}
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, samplePath(template), nil))
		if want := canonicalTemplate(template); got != want {
			t.Errorf("mux prints %q as %q, the index spells it %q", template, got, want)
		}
	}
}

// carrierBackend stands in for the shipping service's public HTTP
// listener: it records what reached it and answers with a canned reply.
type carrierBackend struct {
	mu     sync.Mutex
	got    []*http.Request
	bodies [][]byte
	code   int
	reply  string
}

func (b *carrierBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.got = append(b.got, r)
	b.bodies = append(b.bodies, body)
	code, reply := b.code, b.reply
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Trace-Id", "0123456789abcdef0123456789abcdef")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, reply)
}

func (b *carrierBackend) received() ([]*http.Request, [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got), slices.Clone(b.bodies)
}

// gatewayFor serves a gateway with cfg until the test ends.
func gatewayFor(t *testing.T, cfg Config) string {
	t.Helper()
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(t.Context(), cfg, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// kitBehindGateway serves register's services through the real server kit
// (as the backend named name, configured by config when it is not nil)
// behind a gateway routing every one of backends to it, until the test
// ends; it answers the gateway's URL and the kit's server, whose Issuer
// mints the callers' tokens.
func kitBehindGateway(t *testing.T, name string, backends []string, config func(*server.Config), register func(grpc.ServiceRegistrar)) (string, *servertest.Server) {
	t.Helper()
	srv := servertest.Start(t, server.Deps{Consent: consentAndLog{}, Recorder: consentAndLog{}, Banks: consentAndLog{}}, register,
		servertest.Options{Name: name, Config: config})
	routes := make(map[string]string, len(backends))
	for _, b := range backends {
		routes[b] = srv.GRPCAddr()
	}
	g, err := New(context.Background(), Config{Backends: routes, RequestTimeout: 5 * time.Second}, srv.Telemetry, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, srv
}

// TestCarrierPushesPassThrough: a carrier's signed push reaches the
// shipping service's HTTP listener byte for byte, the signature headers
// untouched, in the caller's trace, and nothing else the caller sent.
func TestCarrierPushesPassThrough(t *testing.T) {
	t.Parallel()
	be := &carrierBackend{code: http.StatusOK, reply: `{"recorded_count":1}`}
	backend := httptest.NewServer(be)
	t.Cleanup(backend.Close)
	gw := gatewayFor(t, Config{ShippingHTTPAddr: strings.TrimPrefix(backend.URL, "http://"), MaxBodyBytes: 1024, RequestTimeout: 5 * time.Second})

	// Odd spacing and key order: the signature covers these exact bytes.
	body := []byte("{ \"events\" :[{\"tracking_number\":\"1Z999AA10123456784\",\t\"event_id\":\"e1\"}] }\n")
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	push := func(t *testing.T, path string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
		req.Header.Set("webhook-timestamp", "1774521600")
		req.Header.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,bm9wZQ==")
		req.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
		req.Header.Set("Authorization", "Bearer someone-elses-token")
		req.Header.Set("Cookie", "session=abc")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp, raw
	}

	resp, raw := push(t, "/v1/carriers/sandbox/trackingEvents", body)
	if resp.StatusCode != http.StatusOK || string(raw) != `{"recorded_count":1}` {
		t.Fatalf("status %d, body %s; want the backend's 200 and body", resp.StatusCode, raw)
	}
	if got := resp.Header.Values("X-Trace-Id"); len(got) != 1 || got[0] != callerTrace {
		t.Errorf("X-Trace-Id = %q, want the caller's trace id once", got)
	}
	reqs, bodies := be.received()
	if len(reqs) != 1 {
		t.Fatalf("the backend got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.URL.Path != "/v1/carriers/sandbox/trackingEvents" {
		t.Errorf("backend got %s %s", r.Method, r.URL.Path)
	}
	if !bytes.Equal(bodies[0], body) {
		t.Errorf("backend got body %q, want %q", bodies[0], body)
	}
	for k, want := range map[string]string{
		"Webhook-Id":        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		"Webhook-Timestamp": "1774521600",
		"Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,bm9wZQ==",
		"Content-Type":      "application/json",
	} {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("backend got %s = %q, want %q", k, got, want)
		}
	}
	if tp := r.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+callerTrace+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("backend got traceparent %q, want the caller's trace under the gateway's span", tp)
	}
	for _, k := range []string{"Authorization", "Cookie", "X-Forwarded-For"} {
		if v := r.Header.Get(k); v != "" {
			t.Errorf("backend got %s: %q; the gateway passes only what the endpoint reads", k, v)
		}
	}

	t.Run("the backend's refusal passes through", func(t *testing.T) {
		be.mu.Lock()
		be.code, be.reply = http.StatusUnauthorized, `{"code":16,"message":"no"}`
		be.mu.Unlock()
		resp, raw := push(t, "/v1/carriers/sandbox/trackingEvents", body)
		if resp.StatusCode != http.StatusUnauthorized || string(raw) != `{"code":16,"message":"no"}` {
			t.Errorf("status %d, body %s", resp.StatusCode, raw)
		}
	})
	t.Run("a body over the limit", func(t *testing.T) {
		before, _ := be.received()
		resp, raw := push(t, "/v1/carriers/sandbox/trackingEvents", bytes.Repeat([]byte("x"), 2048))
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || reason(body) != "REQUEST_TOO_LARGE" {
			t.Errorf("status %d, body %s; want 413 REQUEST_TOO_LARGE", resp.StatusCode, raw)
		}
		if after, _ := be.received(); len(after) != len(before) {
			t.Error("the oversize push reached the backend")
		}
	})
	t.Run("a chunked body over the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write(bytes.Repeat([]byte("x"), 4096))
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, gw+"/v1/carriers/sandbox/trackingEvents", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			raw, _ := io.ReadAll(resp.Body)
			t.Errorf("status %d, body %s; want 413", resp.StatusCode, raw)
		}
	})
	t.Run("other paths are not the carriers'", func(t *testing.T) {
		if resp, _ := push(t, "/v1/carriers/sandbox/somethingElse", body); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
		// By path, not by count: the chunked oversize push of the case
		// before may still be arriving at the backend, cut short.
		got, _ := be.received()
		for _, r := range got {
			if strings.HasSuffix(r.URL.Path, "/somethingElse") {
				t.Error("another path reached the backend")
			}
		}
	})
}

func TestCarrierPushesWithoutAShippingHTTPAddress(t *testing.T) {
	t.Parallel()
	gw := gatewayFor(t, Config{})
	post := func(path string) (int, string) {
		resp, err := http.Post(gw+path, "application/json", strings.NewReader(`{"events":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	code, body := post("/v1/carriers/sandbox/trackingEvents")
	wantCode, wantBody := post("/v1/nothing/here")
	if code != http.StatusNotFound || code != wantCode || body != wantBody {
		t.Errorf("got %d %s; want the gateway's usual %d %s", code, body, wantCode, wantBody)
	}
}

func TestCarrierPushesWhileShippingIsDown(t *testing.T) {
	t.Parallel()
	gw := gatewayFor(t, Config{ShippingHTTPAddr: "127.0.0.1:1", RequestTimeout: 5 * time.Second})
	resp, err := http.Post(gw+"/v1/carriers/sandbox/trackingEvents", "application/json", strings.NewReader(`{"events":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || body["code"] != float64(14) {
		t.Errorf("status %d, body %v; want 503 UNAVAILABLE", resp.StatusCode, body)
	}
}

func TestShippingHTTPAddrIsHostPort(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{"": true, "127.0.0.1:9305": true, "shipping:9305": true,
		"http://shipping:9305": false, "shipping": false, "shipping:9305/v1": false} {
		c := config{Gateway: Config{ShippingHTTPAddr: addr}}
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("--shipping-http-addr=%q: %v", addr, err)
		}
	}
}

func TestCarrierPushesToASlowShippingService(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() { close(release) })
	gw := gatewayFor(t, Config{ShippingHTTPAddr: strings.TrimPrefix(backend.URL, "http://"), RequestTimeout: 200 * time.Millisecond})
	resp, err := http.Post(gw+"/v1/carriers/sandbox/trackingEvents", "application/json", strings.NewReader(`{"events":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusGatewayTimeout || body["code"] != float64(4) {
		t.Errorf("status %d, body %v; want 504 DEADLINE_EXCEEDED", resp.StatusCode, body)
	}
}
