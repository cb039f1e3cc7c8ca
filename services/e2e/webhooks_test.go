package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A product team registers a webhook endpoint over REST with its own
// client token (in dev mode an http receiver on 127.0.0.1 is allowed),
// reads it back and its (empty) delivery log; a user's token cannot.
func TestWebhookEndpointsOverREST(t *testing.T) {
	t.Parallel()
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rcv.Close)
	r := call(t, http.MethodPost, "/v1/dev/tokens", "", "", map[string]any{"client_credentials": true})
	clientToken, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || clientToken == "" {
		t.Fatalf("client token: %d %s", r.status, r.raw)
	}
	parent := "/v1/clients/" + shared.stack.DevClient
	r = call(t, http.MethodPost, parent+"/endpoints", clientToken, "",
		map[string]any{"url": rcv.URL + "/hook", "event_types": []string{"consent.link.expiring"}})
	ep, _ := r.body["endpoint"].(map[string]any)
	name, _ := ep["name"].(string)
	secret, _ := r.body["secret"].(string)
	if r.status != http.StatusOK || !strings.HasPrefix(name, "clients/"+shared.stack.DevClient+"/endpoints/") || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create endpoint: %d %s", r.status, r.raw)
	}
	if r := call(t, http.MethodGet, "/v1/"+name, clientToken, "", nil); r.status != http.StatusOK || strings.Contains(r.raw, "whsec_") {
		t.Errorf("get endpoint: %d %s", r.status, r.raw)
	}
	if r := call(t, http.MethodGet, "/v1/"+name+"/deliveries", clientToken, "", nil); r.status != http.StatusOK {
		t.Errorf("list deliveries: %d %s", r.status, r.raw)
	}
	if r := call(t, http.MethodGet, "/v1/"+name, devToken(t, "alice"), "", nil); r.status != http.StatusForbidden || !strings.Contains(r.raw, "CLIENT_NOT_ALLOWED") {
		t.Errorf("a user's token: %d %s", r.status, r.raw)
	}
	if r := call(t, http.MethodDelete, "/v1/"+name, clientToken, "", nil); r.status != http.StatusOK {
		t.Errorf("delete endpoint: %d %s", r.status, r.raw)
	}
}
