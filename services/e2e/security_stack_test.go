package e2e

// More of the attacker's probes of docs/security.md, against the dev
// stack: the ones that need a second look at what the stack exports
// (spans, logs, metrics), a bank that misbehaves on purpose (the
// sandbox's leak switch), or a service run with its own limits for the
// length of one test (Stack.StopProcess and Restart with flags that win
// over the stack's; the process starts again with the stack's own flags
// when the test ends).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// Personal data an attacker (or a careless caller) puts where errors and
// telemetry might pick it up: a full IBAN and a full card number, in the
// forms they are written in.
const (
	probeIBAN        = "DE89370400440532013000"
	probeIBANSpaced  = "DE89 3704 0044 0532 0130 00"
	probeCard        = "4111111111111111"
	probeCardSpaced  = "4111 1111 1111 1111"
	wrongCode        = "000000"
	consentMgmt      = "CONSENT_MANAGEMENT"
	accountInfo      = "ACCOUNT_INFORMATION"
	retryInfoType    = "type.googleapis.com/google.rpc.RetryInfo"
	sandboxAdminPath = "/admin/leaks"
)

// personalForms are the forms of probeIBAN and probeCard, whole and in
// telling parts, that must appear in no telemetry.
var personalForms = []string{
	probeIBAN, probeIBANSpaced, "0532013000", "3704 0044", "370400440532",
	probeCard, probeCardSpaced, "41111111", "1111 1111",
}

// startLink starts a link of user's to the sandbox as login.
func startLink(t testing.TB, token, user, login string) rest {
	t.Helper()
	return call(t, http.MethodPost, "/v1/users/"+user+"/links", token, consentMgmt, map[string]any{
		"bank_id": "sandbox", "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
		"bank_login_hint": login,
	})
}

// linkName is the name of the link in r's body.
func linkName(t testing.TB, r rest) string {
	t.Helper()
	l, _ := r.body["link"].(map[string]any)
	name, _ := l["name"].(string)
	if name == "" {
		t.Fatalf("no link in %d %s", r.status, r.raw)
	}
	return name
}

func verifyCode(t testing.TB, token, link, code string) rest {
	t.Helper()
	return call(t, http.MethodPost, "/v1/"+link+":verify", token, consentMgmt, map[string]any{"code": code})
}

// retryAfter checks that r tells its caller when to come back, within
// limit: Retry-After in whole seconds, and RetryInfo in the body.
func retryAfter(t testing.TB, r rest, limit time.Duration) int {
	t.Helper()
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > limit+time.Second {
		t.Errorf("Retry-After = %q, want whole seconds in 1..%v; body %s", r.header.Get("Retry-After"), limit, r.raw)
	}
	details, _ := r.body["details"].([]any)
	for _, d := range details {
		if m, _ := d.(map[string]any); m["@type"] == retryInfoType {
			return secs
		}
	}
	t.Errorf("no RetryInfo in %s", r.raw)
	return secs
}

// requireRetryDelay checks a gRPC refusal's RetryInfo is within limit.
func requireRetryDelay(t testing.TB, err error, limit time.Duration) {
	t.Helper()
	if d := apierr.RetryDelay(err); d <= 0 || d > limit {
		t.Errorf("RetryInfo delay = %v, want in (0, %v]", d, limit)
	}
}

// restartWith stops process name and starts it again with flags after
// the stack's, for the rest of the test; it starts again with the
// stack's own flags when the test ends.
func restartWith(t *testing.T, name string, flags ...string) {
	t.Helper()
	if err := shared.stack.StopProcess(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.stack.StopProcess(name); err != nil {
			t.Error(err)
		}
		if err := shared.stack.Restart(context.Background(), name); err != nil {
			t.Fatalf("%s did not start again with the stack's flags: %v", name, err)
		}
	})
	if err := shared.stack.Restart(t.Context(), name, flags...); err != nil {
		t.Fatal(err)
	}
}

