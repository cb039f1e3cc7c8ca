package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// The dev stack's partners (gateway --dev-partner-clients, every service's
// --partner-clients), with the dev secret.
const (
	demoPartner   = "demo-partner"
	otherPartner  = "demo-shop"
	partnerSecret = "dev-partner-secret"
)

// partnerToken gets a partner's client-credentials token from the dev
// issuer, as a partner's backend would from the identity provider.
func partnerToken(t testing.TB, partner string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, shared.stack.GatewayURL+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(partner, partnerSecret)
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("partner token for %s: %d %v", partner, resp.StatusCode, err)
	}
	return body.AccessToken
}

// linkFor links user's sandbox bank as login with the scopes and purposes
// given and returns the link name.
func linkFor(t testing.TB, token, user, login string, scopes, purposes []string) string {
	t.Helper()
	r := call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
		"bank_id": "sandbox", "scopes": scopes, "purposes": purposes, "bank_login_hint": login,
	})
	r.want(t, http.StatusOK, "")
	name, _ := r.body["link"].(map[string]any)["name"].(string)
	v := call(t, http.MethodPost, "/v1/"+name+":verify", token, "CONSENT_MANAGEMENT", map[string]any{"code": "123456"})
	v.want(t, http.StatusOK, "")
	return name
}

// push sends a receipt as partner, with key as the Idempotency-Key.
func push(t testing.TB, partnerTok, partner, key string, body map[string]any) rest {
	t.Helper()
	return callWithKey(t, http.MethodPost, "/v1/clients/"+partner+"/receipts:ingest", partnerTok, "", key, body)
}

// nordicReceipt is the partner's receipt for alice's pending card payment
// of €59.99 at Nordic Outdoor Online (sandbox fixture tx-alice-chk-p02).
func nordicReceipt(psid, orderNumber string) map[string]any {
	eur := func(units, nanos int) map[string]any {
		return map[string]any{"currency_code": "EUR", "units": units, "nanos": nanos}
	}
	return map[string]any{
		"partner_user_id": psid,
		"receipt_id":      "ord-" + orderNumber,
		"receipt": map[string]any{
			"merchant_name":  "Nordic Outdoor",
			"order_number":   orderNumber,
			"order_url":      "https://nordic-outdoor.example/orders/" + orderNumber,
			"recipient_name": "Alice Example",
			"payment_method": map[string]any{
				"type": "PAYMENT_METHOD_TYPE_CARD", "card_network": "CARD_NETWORK_VISA",
				"masked_number": map[string]any{"last4": "1043", "display": "•••• 1043"},
			},
			"line_items": []any{
				map[string]any{"title": "Trail running socks", "quantity": 2, "unit_price": eur(12, 500000000)},
				map[string]any{"title": "Headlamp 300 lm", "quantity": 1, "unit_price": eur(29, 990000000)},
			},
			"summary": map[string]any{
				"subtotal": eur(54, 990000000), "shipping_cost": eur(5, 0), "total_cost": eur(59, 990000000),
			},
			"shipping_address": map[string]any{"street_1": "Hauptstraße 5", "city": "Berlin", "postal_code": "10115", "country": "DE"},
			"purchase_time":    time.Now().Add(-5 * time.Minute).UTC().Format(time.RFC3339),
		},
	}
}

