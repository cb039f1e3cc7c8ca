package e2e

// The attacker's probes of docs/security.md, run against the dev stack
// over REST as a product team (or someone holding one of its tokens)
// would: each asserts what the attacker gets back. The package tests named
// in docs/security.md prove each defence in depth; these prove the
// running stack has it.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A login the bank does not know is answered like one it knows: the
// attacker cannot tell from CreateLink, nor from a verify with the right
// code, whether the login exists.
func TestProbeUnknownLoginLooksKnown(t *testing.T) {
	known, unknown := "probe-known-"+randomKey()[:8], "probe-unknown-"+randomKey()[:8]
	tokKnown, tokUnknown := devToken(t, known), devToken(t, unknown)
	start := func(token, user, login string) rest {
		return call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
			"bank_id": "sandbox", "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
			"bank_login_hint": login,
		})
	}
	a := start(tokKnown, known, "alice")
	b := start(tokUnknown, unknown, "no-such-login-"+randomKey()[:8])
	a.want(t, http.StatusOK, "")
	b.want(t, http.StatusOK, "")
	la, _ := a.body["link"].(map[string]any)
	lb, _ := b.body["link"].(map[string]any)
	for _, field := range []string{"state", "bank_id", "scopes", "purposes"} {
		if jsonOf(la[field]) != jsonOf(lb[field]) {
			t.Errorf("link.%s tells the logins apart: %s versus %s", field, jsonOf(la[field]), jsonOf(lb[field]))
		}
	}
	sa, _ := la["sca"].(map[string]any)
	sb, _ := lb["sca"].(map[string]any)
	if jsonOf(sa["method"]) != jsonOf(sb["method"]) || jsonOf(sa["attempts_remaining"]) != jsonOf(sb["attempts_remaining"]) {
		t.Errorf("the challenge tells the logins apart: %s versus %s", jsonOf(sa), jsonOf(sb))
	}
	// The sandbox's right code on the decoy fails exactly as a wrong code
	// on the real link does.
	wrong := call(t, http.MethodPost, "/v1/"+la["name"].(string)+":verify", tokKnown, "CONSENT_MANAGEMENT", map[string]any{"code": "000000"})
	decoy := call(t, http.MethodPost, "/v1/"+lb["name"].(string)+":verify", tokUnknown, "CONSENT_MANAGEMENT", map[string]any{"code": "123456"})
	if wrong.status == http.StatusOK || wrong.status != decoy.status || wrong.reason() != decoy.reason() {
		t.Errorf("verify tells the logins apart: wrong code on a real link %d %s, right code on the decoy %d %s",
			wrong.status, wrong.reason(), decoy.status, decoy.reason())
	}
}

// Starting link after link against someone's bank login stops at the cap
// of links waiting for their code.
func TestProbePendingLinksAreCapped(t *testing.T) {
	user := "probe-pending-" + randomKey()[:8]
	token := devToken(t, user)
	var last rest
	for range 4 {
		last = call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
			"bank_id": "sandbox", "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
			"bank_login_hint": "alice",
		})
	}
	last.want(t, http.StatusTooManyRequests, "PENDING_LINKS_LIMIT")
}

// A partner's token reads nothing of a user's, whatever route it tries.
func TestProbeAPartnerReadsNothing(t *testing.T) {
	user := "probe-partner-" + randomKey()[:8]
	linkLogin(t, devToken(t, user), user, "alice")
	partner := partnerToken(t, "demo-shop")
	for _, path := range []string{
		"/v1/users/" + user + "/accounts", "/v1/users/" + user + "/links", "/v1/users/" + user + "/receipts",
		"/v1/users/" + user + "/accessLog", "/v1/users/" + user + "/shipments",
	} {
		call(t, http.MethodGet, path, partner, "ACCOUNT_INFORMATION", nil).want(t, http.StatusForbidden, "CLIENT_NOT_ALLOWED")
	}
}

// An oversized body is refused at the gateway, before any service reads it.
func TestProbeOversizedBodyIsRefused(t *testing.T) {
	user := "probe-size-" + randomKey()[:8]
	token := devToken(t, user)
	r := call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
		"bank_id": "sandbox", "bank_login_hint": strings.Repeat("a", 2<<20),
	})
	r.want(t, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE")
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
