package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hook is one webhook POST as the receiver got it.
type hook struct {
	header http.Header
	body   []byte
}

// An expiry warning travels the whole way: a link whose consent ends in 6
// days is warned about by the consent service's sweep (consent.link.expiring
// in its outbox, in the transaction that marks the link warned), relayed to
// the bus, and delivered by the webhooks service to the endpoint the link's
// client registered, signed as Standard Webhooks says. The signature is
// checked here from the published format, not with bankbridge's code.
//
// Not parallel: it needs the sandbox, which outage_test.go stops (file order).
func TestExpiryWarningReachesAWebhook(t *testing.T) {
	hooks := make(chan hook, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- hook{header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	// The product's client registers its endpoint with its own token.
	r := call(t, http.MethodPost, "/v1/dev/tokens", "", "", map[string]any{"client_credentials": true})
	clientToken, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || clientToken == "" {
		t.Fatalf("client token: %d %s", r.status, r.raw)
	}
	r = call(t, http.MethodPost, "/v1/clients/"+shared.stack.DevClient+"/endpoints", clientToken, "",
		map[string]any{"url": rcv.URL + "/bankbridge", "event_types": []string{"consent.link.expiring"}})
	secret, _ := r.body["secret"].(string)
	if r.status != http.StatusOK || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create endpoint: %d %s", r.status, r.raw)
	}

	// A user of that client links a bank for 6 days only.
	user := "expiring-" + randomKey()[:8]
	token := devToken(t, user)
	r = call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
		"bank_id":         "sandbox",
		"scopes":          []string{"SCOPE_ACCOUNTS", "SCOPE_BALANCES"},
		"purposes":        []string{"PURPOSE_ACCOUNT_INFORMATION"},
		"bank_login_hint": "alice",
		"ttl":             "518400s", // 6 days
	})
	if r.status != http.StatusOK {
		t.Fatalf("create link: %d %s", r.status, r.raw)
	}
	link, _ := r.body["link"].(map[string]any)["name"].(string)
	if v := call(t, http.MethodPost, "/v1/"+link+":verify", token, "CONSENT_MANAGEMENT", map[string]any{"code": "123456"}); v.status != http.StatusOK {
		t.Fatalf("verify link: %d %s", v.status, v.raw)
	}

	// The sweep runs every --sweep-interval (the stack's environment sets
	// it short); the relay and the delivery add little.
	deadline := time.After(90 * time.Second)
	for {
		var h hook
		select {
		case h = <-hooks:
		case <-deadline:
			t.Fatalf("no expiry warning for %s reached the endpoint", link)
		}
		var payload struct {
			Type string `json:"type"`
			Data struct {
				Resource string `json:"resource"`
			} `json:"data"`
		}
		if err := json.Unmarshal(h.body, &payload); err != nil {
			t.Fatalf("webhook body %s: %v", h.body, err)
		}
		if payload.Data.Resource != link {
			continue // another test's link
		}
		if payload.Type != "consent.link.expiring" {
			t.Errorf("webhook type %q, want consent.link.expiring", payload.Type)
		}
		if !signedWith(secret, h) {
			t.Errorf("webhook-signature %q does not verify with the endpoint's secret", h.header.Get("webhook-signature"))
		}
		// Thin: the user's login at the bank and the bank's name stay home.
		for _, leak := range []string{"alice", "Sandbox Bank"} {
			if strings.Contains(string(h.body), leak) {
				t.Errorf("webhook body %s holds %q", h.body, leak)
			}
		}
		return
	}
}

// signedWith checks a Standard Webhooks signature: some space-separated
// "v1,<base64>" of the header is the HMAC-SHA256, keyed with the base64
// after "whsec_" of the secret, of "<webhook-id>.<webhook-timestamp>.<body>".
func signedWith(secret string, h hook) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.header.Get("webhook-id") + "." + h.header.Get("webhook-timestamp") + "."))
	mac.Write(h.body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.header.Get("webhook-signature")) {
		got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1,"))
		if err == nil && strings.HasPrefix(sig, "v1,") && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}