// TestReceiptsFromAPartner walks the receipts issue's promises through the
// gateway: a partner pushes a receipt for a user who opted in to it, a retry
// gives the same receipt and a changed body under the same key is refused;
// the user sees it matched to the card transaction it paid for, nobody
// else sees it; a partner the user did not opt in to is refused; after the
// user revokes the opt-in the partner is refused and its receipts are gone;
// and no one reads receipts for advertising.
func TestReceiptsFromAPartner(t *testing.T) {
	const user = "shopper"
	const purpose = "PURCHASE_HISTORY"
	tok := devToken(t, user)
	linkFor(t, tok, user, "alice", []string{"SCOPE_ACCOUNTS", "SCOPE_TRANSACTIONS", "SCOPE_RECEIPTS"},
		[]string{"PURPOSE_ACCOUNT_INFORMATION", "PURPOSE_PURCHASE_HISTORY"})

	// The user opts in to the partner; the product hands the id to it.
	r := call(t, http.MethodPost, "/v1/users/"+user+"/partnerOptIns", tok, "CONSENT_MANAGEMENT",
		map[string]any{"partner": demoPartner, "scopes": []string{"SCOPE_RECEIPTS"}})
	r.want(t, http.StatusOK, "")
	optIn, _ := r.body["partner_opt_in"].(map[string]any)
	psid, _ := optIn["partner_user_id"].(string)
	optInName, _ := optIn["name"].(string)
	if psid == "" || strings.Contains(psid, user) || optInName == "" {
		t.Fatalf("opt-in: %s", r.raw)
	}

	// Push twice with one key: one receipt, the same answer.
	ptok := partnerToken(t, demoPartner)
	key := randomKey()
	body := nordicReceipt(psid, "NO-100234")
	first := push(t, ptok, demoPartner, key, body)
	first.want(t, http.StatusOK, "")
	if strings.Contains(first.raw, user) || first.body["version"] != float64(1) {
		t.Fatalf("ingest answer names the user or no version 1: %s", first.raw)
	}
	again := push(t, ptok, demoPartner, key, body)
	again.want(t, http.StatusOK, "")
	if again.body["create_time"] != first.body["create_time"] {
		t.Errorf("retry answered another receipt: %s vs %s", again.raw, first.raw)
	}
	changed := nordicReceipt(psid, "NO-100234")
	changed["receipt"].(map[string]any)["purchase_time"] = body["receipt"].(map[string]any)["purchase_time"]
	changed["receipt"].(map[string]any)["recipient_name"] = "Someone Else"
	push(t, ptok, demoPartner, key, changed).want(t, http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")

	// The user sees it, matched to the card transaction, once.
	const tx = "users/" + user + "/accounts/sandbox~acc-alice-checking/transactions/tx-alice-chk-p02"
	var receipt map[string]any
	testkit.Eventually(t, func() bool {
		l := call(t, http.MethodGet, "/v1/users/"+user+"/receipts?transaction="+url.QueryEscape(tx), tok, purpose, nil)
		l.want(t, http.StatusOK, "")
		receipt = nil
		for _, x := range asList(l.body["receipts"]) {
			if x["partner"] == demoPartner {
				if receipt != nil {
					t.Fatalf("two receipts of the partner for one push: %s", l.raw)
				}
				receipt = x
			}
		}
		return receipt != nil
	}, 30*time.Second)
	match, _ := receipt["match"].(map[string]any)
	if match["transaction"] != tx || match["confidence"] != "MATCH_CONFIDENCE_HIGH" {
		t.Errorf("match = %v, want %s with HIGH confidence", match, tx)
	}
	name, _ := receipt["name"].(string)
	if !strings.HasPrefix(name, "users/"+user+"/receipts/") {
		t.Fatalf("receipt name %q", name)
	}
	call(t, http.MethodGet, "/v1/"+name, tok, purpose, nil).want(t, http.StatusOK, "")

	// bob cannot see it, by its name or through shopper's list.
	bob := devToken(t, "bob")
	call(t, http.MethodGet, "/v1/"+name, bob, purpose, nil).want(t, http.StatusForbidden, "USER_MISMATCH")
	call(t, http.MethodGet, "/v1/users/"+user+"/receipts", bob, purpose, nil).want(t, http.StatusForbidden, "USER_MISMATCH")

	// A first-party client may not read receipts for advertising.
	call(t, http.MethodGet, "/v1/users/"+user+"/receipts", tok, "ADVERTISING", nil).want(t, http.StatusForbidden, "PURPOSE_NOT_ALLOWED")

	// A partner the user did not opt in to cannot push with the id.
	other := partnerToken(t, otherPartner)
	push(t, other, otherPartner, randomKey(), nordicReceipt(psid, "NO-999")).want(t, http.StatusForbidden, "CONSENT_REQUIRED")
	// Nor can it push under the first partner's name, nor a user token at all.
	push(t, other, demoPartner, randomKey(), nordicReceipt(psid, "NO-998")).want(t, http.StatusForbidden, "CLIENT_NOT_ALLOWED")
	push(t, tok, demoPartner, randomKey(), nordicReceipt(psid, "NO-997")).want(t, http.StatusForbidden, "CLIENT_NOT_ALLOWED")
	// And a partner reads nothing.
	call(t, http.MethodGet, "/v1/users/"+user+"/receipts", ptok, purpose, nil).want(t, http.StatusForbidden, "CLIENT_NOT_ALLOWED")

	// The user revokes the opt-in: pushes are refused, the receipts gone.
	call(t, http.MethodPost, "/v1/"+optInName+":revoke", tok, "CONSENT_MANAGEMENT", map[string]any{}).want(t, http.StatusOK, "")
	push(t, ptok, demoPartner, randomKey(), nordicReceipt(psid, "NO-100235")).want(t, http.StatusForbidden, "CONSENT_REVOKED")
	testkit.Eventually(t, func() bool {
		return call(t, http.MethodGet, "/v1/"+name, tok, purpose, nil).status == http.StatusNotFound
	}, 30*time.Second)
	l := call(t, http.MethodGet, "/v1/users/"+user+"/receipts", tok, purpose, nil)
	l.want(t, http.StatusOK, "")
	if strings.Contains(l.raw, demoPartner) {
		t.Errorf("receipts of the revoked partner still listed: %s", l.raw)
	}
}

// TestCardIssuerReceipts: the sandbox bank, as card issuer, gives the
// purchase details behind alice's card payments; they arrive as receipts
// matched to their transactions with ISSUER confidence.
func TestCardIssuerReceipts(t *testing.T) {
	const user = "cardholder"
	tok := devToken(t, user)
	linkFor(t, tok, user, "alice", []string{"SCOPE_ACCOUNTS", "SCOPE_TRANSACTIONS", "SCOPE_RECEIPTS"},
		[]string{"PURPOSE_PURCHASE_HISTORY"})
	const tx = "users/" + user + "/accounts/sandbox~acc-alice-checking/transactions/tx-alice-chk-p02"
	testkit.Eventually(t, func() bool {
		l := call(t, http.MethodGet, "/v1/users/"+user+"/receipts?transaction="+url.QueryEscape(tx), tok, "PURCHASE_HISTORY", nil)
		l.want(t, http.StatusOK, "")
		for _, x := range asList(l.body["receipts"]) {
			m, _ := x["match"].(map[string]any)
			if x["bank_id"] == "sandbox" && m["confidence"] == "MATCH_CONFIDENCE_ISSUER" {
				return true
			}
		}
		return false
	}, 30*time.Second)
}

// TestServicesInReflection: the receipts and shipping binaries answer
// reflection with every service they serve, public and partner, so
// grpcurl and Postman find them.
func TestServicesInReflection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		process string
		want    []string
	}{
		{"receipts", []string{"bankbridge.receipts.v1.ReceiptsService", "bankbridge.receipts.v1.PartnerReceiptsService"}},
		{"shipping", []string{"bankbridge.shipping.v1.ShippingService", "bankbridge.shipping.v1.PartnerShippingService"}},
		{"support", []string{"bankbridge.support.v1.SupportService"}},
	}
	for _, tt := range tests {
		t.Run(tt.process, func(t *testing.T) {
			t.Parallel()
			conn := dial(t, shared.stack.Addr(tt.process))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := grpc_reflection_v1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&grpc_reflection_v1.ServerReflectionRequest{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}}); err != nil {
				t.Fatal(err)
			}
			resp, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range resp.GetListServicesResponse().GetService() {
				got = append(got, s.GetName())
			}
			for _, want := range tt.want {
				if !slices.Contains(got, want) {
					t.Errorf("reflection lists %q, missing %s", got, want)
				}
			}
		})
	}
}

func asList(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
