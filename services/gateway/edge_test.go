package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	_ "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1" // every contract, for servertest.ContractServices
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// seenBalance is a balance service that remembers the metadata and the
// baggage each ListAccounts arrived with, and its trace.
type seenBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	mu      sync.Mutex
	md      []metadata.MD
	baggage []baggage.Baggage
	traces  []trace.TraceID
}

func (s *seenBalance) ListAccounts(ctx context.Context, _ *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.md = append(s.md, md)
	s.baggage = append(s.baggage, baggage.FromContext(ctx))
	s.traces = append(s.traces, trace.SpanContextFromContext(ctx).TraceID())
	return &balancev1.ListAccountsResponse{}, nil
}

// edgeFixture is a gateway in front of a service served through the
// server kit (servertest), with the gateway's spans in memory.
type edgeFixture struct {
	url     string
	srv     *servertest.Server
	balance *seenBalance
	spans   *tracetest.InMemoryExporter
}

func startEdge(t *testing.T, cfg Config) *edgeFixture {
	t.Helper()
	consent := consenttest.New(commonv1.Scope_SCOPE_ACCOUNTS)
	consent.AddLink("alice", "sandbox")
	f := &edgeFixture{balance: &seenBalance{}, spans: tracetest.NewInMemoryExporter()}
	f.srv = servertest.Start(t, server.Deps{Consent: consent, Recorder: consent}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, f.balance)
	}, servertest.Options{Name: "balance"})
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard, SpanExporter: f.spans, SyncExport: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cfg.Backends = map[string]string{"balance": f.srv.GRPCAddr()}
	cfg.RequestTimeout = 5 * time.Second
	g, err := New(t.Context(), cfg, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func (f *edgeFixture) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := f.srv.Issuer.Mint(user, servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// send makes a request with headers and answers its status, headers and
// JSON body.
func send(t *testing.T, method, url string, body io.Reader, headers map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for k, v := range headers {
		req.Header.Set(k, v)
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

// TestCallersBaggageStopsAtTheGateway: a REST call with a W3C baggage
// header reaches the service with no baggage, neither in its metadata nor
// in its context, while the caller's trace continues.
func TestCallersBaggageStopsAtTheGateway(t *testing.T) {
	t.Parallel()
	f := startEdge(t, Config{})
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := send(t, http.MethodGet, f.url+"/v1/users/alice/accounts", nil, map[string]string{
		"Authorization":      "Bearer " + f.token(t, "alice"),
		"Bankbridge-Purpose": "ACCOUNT_INFORMATION",
		"Traceparent":        "00-" + callerTrace + "-00f067aa0ba902b7-01",
		"Baggage":            "user.iban=DE89370400440532013000,amount=2387.11;note=x, session=abc",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %v", resp.StatusCode, body)
	}
	f.balance.mu.Lock()
	defer f.balance.mu.Unlock()
	if len(f.balance.md) != 1 {
		t.Fatalf("the service saw %d calls", len(f.balance.md))
	}
	if got := f.balance.md[0].Get("baggage"); len(got) != 0 {
		t.Errorf("the service got baggage metadata %q", got)
	}
	if b := f.balance.baggage[0]; b.Len() != 0 {
		t.Errorf("the service's context carries baggage %q", b.String())
	}
	if got := f.balance.traces[0].String(); got != callerTrace {
		t.Errorf("the service's trace is %s, want the caller's %s", got, callerTrace)
	}
}

// TestTheGatewayNamesSpansByRoute: span names carry the route's template,
// never the path's ids.
func TestTheGatewayNamesSpansByRoute(t *testing.T) {
	t.Parallel()
	f := startEdge(t, Config{})
	send(t, http.MethodGet, f.url+"/v1/users/alice/accounts", nil, map[string]string{
		"Authorization": "Bearer " + f.token(t, "alice"), "Bankbridge-Purpose": "ACCOUNT_INFORMATION"})
	send(t, http.MethodGet, f.url+"/v1/DE89370400440532013000", nil, nil)
	send(t, http.MethodGet, f.url+"/openapi.json", nil, nil)
	var names []string
	for _, s := range f.spans.GetSpans() {
		names = append(names, s.Name)
	}
	got := strings.Join(names, "\n")
	for _, want := range []string{"HTTP GET /v1/{parent=users/*}/accounts", "HTTP GET /openapi.json"} {
		if !strings.Contains(got, want) {
			t.Errorf("no span %q among:\n%s", want, got)
		}
	}
	if strings.Contains(got, "alice") || strings.Contains(got, "DE89") {
		t.Errorf("a span name carries a path's ids:\n%s", got)
	}
}

// TestOversizedRequestsAreRefusedAtTheEdge: over real HTTP, a body over
// the limit is 413 and headers over theirs 431, each the gateway's usual
// JSON google.rpc.Status with reason REQUEST_TOO_LARGE and a trace id, and
// neither reaches the service; what is under the limits passes.
func TestOversizedRequestsAreRefusedAtTheEdge(t *testing.T) {
	t.Parallel()
	f := startEdge(t, Config{MaxBodyBytes: 1024, MaxHeaderBytes: 4096})
	auth := map[string]string{"Authorization": "Bearer " + f.token(t, "alice"), "Bankbridge-Purpose": "ACCOUNT_INFORMATION"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range auth {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	// A POST the balance service does not serve: the edge answers first,
	// or the mux's 501/404 does.
	accounts := f.url + "/v1/users/alice/accounts"
	body := func(n int) io.Reader { return bytes.NewReader(bytes.Repeat([]byte(" "), n)) }
	tests := []struct {
		name    string
		method  string
		url     string
		body    func() io.Reader
		headers map[string]string
		status  int
	}{
		{"headers under the limit", http.MethodGet, accounts, nil, with(map[string]string{"X-Padding": strings.Repeat("a", 2048)}), http.StatusOK},
		{"headers over the limit", http.MethodGet, accounts, nil, with(map[string]string{"X-Padding": strings.Repeat("a", 5000)}), http.StatusRequestHeaderFieldsTooLarge},
		{"many headers over the limit together", http.MethodGet, accounts, nil, with(func() map[string]string {
			m := map[string]string{}
			for i := range 40 {
				m[fmt.Sprintf("X-Padding-%d", i)] = strings.Repeat("a", 100)
			}
			return m
		}()), http.StatusRequestHeaderFieldsTooLarge},
		{"a body over the limit", http.MethodPost, f.url + "/v1/users/alice/links", func() io.Reader { return body(2048) }, with(nil), http.StatusRequestEntityTooLarge},
		{"a chunked body over the limit", http.MethodPost, f.url + "/v1/users/alice/links", func() io.Reader {
			pr, pw := io.Pipe()
			go func() {
				_, _ = pw.Write(bytes.Repeat([]byte(" "), 4096))
				_ = pw.Close()
			}()
			return pr
		}, with(nil), http.StatusRequestEntityTooLarge},
		{"a body over the limit to the token endpoint", http.MethodPost, f.url + "/v1/dev/tokens", func() io.Reader { return body(2048) }, with(nil), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.balance.mu.Lock()
			before := len(f.balance.md)
			f.balance.mu.Unlock()
			var b io.Reader
			if tt.body != nil {
				b = tt.body()
			}
			resp, out := send(t, tt.method, tt.url, b, tt.headers)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, body %v; want %d", resp.StatusCode, out, tt.status)
			}
			if tt.status == http.StatusOK {
				return
			}
			if reason(out) != "REQUEST_TOO_LARGE" || out["code"] != float64(codes.InvalidArgument) || !strings.Contains(fmt.Sprint(out["message"]), "larger than") {
				t.Errorf("body %v; want a google.rpc.Status with reason REQUEST_TOO_LARGE", out)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || len(resp.Header.Get("X-Trace-Id")) != 32 {
				t.Errorf("Content-Type %q, X-Trace-Id %q", ct, resp.Header.Get("X-Trace-Id"))
			}
			f.balance.mu.Lock()
			defer f.balance.mu.Unlock()
			if len(f.balance.md) != before {
				t.Error("the oversized request reached the service")
			}
		})
	}
}

// TestAPartnersTokenReadsNothingOverREST: a partner's own token, on every
// REST route of every contract that is not a partner's, is refused 403
// CLIENT_NOT_ALLOWED; the routes come from the contracts, so a new one is
// tried as soon as it exists.
func TestAPartnersTokenReadsNothingOverREST(t *testing.T) {
	t.Parallel()
	all := servertest.ContractServices(t)
	consent := consenttest.New()
	s := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent},
		func(r grpc.ServiceRegistrar) {
			servertest.RegisterStubs(r, all, status.Error(codes.Aborted, "the stub handler was reached"))
		}, servertest.Options{Name: "every-contract"})
	tel, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]string{}
	for _, name := range Backends() {
		backends[name] = s.GRPCAddr()
	}
	g, err := New(t.Context(), Config{Backends: backends, RequestTimeout: 5 * time.Second}, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)
	partner, err := s.Issuer.Mint(servertest.Partner, servertest.Partner, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	routed := map[string]bool{}
	for _, b := range g.backends {
		for _, svc := range b.services {
			routed[svc.name] = true
		}
	}
	tried := 0
	for _, sd := range all {
		if !routed[string(sd.FullName())] || servertest.AudienceOf(sd) == commonv1.Audience_AUDIENCE_PARTNER {
			continue
		}
		for _, binding := range httpBindings(t, string(sd.FullName())) {
			method, template := httpBinding(binding)
			tried++
			t.Run(method+" "+template, func(t *testing.T) {
				resp, body := send(t, method, hs.URL+samplePath(template), strings.NewReader("{}"), map[string]string{
					"Authorization": "Bearer " + partner, "Bankbridge-Purpose": "ACCOUNT_INFORMATION", "Idempotency-Key": "key-0001"})
				if inner, ok := body["error"].(map[string]any); ok {
					body = inner // a stream's refusal: {"error": status}
				}
				if resp.StatusCode != http.StatusForbidden || reason(body) != "CLIENT_NOT_ALLOWED" {
					t.Errorf("status %d reason %q, want 403 CLIENT_NOT_ALLOWED; body %v", resp.StatusCode, reason(body), body)
				}
			})
		}
	}
	if tried < 30 {
		t.Errorf("only %d REST routes tried; the contracts have more", tried)
	}
}

// TestDevInternalTokensAreForServicesOnly: the dev /oauth/token gives the
// internal audience to bankbridge's services that ask for it, and to
// nobody else.
func TestDevInternalTokensAreForServicesOnly(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	ask := func(id, secret, audience string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/oauth/token", strings.NewReader("grant_type=client_credentials&audience="+audience))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		e, _ := out["error"].(string)
		return resp.StatusCode, e
	}
	if code, e := ask(devService, devServiceSecret, "bankbridge-internal"); code != http.StatusOK {
		t.Errorf("a service asking for the internal audience: %d %s", code, e)
	}
	if code, e := ask(devPartner, devPartnerSecret, "bankbridge-internal"); code != http.StatusBadRequest || e != "invalid_target" {
		t.Errorf("a partner asking for the internal audience: %d %s, want 400 invalid_target", code, e)
	}
}
