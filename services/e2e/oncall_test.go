package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/prototext"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
)

// TestOnCallFollowsAFailingBank is the page on-call gets — "accounts
// calls fail with 503, here is an X-Trace-Id" — followed from outside the
// processes: dave's bank fails every call; the trace id of his 503 is in
// the gateway's access log, in balance's failed-call line (WARN, with the
// bank, the reason, the breaker state and pseudonymous user and link
// references, never his id) and in the sandbox's per-call log; balance's
// /metrics counts the failures under bank_id="sandbox"; once enough have
// failed the breaker gauge says open (2), and so does /banks.
//
// balance runs with a breaker that opens after 10 calls and stays open
// for the test, so the check does not race the breaker's timer; it starts
// again with the stack's flags (breaker closed) when the test ends.
func TestOnCallFollowsAFailingBank(t *testing.T) {
	banks := filepath.Join(t.TempDir(), "banks.yaml")
	base, err := os.ReadFile(filepath.Join(shared.stack.DataDir(), "banks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The stack's one bank, sandbox, is the file's last entry.
	const breaker = "    breaker:\n      min_requests: 10\n      failure_ratio: 0.5\n      window: 1m\n      open_for: 10m\n"
	if err := os.WriteFile(banks, append(base, breaker...), 0o600); err != nil {
		t.Fatal(err)
	}
	restartWith(t, "balance", "--banks="+banks)
	balAdmin := shared.stack.AdminAddr("balance")

	const info = "ACCOUNT_INFORMATION"
	dave := devToken(t, "dave")
	link(t, dave, "dave")
	balance := "/v1/users/dave/accounts/sandbox~acc-dave-checking/balance"
	first := call(t, http.MethodGet, balance, dave, info, nil)
	first.want(t, http.StatusServiceUnavailable, "BANK_UNAVAILABLE")
	trace := traceOf(t, first)

	// The first hop, the service and the bank each logged the call under
	// its trace id.
	gw := logLine(t, "gateway", trace, func(l map[string]any) bool { return l["msg"] == "access" })
	if gw["route"] != "/v1/users/{user}/accounts/{account}/balance" || gw["method"] != "GET" ||
		gw["status"] != float64(http.StatusServiceUnavailable) || gw["reason"] != "BANK_UNAVAILABLE" || gw["duration_ms"] == nil {
		t.Errorf("gateway access log line: %v; want route template, method, status 503, reason, duration", gw)
	}
	bal := logLine(t, "balance", trace, func(l map[string]any) bool { return l["msg"] == "bank call failed" })
	if bal["level"] != "WARN" || bal["bank_id"] != "sandbox" || bal["reason"] != "BANK_UNAVAILABLE" ||
		bal["adapter_status"] != "UNAVAILABLE" || bal["breaker_state"] != "closed" {
		t.Errorf("balance's failed-call line: %v; want WARN, bank_id sandbox, reason and adapter status, breaker closed", bal)
	}
	userRef, _ := bal["user_ref"].(string)
	linkRef, _ := bal["link_ref"].(string)
	if !regexp.MustCompile(`^u_[0-9a-f]{16}$`).MatchString(userRef) || !regexp.MustCompile(`^l_[0-9a-f]{16}$`).MatchString(linkRef) {
		t.Errorf("balance's failed-call line has user_ref %q, link_ref %q; want u_ and l_ and 16 hex digits", userRef, linkRef)
	}
	sbx := logLine(t, "sandbox", trace, func(l map[string]any) bool { return l["msg"] == "bank call" })
	// The adapter RPC balance called (it lists the accounts first, to check
	// the account is dave's), as the sandbox and balance both name it.
	method, _ := sbx["method"].(string)
	if sbx["level"] != "WARN" || sbx["outcome"] != "BANK_UNAVAILABLE" || method == "" || bal["method"] != method {
		t.Errorf("sandbox's per-call line: %v; want WARN, outcome BANK_UNAVAILABLE, the method balance's line names (%v)", sbx, bal["method"])
	}
	for name, line := range map[string]map[string]any{"gateway": gw, "balance": bal, "sandbox": sbx} {
		raw, _ := json.Marshal(line)
		if strings.Contains(string(raw), "dave") {
			t.Errorf("%s's line names the user: %s", name, raw)
		}
	}

	// Dave's calls go on failing until the breaker opens; his user
	// reference is the same on every call.
	opened := false
	for range 30 {
		r := call(t, http.MethodGet, balance, dave, info, nil)
		r.want(t, http.StatusServiceUnavailable, "BANK_UNAVAILABLE")
		if strings.Contains(r.raw, "circuit breaker open") {
			opened = true
			break
		}
	}
	if !opened {
		t.Fatal("the breaker did not open after 30 failed calls")
	}
	again := logLine(t, "balance", traceOf(t, call(t, http.MethodGet, balance, dave, info, nil)),
		func(l map[string]any) bool { return l["msg"] == "bank call failed" })
	if again["user_ref"] != userRef || again["breaker_state"] != "open" || again["reason"] != "BANK_UNAVAILABLE" {
		t.Errorf("a call refused by the open breaker logged %v; want the same user_ref %s, breaker_state open", again, userRef)
	}

	metrics := scrape(t, balAdmin)
	failures := metricValue(t, metrics, "bankbridge_adapter_calls_total",
		`bank_id="sandbox"`, `method="`+method+`"`, `outcome="BANK_UNAVAILABLE"`)
	if failures < 10 {
		t.Errorf("bankbridge_adapter_calls_total{bank_id=sandbox,outcome=BANK_UNAVAILABLE} = %v, want at least the 10 that opened the breaker", failures)
	}
	if n := metricValue(t, metrics, "bankbridge_adapter_duration_seconds_count",
		`bank_id="sandbox"`, `method="`+method+`"`, `outcome="BANK_UNAVAILABLE"`); n != failures {
		t.Errorf("duration histogram counts %v calls, the counter %v", n, failures)
	}
	if v := metricValue(t, metrics, "bankbridge_adapter_breaker_state", `bank_id="sandbox"`); v != 2 {
		t.Errorf("bankbridge_adapter_breaker_state{bank_id=sandbox} = %v, want 2 (open)", v)
	}
	if strings.Contains(metrics, "user_ref") || strings.Contains(metrics, userRef) {
		t.Error("a user reference is in /metrics: references are for logs only")
	}

	var page struct {
		Banks []struct {
			BankID          string  `json:"bank_id"`
			Breaker         string  `json:"breaker"`
			ErrorRate       float64 `json:"error_rate"`
			LastError       string  `json:"last_error"`
			LastErrorReason string  `json:"last_error_reason"`
		} `json:"banks"`
	}
	if err := json.Unmarshal([]byte(get(t, "https://"+balAdmin+"/banks", http.StatusOK)), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Banks) != 1 || page.Banks[0].BankID != "sandbox" || page.Banks[0].Breaker != "open" ||
		page.Banks[0].LastErrorReason != "BANK_UNAVAILABLE" || page.Banks[0].ErrorRate <= 0.5 || page.Banks[0].LastError == "" {
		t.Errorf("/banks: %+v; want sandbox open, last error BANK_UNAVAILABLE, error rate above the breaker's 0.5", page.Banks)
	}
	if text := get(t, "https://"+balAdmin+"/banks?format=text", http.StatusOK); !regexp.MustCompile(`(?m)^sandbox\s+open\s`).MatchString(text) {
		t.Errorf("/banks as text:\n%s\nwant a row: sandbox open", text)
	}

	// Blast radius: the operator's look-up of the 503's trace id answers
	// dave's access (balance's GetBalance, refused BANK_UNAVAILABLE) under
	// the user_ref balance's log line carries, and never his id; dave's
	// own access log then shows that on-call looked.
	op := call(t, http.MethodPost, "/v1/dev/tokens", "", "", map[string]bool{"operator": true})
	opTok, _ := op.body["access_token"].(string)
	if op.status != http.StatusOK || opTok == "" {
		t.Fatalf("operator dev token: %d %s", op.status, op.raw)
	}
	found, err := consentv1.NewConsentOperatorServiceClient(dial(t, shared.consent)).LookupAccessByTrace(
		metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+opTok),
		&consentv1.LookupAccessByTraceRequest{TraceId: trace})
	if err != nil {
		t.Fatalf("operator look-up of trace %s: %v", trace, err)
	}
	var daves int
	for _, e := range found.GetEntries() {
		if e.GetUserRef() == userRef && e.GetResourceKind() == "balance" && e.GetReason() == "BANK_UNAVAILABLE" &&
			e.GetOutcome() == consentv1.AccessOutcome_ACCESS_OUTCOME_DENIED {
			daves++
		}
	}
	if daves != 1 || strings.Contains(prototext.Format(found), "dave") {
		t.Errorf("look-up of trace %s: %v; want one refused balance access under balance's user_ref %s, and no user id", trace, found.GetEntries(), userRef)
	}
	log := call(t, http.MethodGet, "/v1/users/dave/accessLog?page_size=5", dave, "CONSENT_MANAGEMENT", nil)
	log.want(t, http.StatusOK, "")
	var looked bool
	for _, e := range asList(log.body["entries"]) {
		if e["client_id"] == "dev-oncall" && e["resource"] == "traces/"+trace && e["purpose"] == "PURPOSE_INCIDENT_RESPONSE" {
			looked = true
		}
	}
	if !looked {
		t.Errorf("dave's access log shows no operator look-up of traces/%s: %s", trace, log.raw)
	}
}

// TestOnCallAdminEndpoints: the gateway and the sandbox bank have the
// admin listener every service has: alive, ready, and Prometheus metrics.
func TestOnCallAdminEndpoints(t *testing.T) {
	for _, name := range []string{"gateway", "sandbox"} {
		admin := shared.stack.AdminAddr(name)
		if admin == "" {
			t.Fatalf("%s has no admin listener", name)
		}
		get(t, "https://"+admin+"/healthz", http.StatusOK)
		get(t, "https://"+admin+"/readyz", http.StatusOK)
		if m := get(t, "https://"+admin+"/metrics", http.StatusOK); !strings.Contains(m, "# TYPE ") {
			t.Errorf("%s /metrics is not a Prometheus exposition:\n%.300s", name, m)
		}
	}
	// The sandbox said at start which of its failures are on purpose.
	logLine(t, "sandbox", "", func(l map[string]any) bool {
		return l["msg"] == "sandbox bank fault injection" && strings.Contains(l["bankbridge.fault_customers"].(string), "dave")
	})
}

// logLine returns the first JSON line of process name's log file with
// trace id trace ("" for any) that match accepts, waiting a little for
// the stack to copy the process's output to the file.
func logLine(t *testing.T, name, trace string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	path := shared.stack.LogFile(name)
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil || (trace != "" && l["trace_id"] != trace) {
				continue
			}
			if match(l) {
				_ = f.Close()
				return l
			}
		}
		_ = f.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no matching line with trace_id %q in %s", trace, path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := shared.http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, body)
	}
	return string(body)
}

func scrape(t *testing.T, admin string) string {
	t.Helper()
	return get(t, "https://"+admin+"/metrics", http.StatusOK)
}

// metricValue returns the value of the one series of metric whose labels
// include every one of labels.
func metricValue(t *testing.T, exposition, metric string, labels ...string) float64 {
	t.Helper()
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + `\{([^}]*)\} ([0-9.e+-]+)$`)
	for _, m := range line.FindAllStringSubmatch(exposition, -1) {
		all := true
		for _, l := range labels {
			if !strings.Contains(","+m[1]+",", ","+l+",") {
				all = false
			}
		}
		if all {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	t.Fatalf("no series %s{%s} in /metrics:\n%s", metric, strings.Join(labels, ","), grep(exposition, metric))
	return 0
}