// Wrong codes count across links for one (user, bank, login): five of
// them, spread over two links, start a cooldown in which no code is
// taken, the right one neither, and no link is started, over REST (429
// with Retry-After) and gRPC (RESOURCE_EXHAUSTED with RetryInfo) alike.
func TestProbeWrongCodesCoolDownAcrossLinks(t *testing.T) {
	user := "probe-cool-" + randomKey()[:8]
	tok := devToken(t, user)
	var links []string
	for range 3 {
		r := startLink(t, tok, user, "alice")
		r.want(t, http.StatusOK, "")
		links = append(links, linkName(t, r))
	}
	// The login's limit is 5 within an hour (consent's default), the
	// bank's 5 per challenge: a fresh link would give fresh tries.
	for i, l := range []string{links[0], links[0], links[0], links[1], links[1]} {
		if r := verifyCode(t, tok, l, wrongCode); r.reason() != "SCA_FAILED" {
			t.Fatalf("wrong code %d: %d %s, want SCA_FAILED", i+1, r.status, r.raw)
		}
	}

	right := verifyCode(t, tok, links[2], sandbox.Code)
	right.want(t, http.StatusTooManyRequests, "SCA_COOLDOWN")
	retryAfter(t, right, time.Hour)
	verifyCode(t, tok, links[1], sandbox.Code).want(t, http.StatusTooManyRequests, "SCA_COOLDOWN")
	again := startLink(t, tok, user, "alice")
	again.want(t, http.StatusTooManyRequests, "SCA_COOLDOWN")
	retryAfter(t, again, time.Hour)

	cc := consentv1.NewConsentServiceClient(dial(t, shared.consent))
	ctx := grpcCtx(tok, consentMgmt)
	_, err := cc.VerifyLink(ctx, &consentv1.VerifyLinkRequest{Name: links[2], Code: sandbox.Code, IdempotencyKey: randomKey()})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
	requireRetryDelay(t, err, time.Hour)
	_, err = cc.CreateLink(ctx, &consentv1.CreateLinkRequest{Parent: "users/" + user, IdempotencyKey: randomKey(), Link: &consentv1.Link{
		BankId: "sandbox", BankLoginHint: "alice",
		Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS}, Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
	}})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
	requireRetryDelay(t, err, time.Hour)

	for _, l := range links {
		g := call(t, http.MethodGet, "/v1/"+l, tok, consentMgmt, nil)
		g.want(t, http.StatusOK, "")
		if state := g.body["link"].(map[string]any)["state"]; state == "CONSENT_STATE_VALID" {
			t.Errorf("%s is linked during the cooldown", l)
		}
	}
	// The cooldown is the login's: the user's other login at the bank is
	// taken (once a pending place is freed).
	call(t, http.MethodPost, "/v1/"+links[0]+":revoke", tok, consentMgmt, map[string]any{}).want(t, http.StatusOK, "")
	startLink(t, tok, user, "bob").want(t, http.StatusOK, "")
}

