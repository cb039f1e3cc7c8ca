package demo_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/services/demochat/internal/demo"
	"github.com/bankbridge/bankbridge/services/demochat/web"
)

// stack is a demo chat server in front of a gateway and a sandbox admin
// listener of the test's choosing, each a real HTTPS server.
type stack struct {
	demo *httptest.Server
}

func start(t *testing.T, gateway, sandboxAdmin http.Handler, secret string) *stack {
	t.Helper()
	gw := httptest.NewTLSServer(gateway)
	t.Cleanup(gw.Close)
	admin := httptest.NewTLSServer(sandboxAdmin)
	t.Cleanup(admin.Close)
	// Both are signed by httptest's one CA: trust it as the dev CA.
	roots := x509.NewCertPool()
	roots.AddCert(gw.Certificate())
	gwURL, _ := url.Parse(gw.URL)
	adminURL, _ := url.Parse(admin.URL)
	srv := httptest.NewServer(demo.Handler(demo.Config{
		Gateway: gwURL, SandboxAdmin: adminURL, TLS: &tls.Config{RootCAs: roots},
		PartnerClient: "demo-partner", PartnerSecret: secret, Assets: web.Files,
	}))
	t.Cleanup(srv.Close)
	return &stack{demo: srv}
}

func (s *stack) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (s *stack) trigger(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.demo.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.demo.URL)
	resp, text := s.do(t, req)
	var out map[string]any
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("%s answered %d, not JSON: %q", path, resp.StatusCode, text)
	}
	return resp.StatusCode, out
}

// sandboxAdmin is the real sandbox bank's admin listener, as
// services/sandbox mounts it, without a carrier.
func sandboxAdmin(t *testing.T) http.Handler {
	t.Helper()
	bank, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", bank.AdminHandler())
	mux.Handle("/admin/carrier/", sandbox.CarrierAdminHandler(nil))
	return mux
}

func TestThePageIsServedWithAStrictPolicy(t *testing.T) {
	t.Parallel()
	s := start(t, http.NotFoundHandler(), http.NotFoundHandler(), "")
	tests := []struct {
		path, contentType string
		contains          []string
	}{
		{"/", "text/html", []string{`data-testid="user-picker"`, `data-testid="chat-log"`, `aria-live="polite"`, `<script type="module" src="app.js">`}},
		{"/app.js", "text/javascript", []string{`from "./api.js"`}},
		{"/chain.js", "text/javascript", []string{"export async function verifyChain"}},
		{"/style.css", "text/css", []string{":focus-visible"}},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, s.demo.URL+tt.path, nil)
		resp, body := s.do(t, req)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) {
			t.Errorf("GET %s: %d %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, c := range tt.contains {
			if !strings.Contains(body, c) {
				t.Errorf("GET %s lacks %q", tt.path, c)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, directive := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, directive) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tt.path, csp, directive)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
			t.Errorf("GET %s: Content-Security-Policy %q allows inline code or another origin", tt.path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", tt.path, got)
		}
	}
}

// TestThePageLoadsNothingFromElsewhere: no asset of the page names another
// origin, so the browser fetches nothing from the internet (the CSP would
// refuse it anyway).
func TestThePageLoadsNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	entries, err := web.Files.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := web.Files.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")) // a name, not a fetch
		for _, bad := range []string{"http://", "https://", "//cdn", "@import url(", "<script>", " onclick=", "style=\""} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s holds %q", e.Name(), bad)
			}
		}
	}
}

