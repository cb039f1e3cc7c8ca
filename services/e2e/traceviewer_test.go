package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestTraceViewer is the on-call path of docs/runbook.md, on a stack of
// its own with the real Jaeger (BANKBRIDGE_JAEGER_BIN, `make jaeger`) as
// its trace viewer, as `make dev` runs it: a balance call of dave, whose
// bank is down, fails with 503 BANK_UNAVAILABLE; the X-Trace-Id it
// answers, pasted into Jaeger's query API, gives the whole trace, with the
// spans of every hop — gateway, balance, consent and the sandbox bank.
func TestTraceViewer(t *testing.T) {
	bin := os.Getenv("BANKBRIDGE_JAEGER_BIN")
	if bin == "" {
		if os.Getenv("BANKBRIDGE_REQUIRE_JAEGER") == "1" {
			t.Fatal("BANKBRIDGE_REQUIRE_JAEGER=1 but BANKBRIDGE_JAEGER_BIN is not set: run make jaeger and set it to bin/jaeger")
		}
		t.Skip("BANKBRIDGE_JAEGER_BIN is not set (make jaeger builds bin/jaeger)")
	}
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	opts := stack.Options{
		Root: root, DataDir: t.TempDir(), FreePorts: true, Logs: logs, JaegerBin: bin,
		// Export each batch of spans within 50 ms instead of 5 s.
		Env: []string{"OTEL_BSP_SCHEDULE_DELAY=50"},
	}
	if err := stack.Build(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	// FreePorts picks ports free when asked; on a busy machine another
	// process may take one before its listener binds: start again then.
	var s *stack.Stack
	for range 3 {
		if s, err = stack.Start(t.Context(), opts); err == nil || !strings.Contains(logs.String(), "address already in use") {
			break
		}
		logs.Reset()
	}
	if err != nil {
		t.Fatalf("%v\n--- stack output ---\n%s", err, logs.String())
	}
	t.Cleanup(s.Stop)
	defer func() {
		if t.Failed() {
			t.Logf("--- stack output ---\n%s", logs.String())
		}
	}()
	if s.JaegerURL == "" || s.OTLPEndpoint == "" {
		t.Fatalf("stack with Jaeger: JaegerURL %q, OTLPEndpoint %q", s.JaegerURL, s.OTLPEndpoint)
	}

	gw := gatewayClient{t: t, url: s.GatewayURL, http: s.HTTPClient()}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	gw.do(http.MethodPost, "/v1/dev/tokens", "", "", `{"user":"dave"}`, http.StatusOK, &tok)
	var link struct {
		Link struct{ Name string } `json:"link"`
	}
	gw.do(http.MethodPost, "/v1/users/dave/links", tok.AccessToken, "CONSENT_MANAGEMENT",
		`{"bank_id":"sandbox","scopes":["SCOPE_ACCOUNTS","SCOPE_BALANCES"],"purposes":["PURPOSE_ACCOUNT_INFORMATION"],"bank_login_hint":"dave"}`,
		http.StatusOK, &link)
	gw.do(http.MethodPost, "/v1/"+link.Link.Name+":verify", tok.AccessToken, "CONSENT_MANAGEMENT", `{"code":"123456"}`, http.StatusOK, nil)

	// dave's bank is down: the balance call fails, and says which trace to
	// look for.
	var failed struct {
		Details []errorDetail `json:"details"`
	}
	h := gw.do(http.MethodGet, "/v1/users/dave/accounts/sandbox~acc-1/balance", tok.AccessToken, "ACCOUNT_INFORMATION", "",
		http.StatusServiceUnavailable, &failed)
	if !slices.ContainsFunc(failed.Details, func(d errorDetail) bool { return d.Reason == "BANK_UNAVAILABLE" }) {
		t.Fatalf("dave's balance: want reason BANK_UNAVAILABLE, got %+v", failed)
	}
	traceID := h.Get("X-Trace-Id")
	if len(traceID) != 32 {
		t.Fatalf("X-Trace-Id = %q, want a 32-digit trace id", traceID)
	}

	// Jaeger's query API, as the runbook has on-call paste the id into it.
	want := []string{"gateway", "balance", "consent", "sandbox"}
	var services []string
	if !testkit.Within(30*time.Second, func() bool {
		services = traceServices(t, s.JaegerURL, traceID)
		return !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(services, w) })
	}) {
		t.Fatalf("trace %s in Jaeger has spans of %q, want every hop %q", traceID, services, want)
	}
}

// errorDetail is the part of a google.rpc.Status detail the test reads.
type errorDetail struct {
	Type   string `json:"@type"`
	Reason string `json:"reason"`
}

// traceServices asks Jaeger for a trace and returns the services
// (process.serviceName) its spans came from, sorted; none while Jaeger
// does not have the trace yet.
func traceServices(t *testing.T, jaegerURL, traceID string) []string {
	t.Helper()
	resp, err := http.Get(jaegerURL + "/api/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /api/traces/%s: %d %s", traceID, resp.StatusCode, b)
	}
	var body struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []struct {
				ProcessID string `json:"processID"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tr := range body.Data {
		if tr.TraceID != traceID {
			t.Fatalf("asked for trace %s, Jaeger answered %s", traceID, tr.TraceID)
		}
		for _, sp := range tr.Spans {
			if name := tr.Processes[sp.ProcessID].ServiceName; !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// gatewayClient calls one stack's gateway (the shared helpers call the
// package's shared stack).
type gatewayClient struct {
	t    *testing.T
	url  string
	http *http.Client
}

// do makes one call, fails the test unless it answers status, decodes the
// body into out (when not nil) and returns the response headers.
func (g gatewayClient) do(method, path, token, purpose, body string, status int, out any) http.Header {
	g.t.Helper()
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.url+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set("Bankbridge-Purpose", purpose)
	}
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", randomKey())
	}
	resp, err := g.http.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		g.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, status)
	}
	if out != nil {
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
			g.t.Fatal(fmt.Errorf("%s %s: %w: %s", method, path, err, raw))
		}
	}
	return resp.Header
}