// Ten wrong codes sent at once on one link spend one of the challenge's
// five attempts each, one after the other: at most five are checked by
// the bank (SCA_FAILED, then SCA_LOCKED at the fifth), the others are
// refused before it (SCA_COOLDOWN while every attempt left is being
// checked, LINK_NOT_PENDING once it is locked), and the link ends LOCKED
// with none left. The
// login's own limit is lifted for the test (consent restarted with
// --sca-failure-limit=100), so the link's attempts alone hold, and every
// bank call takes 300 ms (the sandbox restarted with --latency), so the
// codes are all in flight at once.
func TestProbeCodesAtOnceSpendOneAttemptEach(t *testing.T) {
	restartWith(t, "sandbox", "--latency=300ms")
	restartWith(t, "consent", "--sca-failure-limit=100")
	user := "probe-once-" + randomKey()[:8]
	tok := devToken(t, user)
	r := startLink(t, tok, user, "alice")
	r.want(t, http.StatusOK, "")
	l := linkName(t, r)
	if left := r.body["link"].(map[string]any)["sca"].(map[string]any)["attempts_remaining"]; left != float64(5) {
		t.Fatalf("the challenge allows %v attempts, want the sandbox's 5", left)
	}

	before := bankVerifies(t)
	const n = 10
	answers := make([]rest, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = verifyCode(t, tok, l, fmt.Sprintf("%06d", 900000+i)) })
	}
	wg.Wait()
	got := map[string]int{}
	for _, a := range answers {
		got[a.reason()]++
	}
	// A code the bank checked is answered SCA_FAILED or SCA_LOCKED, or
	// LINK_NOT_PENDING when another one locked the link first; the bank's
	// own count of codes it was asked to check says how many reached it.
	if checked := got["SCA_FAILED"] + got["SCA_LOCKED"]; checked > 5 || got["SCA_LOCKED"] < 1 {
		t.Errorf("%d of %d codes sent at once were answered by the bank (answers %v), want at most the challenge's 5, one locking it", checked, n, got)
	}
	time.Sleep(500 * time.Millisecond) // the bank records a call once it has answered
	if reached := bankVerifies(t) - before; reached < 1 || reached > 5 {
		t.Errorf("%v of %d codes sent at once reached the bank (answers %v), want at most the challenge's 5", reached, n, got)
	}
	for _, a := range answers {
		switch a.reason() {
		case "SCA_FAILED", "SCA_LOCKED", "LINK_NOT_PENDING":
		case "SCA_COOLDOWN": // every attempt left was being checked
			retryAfter(t, a, 10*time.Second)
		default:
			t.Errorf("a code sent at once: %d %s", a.status, a.raw)
		}
	}
	g := call(t, http.MethodGet, "/v1/"+l, tok, consentMgmt, nil)
	g.want(t, http.StatusOK, "")
	sca, _ := g.body["link"].(map[string]any)["sca"].(map[string]any)
	if sca["status"] != "SCA_STATUS_LOCKED" || sca["attempts_remaining"] != nil {
		t.Errorf("challenge after the codes: %s, want LOCKED with none left (answers %v)", jsonOf(sca), got)
	}
	if right := verifyCode(t, tok, l, sandbox.Code); right.status == http.StatusOK {
		t.Errorf("the right code after the lock links: %s", right.raw)
	}
}

// A user over their per-user read limit gets 429 with Retry-After,
// RateLimit and RateLimit-Policy over REST, and RESOURCE_EXHAUSTED
// RATE_LIMITED with RetryInfo over gRPC; another user of the same client
// is served. The balance service runs with a limit of 3 reads a minute
// per user for the test, the dev stack's own limits being far higher.
func TestProbeAUserOverTheRateLimit(t *testing.T) {
	restartWith(t, "balance", "--rate-limit-read-user=3/1m:3")
	user, other := "probe-flood-"+randomKey()[:8], "probe-calm-"+randomKey()[:8]
	tok, otherTok := devToken(t, user), devToken(t, other)
	linkLogin(t, tok, user, "alice")
	linkLogin(t, otherTok, other, "alice")

	accounts := "/v1/users/" + user + "/accounts"
	for range 3 {
		call(t, http.MethodGet, accounts, tok, accountInfo, nil).want(t, http.StatusOK, "")
	}
	r := call(t, http.MethodGet, accounts, tok, accountInfo, nil)
	r.want(t, http.StatusTooManyRequests, "RATE_LIMITED")
	secs := retryAfter(t, r, time.Minute)
	if got := r.header.Get("RateLimit-Policy"); got != `"user";q=3;w=60` {
		t.Errorf("RateLimit-Policy = %q, want \"user\";q=3;w=60", got)
	}
	if got, want := r.header.Get("RateLimit"), fmt.Sprintf(`"user";r=0;t=%d`, secs); got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}

	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))
	_, err := c.ListAccounts(grpcCtx(tok, accountInfo), &balancev1.ListAccountsRequest{Parent: "users/" + user})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED)
	requireRetryDelay(t, err, time.Minute)

	call(t, http.MethodGet, "/v1/users/"+other+"/accounts", otherTok, accountInfo, nil).want(t, http.StatusOK, "")
	if _, err := c.ListAccounts(grpcCtx(otherTok, accountInfo), &balancev1.ListAccountsRequest{Parent: "users/" + other}); err != nil {
		t.Errorf("another user of the client is limited too: %v", err)
	}
}