func TestOnlyALoopbackHostIsAnswered(t *testing.T) {
	t.Parallel()
	s := start(t, http.NotFoundHandler(), http.NotFoundHandler(), "")
	for host, want := range map[string]int{"attacker.example:8088": http.StatusMisdirectedRequest, "localhost:8088": http.StatusOK, "127.0.0.1:8088": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, s.demo.URL+"/", nil)
		req.Host = host
		if resp, _ := s.do(t, req); resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestTheProxyPassesACallUnchanged: the page's REST call reaches the
// gateway as sent (method, path, query, headers, body), and the answer
// comes back as the gateway gave it, refusals included.
func TestTheProxyPassesACallUnchanged(t *testing.T) {
	t.Parallel()
	var got struct {
		method, uri, auth, purpose, key, body, host string
	}
	var mu sync.Mutex
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got.method, got.uri, got.body, got.host = r.Method, r.RequestURI, string(b), r.Host
		got.auth, got.purpose, got.key = r.Header.Get("Authorization"), r.Header.Get("Bankbridge-Purpose"), r.Header.Get("Idempotency-Key")
		mu.Unlock()
		w.Header().Set("X-Trace-Id", "4bf92f3577b34da6a3ce929d0e0e4736")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"code":7,"message":"consent revoked","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSENT_REVOKED"}]}`)
	})
	s := start(t, gateway, http.NotFoundHandler(), "")
	req, _ := http.NewRequest(http.MethodPost, s.demo.URL+"/v1/users/alice/links/sandbox~l1:verify?x=1", strings.NewReader(`{"code":"123456"}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Bankbridge-Purpose", "CONSENT_MANAGEMENT")
	req.Header.Set("Idempotency-Key", "verify-12345678")
	resp, body := s.do(t, req)
	mu.Lock()
	defer mu.Unlock()
	if got.method != http.MethodPost || got.uri != "/v1/users/alice/links/sandbox~l1:verify?x=1" || got.body != `{"code":"123456"}` ||
		got.auth != "Bearer tok" || got.purpose != "CONSENT_MANAGEMENT" || got.key != "verify-12345678" {
		t.Errorf("the gateway got %+v", got)
	}
	if u, _ := url.Parse(s.demo.URL); got.host == u.Host {
		t.Errorf("the gateway got the demo chat's Host %q, not its own", got.host)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"reason":"CONSENT_REVOKED"`) || resp.Header.Get("X-Trace-Id") == "" {
		t.Errorf("the page got %d %q (X-Trace-Id %q)", resp.StatusCode, body, resp.Header.Get("X-Trace-Id"))
	}
}

// TestTheProxyStreamsLineByLine: a watch stream's events reach the page as
// the gateway sends them, each line at once, not when the stream ends.
func TestTheProxyStreamsLineByLine(t *testing.T) {
	t.Parallel()
	second := make(chan struct{})
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"result":{"cursor":"c1"}}`+"\n")
		_ = http.NewResponseController(w).Flush()
		select { // the next line only once the page has read the first
		case <-second:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return
		}
		_, _ = io.WriteString(w, `{"result":{"cursor":"c2"}}`+"\n")
	})
	s := start(t, gateway, http.NotFoundHandler(), "")
	resp, err := http.Get(s.demo.URL + "/v1/users/alice/shipments:watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := bufio.NewReader(resp.Body)
	read := make(chan string)
	go func() {
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				close(read)
				return
			}
			read <- l
		}
	}()
	for i, want := range []string{`"c1"`, `"c2"`} {
		select {
		case l := <-read:
			if !strings.Contains(l, want) {
				t.Fatalf("line %d: %q, want %s", i+1, l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("line %d did not come through while the stream was open", i+1)
		}
		if i == 0 {
			close(second)
		}
	}
}

func TestTheGatewayDownIsAClearError(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL, _ := url.Parse(dead.URL)
	dead.Close()
	srv := httptest.NewServer(demo.Handler(demo.Config{Gateway: deadURL, SandboxAdmin: deadURL, TLS: &tls.Config{}, Assets: web.Files}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/users/alice/accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != http.StatusBadGateway || st.Code != 14 || !strings.Contains(st.Message, "could not reach the gateway") {
		t.Errorf("%d %+v", resp.StatusCode, st)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/demo/fraud", strings.NewReader(`{"user":"alice"}`))
	req.Header.Set("Content-Type", "application/json")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	body, _ := io.ReadAll(resp2.Body)
	if resp2.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "admin listener") || !strings.Contains(string(body), "did not answer") {
		t.Errorf("fraud trigger with the sandbox down: %d %s", resp2.StatusCode, body)
	}
}

// TestTriggersAnswerClearly: each trigger, against the real sandbox bank's
// admin endpoints, says what happened or what to do first.
func TestTriggersAnswerClearly(t *testing.T) {
	t.Parallel()
	s := start(t, http.NotFoundHandler(), sandboxAdmin(t), "")
	tests := []struct {
		name, path, body string
		want             int
		says             string
	}{
		{"fraud for a login the bank lacks", "/demo/fraud", `{"user":"zoe"}`, http.StatusNotFound, "no customer with this login"},
		{"fraud before linking", "/demo/fraud", `{"user":"alice"}`, http.StatusConflict, "link the bank first"},
		{"fraud without a user", "/demo/fraud", `{}`, http.StatusBadRequest, `"user" must be a sandbox login`},
		{"an unknown field", "/demo/fraud", `{"user":"alice","amount":5}`, http.StatusBadRequest, "unknown field"},
		{"the agent takes over before a case", "/demo/agent/takeover", `{"user":"alice"}`, http.StatusNotFound, "ask for a person first"},
		{"the agent hands back before a case", "/demo/agent/handback", `{"user":"alice"}`, http.StatusNotFound, "ask for a person first"},
		{"a parcel when the sandbox plays no carrier", "/demo/parcel", `{"tracking_number":"1Z999AA10123456784"}`, http.StatusServiceUnavailable, "plays no carrier"},
		{"a parcel number that is not one", "/demo/parcel", `{"tracking_number":"a b"}`, http.StatusBadRequest, "tracking_number"},
		{"a receipt without the partner's secret", "/demo/receipt", `{"partner_user_id":"psu-12345678"}`, http.StatusServiceUnavailable, "no partner secret"},
		{"no such trigger", "/demo/weather", `{}`, http.StatusNotFound, "no such demo trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := s.trigger(t, tt.path, tt.body)
			if code != tt.want || !strings.Contains(fmt.Sprint(out["error"]), tt.says) {
				t.Errorf("%d %v, want %d saying %q", code, out, tt.want, tt.says)
			}
		})
	}
}

// TestTriggersRefuseOtherOrigins: another site's page cannot make the
// sandbox act through the demo chat.
func TestTriggersRefuseOtherOrigins(t *testing.T) {
	t.Parallel()
	s := start(t, http.NotFoundHandler(), sandboxAdmin(t), "")
	tests := []struct {
		name        string
		contentType string
		header      map[string]string
		want        int
	}{
		{"a form post", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"text/plain", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"another origin", "application/json", map[string]string{"Origin": "https://attacker.example"}, http.StatusForbidden},
		{"a cross-site fetch", "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, s.demo.URL+"/demo/fraud", strings.NewReader(`{"user":"alice"}`))
		req.Header.Set("Content-Type", tt.contentType)
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		if resp, body := s.do(t, req); resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, body, tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, s.demo.URL+"/demo/fraud", nil)
	if resp, _ := s.do(t, req); resp.StatusCode == http.StatusOK {
		t.Error("GET /demo/fraud acted")
	}
}

// TestTheReceiptTriggerPushesAsThePartner: the receipt goes to the
// gateway's ingest endpoint with the partner's own client-credentials
// token, once per trigger, and adds up.
func TestTheReceiptTriggerPushesAsThePartner(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var tokens int
	var pushed []map[string]any
	var keys []string
	gateway := http.NewServeMux()
	gateway.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		_ = r.ParseForm()
		if !ok || id != "demo-partner" || secret != "dev-partner-secret" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		tokens++
		mu.Unlock()
		_, _ = io.WriteString(w, `{"access_token":"partner-token","token_type":"Bearer","expires_in":3600}`)
	})
	gateway.HandleFunc("POST /v1/clients/demo-partner/receipts:ingest", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer partner-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		pushed = append(pushed, body)
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"receipt_id":"x","version":1}`)
	})
	s := start(t, gateway, sandboxAdmin(t), "dev-partner-secret")
	for range 2 {
		code, out := s.trigger(t, "/demo/receipt", `{"partner_user_id":"psu-12345678"}`)
		if code != http.StatusOK || out["partner"] != "demo-partner" || !strings.HasPrefix(fmt.Sprint(out["order_number"]), "NO-") {
			t.Fatalf("%d %v", code, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if tokens != 1 {
		t.Errorf("%d token requests for two pushes, want 1 (the token is reused)", tokens)
	}
	if len(pushed) != 2 || keys[0] == keys[1] || keys[0] == "" {
		t.Fatalf("pushes %d, keys %q", len(pushed), keys)
	}
	if pushed[0]["partner_user_id"] != "psu-12345678" {
		t.Errorf("partner_user_id %v", pushed[0]["partner_user_id"])
	}
	receipt := pushed[0]["receipt"].(map[string]any)
	summary := receipt["summary"].(map[string]any)
	cents := func(m any) int64 {
		mm := m.(map[string]any)
		var units, nanos int64
		_, _ = fmt.Sscan(fmt.Sprint(mm["units"]), &units)
		if n, ok := mm["nanos"].(float64); ok {
			nanos = int64(n)
		}
		return units*100 + nanos/10_000_000
	}
	var sum int64
	for _, it := range receipt["line_items"].([]any) {
		item := it.(map[string]any)
		sum += int64(item["quantity"].(float64)) * cents(item["unit_price"])
	}
	if sum != cents(summary["subtotal"]) || cents(summary["subtotal"])+cents(summary["shipping_cost"]) != cents(summary["total_cost"]) ||
		cents(summary["total_cost"]) != 59_99 {
		t.Errorf("the receipt does not add up to alice's €59.99 card payment: %v", summary)
	}
}

// TestTheAgentTriggersPlayTheBanksAgent: with a support case open at the
// real sandbox bank, the agent hands back and takes over again by login.
func TestTheAgentTriggersPlayTheBanksAgent(t *testing.T) {
	t.Parallel()
	// The case needs a consent and a handoff through the adapter protocol:
	// that is the sandbox package's own test (TestAdminPassControlByUser);
	// here the trigger's mapping of the admin answers is what counts.
	admin := http.NewServeMux()
	var mu sync.Mutex
	var calls []string
	answer := map[string]int{"/admin/support/pass-control": http.StatusOK, "/admin/support/request-control": http.StatusConflict}
	for path, code := range answer {
		admin.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls = append(calls, r.URL.Path+"?"+r.URL.RawQuery)
			mu.Unlock()
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"case_id":"case-1"}`)
		})
	}
	s := start(t, http.NotFoundHandler(), admin, "")
	if code, out := s.trigger(t, "/demo/agent/handback", `{"user":"alice"}`); code != http.StatusOK || out["done"] != true {
		t.Errorf("handback: %d %v", code, out)
	}
	if code, out := s.trigger(t, "/demo/agent/takeover", `{"user":"alice"}`); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "holds the conversation already") {
		t.Errorf("takeover while she holds it: %d %v", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/admin/support/pass-control?user=alice", "/admin/support/request-control?user=alice"}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("sandbox calls %v, want %v", calls, want)
	}
}
