package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/server"
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

type fixture struct {
	url    string
	issuer *auth.DevIssuer
	stopBE context.CancelFunc
	beDone chan error
}

// start runs a real balance backend through the server kit and the gateway
// in front of it, in dev mode so the gateway is the token issuer.
func start(t *testing.T, devMode bool) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
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
	beCtx, stopBE := context.WithCancel(ctx)
	srv, err := server.New(cfg, server.Deps{Telemetry: tel, Verifier: verifier}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, cannedBalance{})
	})
	if err != nil {
		t.Fatal(err)
	}
	beDone := make(chan error, 1)
	go func() { beDone <- srv.Serve(beCtx) }()

	gcfg := Config{BalanceAddr: srv.GRPCAddr(), MaxBodyBytes: 1024, RequestTimeout: 5 * time.Second, DevClient: "dev-client"}
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
}