var rpcServerCount = regexp.MustCompile(`(?m)^rpc_server_\w+_count\{([^}]*)\} ([0-9.e+]+)$`)

// bankVerifies is how many VerifySca calls the sandbox bank has served,
// as its admin listener's /metrics counts them.
func bankVerifies(t *testing.T) float64 {
	t.Helper()
	resp, err := shared.http.Get("https://" + shared.stack.AdminAddr("sandbox") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "rpc_server_call_duration_seconds_count{") {
		t.Fatalf("the sandbox's /metrics counts no calls:\n%s", grep(string(body), "rpc_server"))
	}
	sum := 0.0
	for _, m := range rpcServerCount.FindAllStringSubmatch(string(body), -1) {
		if strings.Contains(m[1], `rpc_method="bankbridge.adapter.v1.BankAdapterService/VerifySca"`) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// callWith is call with extra request headers.
func callWith(t testing.TB, method, path, token, purpose string, header http.Header) rest {
	t.Helper()
	req, _ := http.NewRequest(method, shared.stack.GatewayURL+path, nil)
	req.Header = header.Clone()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Bankbridge-Purpose", purpose)
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := rest{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// waitForTrace waits until the spans of trace id from every one of
// services have come in.
func waitForTrace(t *testing.T, id string, services ...string) {
	t.Helper()
	seen := map[string]bool{}
	ok := testkit.Within(10*time.Second, func() bool {
		for _, s := range shared.spans.trace(id) {
			seen[s.service] = true
		}
		for _, svc := range services {
			if !seen[svc] {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("trace %s: spans from %v, want %v", id, seen, services)
	}
}

// traceOf is the trace id the gateway answered r with.
func traceOf(t *testing.T, r rest) string {
	t.Helper()
	id := r.header.Get("X-Trace-Id")
	if len(id) != 32 {
		t.Fatalf("X-Trace-Id = %q", id)
	}
	return id
}

// A caller's W3C baggage goes nowhere: sent over REST and over gRPC, none
// of its members (keys or values) is in any span the stack exports, in
// any process's logs, or in what comes back. No part of the stack writes
// baggage it carries into telemetry today, so this probe catches baggage
// that is taken in and then surfaces (a baggage span processor, a log
// handler, an echoed header); that the edge drops it before any hop
// carries it is proven in the packages (TestCallersBaggageIsNotTakenIn,
// TestCallersBaggageStopsAtTheGateway).
func TestProbeCallersBaggageGoesNowhere(t *testing.T) {
	user := "probe-bag-" + randomKey()[:8]
	tok := devToken(t, user)
	linkLogin(t, tok, user, "alice")
	key, value := "probekey"+randomKey()[:8], "probevalue"+randomKey()[:8]
	baggage := key + "=" + value + ",bankbridge.user=" + value + "x;prop=" + value + "y"

	r := callWith(t, http.MethodGet, "/v1/users/"+user+"/accounts", tok, accountInfo, http.Header{"Baggage": {baggage}})
	r.want(t, http.StatusOK, "")
	for h, vs := range r.header {
		if contains(h+": "+strings.Join(vs, ","), key, value) {
			t.Errorf("the answer echoes the baggage: %s: %s", h, vs)
		}
	}
	if contains(r.raw, key, value) {
		t.Errorf("the body echoes the baggage: %s", r.raw)
	}

	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))
	var header, trailer metadata.MD
	ctx := metadata.AppendToOutgoingContext(grpcCtx(tok, accountInfo), "baggage", baggage)
	if _, err := c.ListAccounts(ctx, &balancev1.ListAccountsRequest{Parent: "users/" + user}, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	for k, vs := range metadata.Join(header, trailer) {
		if contains(k+": "+strings.Join(vs, ","), key, value) {
			t.Errorf("gRPC metadata echoes the baggage: %s: %s", k, vs)
		}
	}

	waitForTrace(t, traceOf(t, r), "gateway", "balance", "sandbox")
	time.Sleep(500 * time.Millisecond) // the gRPC call's spans, exported as often
	notInTelemetry(t, []string{key, value})
}

// Errors provoked with personal data in paths, query parameter names,
// bodies, gRPC request fields and gRPC method names — an IBAN and a card
// number where an account id, a bank id, a login or a method goes — leave
// none of it in any exported span (names, status descriptions,
// attributes, events) nor in any process's logs.
func TestProbePersonalDataInErrorsStaysOutOfTelemetry(t *testing.T) {
	user := "probe-pii-" + randomKey()[:8]
	tok := devToken(t, user)
	linkLogin(t, tok, user, "alice")
	base := "/v1/users/" + user + "/accounts/"
	var last rest
	for _, tt := range []struct {
		method, path, purpose string
		body                  any
	}{
		{http.MethodGet, base + "sandbox~" + probeIBAN + "/balance", accountInfo, nil},
		// An account id names its bank: refused as BANK_NOT_FOUND, whose
		// message names the bank id it was given.
		{http.MethodGet, base + probeIBAN + "~acc-1/balance", accountInfo, nil},
		{http.MethodGet, base + strings.ToLower(probeIBAN) + "~acc-1/transactions", accountInfo, nil},
		{http.MethodGet, base + probeCard + "~acc-1/balance", accountInfo, nil},
		{http.MethodGet, base + "sandbox~" + probeCard + "/transactions", accountInfo, nil},
		{http.MethodGet, base + url.PathEscape(probeIBANSpaced) + "/balance", accountInfo, nil},
		{http.MethodGet, base + url.PathEscape("sandbox~"+probeCardSpaced), accountInfo, nil},
		{http.MethodGet, "/v1/users/" + user + "/accounts?" + probeIBAN + "=" + probeCard, accountInfo, nil},
		{http.MethodPost, "/v1/users/" + user + "/links", consentMgmt, map[string]any{
			"bank_id": "sandbox", "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
			"bank_login_hint": probeCardSpaced,
		}},
		{http.MethodPost, "/v1/users/" + user + "/links", consentMgmt, map[string]any{
			"bank_id": probeIBAN, "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
		}},
		{http.MethodPost, "/v1/users/" + user + "/links", consentMgmt, map[string]any{
			"bank_id": strings.ToLower(probeIBAN), "scopes": []string{"SCOPE_ACCOUNTS"}, "purposes": []string{"PURPOSE_ACCOUNT_INFORMATION"},
			"bank_login_hint": "alice",
		}},
	} {
		r := call(t, tt.method, tt.path, tok, tt.purpose, tt.body)
		if r.status == http.StatusOK && tt.method == http.MethodGet {
			t.Errorf("%s %s: 200, want a refusal", tt.method, tt.path)
		}
		if r.status == http.StatusOK && tt.method == http.MethodPost {
			// The decoy link of an unknown login: a wrong code on it.
			if v := verifyCode(t, tok, linkName(t, r), probeCard[:6]); v.status == http.StatusOK {
				t.Errorf("a code on a decoy link passed: %s", v.raw)
			}
		}
		last = r
	}
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))
	ctx := grpcCtx(tok, accountInfo)
	for _, name := range []string{
		"users/" + user + "/accounts/sandbox~" + probeCard + "/balance",
		"users/" + user + "/accounts/" + probeCard + "~acc-1/balance",
		"users/" + user + "/accounts/" + probeIBANSpaced + "/balance",
	} {
		if _, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: name}); status.Code(err) == codes.OK {
			t.Errorf("GetBalance(%s) was served", name)
		}
	}

	// A method that does not exist, named with the data: its span is
	// named after the method, and its status says it is unknown.
	conn := dial(t, shared.balance)
	for _, method := range []string{
		"/bankbridge.balance.v1.BalanceService/" + probeIBAN,
		"/bankbridge.balance.v1.Balance" + probeCard + "/GetBalance",
	} {
		if err := conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want UNIMPLEMENTED", method, err)
		}
	}

	waitForTrace(t, traceOf(t, last), "gateway", "consent")
	time.Sleep(time.Second) // the other calls' spans, exported as often
	notInTelemetry(t, personalForms)
}

// sandboxAdmin sends method to the sandbox's admin listener.
func sandboxAdmin(t *testing.T, method, pathQuery string) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+shared.stack.AdminAddr("sandbox")+pathQuery, nil)
	resp, err := shared.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, pathQuery, resp.StatusCode, body)
	}
}

