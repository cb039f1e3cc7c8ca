package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
)

// TestEveryRefusalCarriesAReason: whatever the gateway refuses — a path no
// route takes (under /v1/ or not, of a service this gateway does not
// route, or a method the path does not take), a body field the request
// has no such field for, a body over the limit — the answer is a JSON
// google.rpc.Status whose ErrorInfo reason a product can branch on.
func TestEveryRefusalCarriesAReason(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	alice := f.token(t, "alice")
	partner := partnerToken(t, f)
	ingest := f.url + "/v1/clients/" + devPartner + "/receipts:ingest"
	tests := []struct {
		name, method, url, token, purpose, body string
		status                                  int
		reason, field                           string
	}{
		{"unknown path outside /v1/", http.MethodGet, f.url + "/nothing", "", "", "", http.StatusNotFound, "NOT_FOUND", ""},
		{"the site root", http.MethodGet, f.url + "/", "", "", "", http.StatusNotFound, "NOT_FOUND", ""},
		{"a service this gateway does not route", http.MethodGet, f.url + "/v1/users/alice/shipments", alice, "ORDER_TRACKING", "", http.StatusNotFound, "NOT_FOUND", ""},
		{"a method the path does not take", http.MethodDelete, f.url + "/v1/users/alice/accounts", alice, "ACCOUNT_INFORMATION", "", http.StatusNotFound, "NOT_FOUND", ""},
		{"a method /openapi.json does not take", http.MethodPost, f.url + "/openapi.json", "", "", "{}", http.StatusNotFound, "NOT_FOUND", ""},
		{"an unknown body field", http.MethodPost, ingest, partner, "", `{"partner_user_id":"p1","bogus":1}`, http.StatusBadRequest, "INVALID_ARGUMENT", "bogus"},
		{"a body that is no JSON", http.MethodPost, ingest, partner, "", `{"partner_user_id":`, http.StatusBadRequest, "INVALID_ARGUMENT", ""},
		{"a body over the limit", http.MethodPost, ingest, partner, "", `{"merchant_name":"` + strings.Repeat("x", 2048) + `"}`, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, tt.url, tt.token, tt.purpose, []byte(tt.body))
			if resp.StatusCode != tt.status || reason(body) != tt.reason {
				t.Fatalf("got %d %q, want %d %q; body %s", resp.StatusCode, reason(body), tt.status, tt.reason, mustJSON(body))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tt.field != "" && !strings.Contains(mustJSON(body), `"field":"`+tt.field+`"`) {
				t.Errorf("no field violation naming %s in %s", tt.field, mustJSON(body))
			}
		})
	}
}

// TestUnauthenticatedAnswersABearerChallenge: a 401 carries the RFC 6750
// challenge a client library reads — bare when no token was sent,
// error="invalid_token" when one was refused — and no other status does.
func TestUnauthenticatedAnswersABearerChallenge(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	balance := f.url + "/v1/users/alice/accounts/sandbox~a1/balance"
	expired, err := f.issuer.Mint("alice", "dev-client", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		status      int
		challenge   string
	}{
		{"no token", "", http.StatusUnauthorized, `Bearer realm="bankbridge"`},
		{"a malformed token", "not-a-jwt", http.StatusUnauthorized, `Bearer realm="bankbridge", error="invalid_token", error_description="the access token is malformed or failed verification"`},
		{"an expired token", expired, http.StatusUnauthorized, `Bearer realm="bankbridge", error="invalid_token", error_description="the access token expired"`},
		{"a valid token", f.token(t, "alice"), http.StatusOK, ""},
		{"another user's token", f.token(t, "bob"), http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, balance, tt.token, "ACCOUNT_INFORMATION", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, mustJSON(body))
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
		})
	}
}

// partnerToken gets the dev partner's client-credentials token from the
// fixture's /oauth/token.
func partnerToken(t *testing.T, f *fixture) string {
	t.Helper()
	resp, body := oauthToken(t, f.url, devPartner, devPartnerSecret)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("partner token: %d %v", resp.StatusCode, body)
	}
	return tok
}

// silentReceipts serves ReceiptsService, so that the kit's auth runs for
// its streams; no call gets past it in this test.
type silentReceipts struct {
	receiptsv1.UnimplementedReceiptsServiceServer
}

// TestARefusedStreamAnswersABearerChallenge: a stream refused as it opens
// (here :watch without a token, or with an expired one) is answered 401
// with the same RFC 6750 challenge as a unary call.
func TestARefusedStreamAnswersABearerChallenge(t *testing.T) {
	t.Parallel()
	url, srv := kitBehindGateway(t, "receipts", []string{"receipts"}, nil, func(r grpc.ServiceRegistrar) {
		receiptsv1.RegisterReceiptsServiceServer(r, silentReceipts{})
	})
	expired, err := srv.Issuer.Mint("alice", servertest.Client, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, token, challenge string }{
		{"no token", "", `Bearer realm="bankbridge"`},
		{"an expired token", expired, `Bearer realm="bankbridge", error="invalid_token", error_description="the access token expired"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, url+"/v1/users/alice/receipts:watch", tt.token, "PURCHASE_HISTORY", nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, mustJSON(body))
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
		})
	}
}
