package xs2asandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
)

// client calls the sandbox as a TPP over mutual TLS.
type client struct {
	t    *testing.T
	hc   *http.Client
	base string
}

func newClient(t *testing.T) *client {
	t.Helper()
	pki, err := xs2asandbox.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(xs2asandbox.New(xs2asandbox.Options{}).Handler())
	if srv.TLS, err = pki.ServerTLS(); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg, err := pki.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}, base: srv.URL}
}

// call sends one request and decodes the JSON answer into a map.
func (c *client) call(method, path, body string, header map[string]string) (int, http.Header, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Request-ID", "1b3f8a52-5d6e-4c7a-9f10-2a3b4c5d6e7f")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

func code(m map[string]any) string {
	msgs, _ := m["tppMessages"].([]any)
	if len(msgs) == 0 {
		return ""
	}
	first, _ := msgs[0].(map[string]any)
	s, _ := first["code"].(string)
	return s
}

const consentBody = `{"access":{"accounts":[],"balances":[],"transactions":[]},"recurringIndicator":true,"validUntil":"2099-01-01","frequencyPerDay":4,"combinedServiceIndicator":false}`

// linked creates and authorises (EMBEDDED) a consent for psu.
func (c *client) linked(psu string) string {
	c.t.Helper()
	st, h, m := c.call("POST", "/v1/consents", consentBody, map[string]string{"PSU-ID": psu, "PSU-IP-Address": "192.0.2.1"})
	if st != http.StatusCreated || h.Get("ASPSP-SCA-Approach") != "EMBEDDED" {
		c.t.Fatalf("create consent: %d %v", st, m)
	}
	id := m["consentId"].(string)
	st, _, m = c.call("POST", "/v1/consents/"+id+"/authorisations", "", nil)
	if st != http.StatusCreated || m["scaStatus"] != "psuIdentified" {
		c.t.Fatalf("start authorisation: %d %v", st, m)
	}
	auth := "/v1/consents/" + id + "/authorisations/" + m["authorisationId"].(string)
	if st, _, m = c.call("PUT", auth, `{"authenticationMethodId":"sms"}`, nil); st != http.StatusOK || m["scaStatus"] != "scaMethodSelected" {
		c.t.Fatalf("select method: %d %v", st, m)
	}
	if st, _, m = c.call("PUT", auth, `{"scaAuthenticationData":"`+xs2asandbox.OTP+`"}`, nil); st != http.StatusOK || m["scaStatus"] != "finalised" {
		c.t.Fatalf("send OTP: %d %v", st, m)
	}
	return id
}

func TestConsentRequests(t *testing.T) {
	c := newClient(t)
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"unknown PSU", consentBody, map[string]string{"PSU-ID": "nobody", "PSU-IP-Address": "192.0.2.1"}, 401, "PSU_CREDENTIALS_INVALID"},
		{"no PSU-IP-Address", consentBody, map[string]string{"PSU-ID": "anna"}, 400, "FORMAT_ERROR"},
		{"no frequencyPerDay", `{"access":{},"recurringIndicator":true,"validUntil":"2099-01-01","combinedServiceIndicator":false}`,
			map[string]string{"PSU-ID": "anna", "PSU-IP-Address": "192.0.2.1"}, 400, "FORMAT_ERROR"},
		{"redirect without TPP-Redirect-URI", consentBody,
			map[string]string{"PSU-ID": "anna", "PSU-IP-Address": "192.0.2.1", "TPP-Redirect-Preferred": "true"}, 400, "FORMAT_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _, m := c.call("POST", "/v1/consents", tt.body, tt.header)
			if st != tt.status || code(m) != tt.code {
				t.Errorf("got %d %q, want %d %q", st, code(m), tt.status, tt.code)
			}
		})
	}
	st, _, m := c.call("GET", "/v1/consents/cns-unknown/status", "", nil)
	if st != http.StatusForbidden || code(m) != "CONSENT_UNKNOWN" {
		t.Errorf("status of an unknown consent: %d %q, want 403 CONSENT_UNKNOWN (in the path)", st, code(m))
	}
	st, _, m = c.call("GET", "/v1/accounts", "", map[string]string{"Consent-ID": "cns-unknown"})
	if st != http.StatusBadRequest || code(m) != "CONSENT_UNKNOWN" {
		t.Errorf("accounts under an unknown consent: %d %q, want 400 CONSENT_UNKNOWN (in a header)", st, code(m))
	}
}

func TestTransactionPages(t *testing.T) {
	c := newClient(t)
	id := c.linked("anna")
	h := map[string]string{"Consent-ID": id}
	if st, _, m := c.call("GET", "/v1/accounts/acc-anna-cur/transactions?bookingStatus=booked", "", h); st != 400 || code(m) != "FORMAT_ERROR" {
		t.Errorf("booked without dateFrom: %d %q, want 400 FORMAT_ERROR", st, code(m))
	}
	if st, _, m := c.call("GET", "/v1/accounts/acc-anna-cur/transactions?bookingStatus=both&dateFrom=2000-01-01", "", h); st != 400 || code(m) != "PERIOD_INVALID" {
		t.Errorf("dateFrom too old: %d %q, want 400 PERIOD_INVALID", st, code(m))
	}
	if st, _, m := c.call("GET", "/v1/accounts/acc-ben-cur/transactions?bookingStatus=both&dateFrom=2026-01-01", "", h); st != 404 || code(m) != "RESOURCE_UNKNOWN" {
		t.Errorf("another PSU's account: %d %q, want 404 RESOURCE_UNKNOWN", st, code(m))
	}
	from := time.Now().AddDate(0, 0, -60).Format(time.DateOnly)
	path := "/v1/accounts/acc-anna-cur/transactions?bookingStatus=both&dateFrom=" + from
	booked, pending, pages := 0, 0, 0
	for path != "" && pages < 10 {
		st, _, m := c.call("GET", path, "", h)
		if st != http.StatusOK {
			t.Fatalf("page %d: %d %v", pages, st, m)
		}
		tx := m["transactions"].(map[string]any)
		booked += len(tx["booked"].([]any))
		pending += len(tx["pending"].([]any))
		next, _ := tx["_links"].(map[string]any)["next"].(map[string]any)
		path, _ = next["href"].(string)
		pages++
	}
	if booked != 5 || pending != 2 || pages != 3 {
		t.Errorf("anna's current account: %d booked, %d pending over %d pages; want 5, 2, 3 (pages of 3)", booked, pending, pages)
	}
}