var leaksRefusedMetric = regexp.MustCompile(`(?m)^bankbridge_adapter_leaks_refused_total\{([^}]*)\} ([0-9.e+]+)$`)

// leaksRefused sums the balance service's count of sandbox responses
// refused for an unmasked number.
func leaksRefused(t *testing.T) float64 {
	t.Helper()
	resp, err := shared.http.Get("https://" + shared.balAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, m := range leaksRefusedMetric.FindAllStringSubmatch(string(body), -1) {
		if strings.Contains(m[1], `bank_id="sandbox"`) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// A bank whose adapter shows a full card number or IBAN in a masked
// account number (the sandbox's leak switch, on for bob only) is refused:
// the caller gets 503 BANK_UNAVAILABLE with a retry hint and never the
// number, over REST and gRPC, and the balance service counts the refusal
// on /metrics. Switched off, the same call is served.
func TestProbeALeakingBankIsRefused(t *testing.T) {
	user := "probe-leak-" + randomKey()[:8]
	tok := devToken(t, user)
	linkLogin(t, tok, user, "bob")
	t.Cleanup(func() { sandboxAdmin(t, http.MethodDelete, sandboxAdminPath+"?user=bob") })
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))
	accounts := "/v1/users/" + user + "/accounts"

	for _, tt := range []struct {
		leak  string
		forms []string
	}{
		{"card", []string{probeCard, probeCardSpaced, "1111 1111"}},
		{"iban", []string{probeIBAN, probeIBANSpaced, "3704 0044"}},
	} {
		t.Run(tt.leak, func(t *testing.T) {
			before := leaksRefused(t)
			sandboxAdmin(t, http.MethodPost, sandboxAdminPath+"?user=bob&leak="+tt.leak)
			r := call(t, http.MethodGet, accounts, tok, accountInfo, nil)
			r.want(t, http.StatusServiceUnavailable, "BANK_UNAVAILABLE")
			retryAfter(t, r, time.Minute)
			if contains(r.raw, tt.forms...) || contains(fmt.Sprint(r.header), tt.forms...) {
				t.Errorf("the caller sees the number: %s", r.raw)
			}
			_, err := c.ListAccounts(grpcCtx(tok, accountInfo), &balancev1.ListAccountsRequest{Parent: "users/" + user})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			if contains(fmt.Sprint(status.Convert(err).Proto()), tt.forms...) {
				t.Errorf("the gRPC caller sees the number: %v", err)
			}
			if after := leaksRefused(t); after < before+2 {
				t.Errorf("leaks refused: %v before, %v after two refused calls", before, after)
			}
		})
	}
	sandboxAdmin(t, http.MethodDelete, sandboxAdminPath+"?user=bob")
	r := call(t, http.MethodGet, accounts, tok, accountInfo, nil)
	r.want(t, http.StatusOK, "")
	if contains(r.raw, probeCard, probeIBAN) {
		t.Errorf("switched off, the bank still leaks: %s", r.raw)
	}
	notInTelemetry(t, []string{probeCardSpaced, probeIBANSpaced})
}
