package e2e

import (
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

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// Sandbox fixtures (adapters/sandbox/fixtures.go) the assertions rely on.
const (
	aliceChecking      = "users/alice/accounts/sandbox~acc-alice-checking"
	aliceCheckingLast4 = "4821"
	availableUnits     = 2387 // INTERIM_AVAILABLE of alice's checking: EUR 2,387.11
	availableNanos     = 110000000
)

// TestBalanceOverREST walks the first path a product team calls, through
// the gateway, and the refusals they must be able to tell apart.
func TestBalanceOverREST(t *testing.T) {
	alice := devToken(t, "alice")
	const info = "ACCOUNT_INFORMATION"

	t.Run("without consent: 403 CONSENT_REQUIRED", func(t *testing.T) {
		call(t, http.MethodGet, "/v1/users/alice/accounts", alice, info, nil).want(t, http.StatusForbidden, "CONSENT_REQUIRED")
	})
	link(t, alice, "alice")

	t.Run("accounts, masked numbers only", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/users/alice/accounts", alice, info, nil)
		r.want(t, http.StatusOK, "")
		accounts, _ := r.body["accounts"].([]any)
		if len(accounts) != 2 {
			t.Fatalf("alice has %d accounts, want 2: %s", len(accounts), r.raw)
		}
		if !strings.Contains(r.raw, `"name":"`+aliceChecking+`"`) || !strings.Contains(r.raw, `"last4":"`+aliceCheckingLast4+`"`) {
			t.Errorf("checking account or its last4 missing: %s", r.raw)
		}
		if contains(r.raw, "account_number", "iban", "DE89") {
			t.Errorf("an unmasked number field leaked: %s", r.raw)
		}
	})
	t.Run("balance with exact money", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", alice, info, nil)
		r.want(t, http.StatusOK, "")
		var got struct {
			Balance struct {
				Balances []struct {
					Type   string `json:"type"`
					Amount struct {
						CurrencyCode string `json:"currency_code"`
						Units        string `json:"units"`
						Nanos        int32  `json:"nanos"`
					} `json:"amount"`
				} `json:"balances"`
			} `json:"balance"`
		}
		if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, b := range got.Balance.Balances {
			if b.Type == "BALANCE_TYPE_INTERIM_AVAILABLE" {
				found = true
				if b.Amount.CurrencyCode != "EUR" || b.Amount.Units != strconv.Itoa(availableUnits) || b.Amount.Nanos != availableNanos {
					t.Errorf("INTERIM_AVAILABLE = %+v, want EUR %d.%09d", b.Amount, availableUnits, availableNanos)
				}
			}
		}
		if !found {
			t.Errorf("no INTERIM_AVAILABLE balance in %s", r.raw)
		}
		if r.body["balance"].(map[string]any)["stale"] == true {
			t.Error("a fresh balance is marked stale")
		}
	})
	t.Run("bob's token on alice's path: 403 USER_MISMATCH", func(t *testing.T) {
		call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", devToken(t, "bob"), info, nil).want(t, http.StatusForbidden, "USER_MISMATCH")
	})
	t.Run("purpose ADVERTISING: 403 PURPOSE_NOT_ALLOWED", func(t *testing.T) {
		call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", alice, "ADVERTISING", nil).want(t, http.StatusForbidden, "PURPOSE_NOT_ALLOWED")
	})
	t.Run("an unknown bank: 404 BANK_NOT_FOUND", func(t *testing.T) {
		call(t, http.MethodGet, "/v1/users/alice/accounts?bank_id=nobank", alice, info, nil).want(t, http.StatusNotFound, "BANK_NOT_FOUND")
		call(t, http.MethodGet, "/v1/users/alice/accounts/nobank~a1/balance", alice, info, nil).want(t, http.StatusNotFound, "NOT_FOUND")
	})
	t.Run("bad page size: 400 with the field path", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/users/alice/accounts?page_size=1000", alice, info, nil)
		r.want(t, http.StatusBadRequest, "INVALID_ARGUMENT")
		if !strings.Contains(r.raw, `"field":"page_size"`) {
			t.Errorf("no violation on page_size: %s", r.raw)
		}
	})
	t.Run("dave's bank is down: 503 BANK_UNAVAILABLE", func(t *testing.T) {
		dave := devToken(t, "dave")
		link(t, dave, "dave")
		r := call(t, http.MethodGet, "/v1/users/dave/accounts", dave, info, nil)
		r.want(t, http.StatusServiceUnavailable, "BANK_UNAVAILABLE")
		if !strings.Contains(r.raw, "google.rpc.RetryInfo") {
			t.Errorf("no RetryInfo: %s", r.raw)
		}
	})
	t.Run("pending then posted", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/"+aliceChecking+"/transactions", alice, info, nil)
		r.want(t, http.StatusOK, "")
		if !strings.Contains(r.raw, "TRANSACTION_STATUS_PENDING") || !strings.Contains(r.raw, "TRANSACTION_STATUS_BOOKED") {
			t.Errorf("want pending and booked transactions: %s", r.raw)
		}
	})
}

// TestBalanceOverGRPC makes the same checks straight against the services.
func TestBalanceOverGRPC(t *testing.T) {
	erin := devToken(t, "erin") // a user without a link
	bob := devToken(t, "bob")
	link(t, bob, "bob")
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))

	ctx := grpcCtx(bob, "ACCOUNT_INFORMATION")
	list, err := c.ListAccounts(ctx, &balancev1.ListAccountsRequest{Parent: "users/bob"})
	if err != nil || len(list.GetAccounts()) != 1 {
		t.Fatalf("bob's accounts = %v, %v; want one savings account", list, err)
	}
	bal, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: list.GetAccounts()[0].GetName() + "/balance"})
	if err != nil || len(bal.GetBalance().GetBalances()) == 0 {
		t.Fatalf("bob's balance = %v, %v", bal, err)
	}
	tests := []struct {
		name   string
		call   func() error
		reason commonv1.ErrorReason
	}{
		{name: "no consent", call: func() error {
			_, err := c.ListAccounts(grpcCtx(erin, "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/erin"})
			return err
		}, reason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{name: "another user's path", call: func() error {
			_, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
			return err
		}, reason: commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH},
		{name: "advertising", call: func() error {
			_, err := c.ListAccounts(grpcCtx(bob, "ADVERTISING"), &balancev1.ListAccountsRequest{Parent: "users/bob"})
			return err
		}, reason: commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{name: "bank down", call: func() error {
			dave := devToken(t, "dave")
			link(t, dave, "dave")
			_, err := c.ListAccounts(grpcCtx(dave, "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/dave"})
			return err
		}, reason: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
		{name: "bad page size", call: func() error {
			_, err := c.ListAccounts(ctx, &balancev1.ListAccountsRequest{Parent: "users/bob", PageSize: 1000})
			return err
		}, reason: commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.RequireReason(t, tt.call(), tt.reason)
		})
	}
}

// TestOneTraceAcrossEveryHop checks that a REST call yields one trace from
// the gateway through balance and its adapter client to the sandbox bank,
// whose id is the x-trace-id the caller got, and that no fixture account
// number or amount is in any span attribute or log line.
func TestOneTraceAcrossEveryHop(t *testing.T) {
	alice := devToken(t, "alice")
	link(t, alice, "alice")
	r := call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", alice, "ACCOUNT_INFORMATION", nil)
	r.want(t, http.StatusOK, "")
	traceID := r.header.Get("X-Trace-Id")
	if len(traceID) != 32 {
		t.Fatalf("X-Trace-Id = %q", traceID)
	}
	want := map[string]bool{"gateway": false, "balance": false, "balance→adapter": false, "sandbox": false}
	ok := testkit.Within(10*time.Second, func() bool {
		for _, s := range shared.spans.trace(traceID) {
			switch {
			case s.service == "gateway":
				want["gateway"] = true
			case s.service == "balance" && strings.Contains(s.name, "BalanceService/GetBalance"):
				want["balance"] = true
			case s.service == "balance" && strings.Contains(s.name, "BankAdapterService/GetBalances"):
				want["balance→adapter"] = true
			case s.service == "sandbox" && strings.Contains(s.name, "BankAdapterService/GetBalances"):
				want["sandbox"] = true
			}
		}
		for _, seen := range want {
			if !seen {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("trace %s covers %v, want every hop", traceID, want)
	}

	// Distinctive forms of alice's data: her account's name, masked display
	// and bank id, amounts as the wire and a formatter would write them,
	// and her token. (A bare "4821" would also match timestamps.)
	forbidden := []string{
		"Everyday account", "••48 21", "acc-alice-checking",
		`"` + strconv.Itoa(availableUnits) + `"`, "2387.11", "2,387.11", "238711", "1951.6", "195160",
		alice,
	}
	notInTelemetry(t, forbidden)
}

// notInTelemetry fails t for each of forbidden found in a span the stack
// exported so far — its name, status description, attributes or events
// (span.texts) — or in its logs.
func notInTelemetry(t *testing.T, forbidden []string) {
	t.Helper()
	for _, s := range shared.spans.all() {
		for _, v := range s.texts() {
			for _, f := range forbidden {
				if strings.Contains(v, f) {
					t.Errorf("span %s/%q carries %q: %s", s.service, s.name, f, v)
				}
			}
		}
	}
	logs := testkit.WithoutRandomFields(shared.logs.String())
	for _, f := range forbidden {
		if strings.Contains(logs, f) {
			t.Errorf("logs carry %q", f)
		}
	}
}

// TestVaultReadOncePerRefresh: a burst of 1,000 balance calls reads the
// sandbox's credential from Vault at most once (the refresh interval is
// minutes long), as the provider's read counter on /metrics shows.
func TestVaultReadOncePerRefresh(t *testing.T) {
	alice := devToken(t, "alice")
	link(t, alice, "alice")
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))
	ctx := grpcCtx(alice, "ACCOUNT_INFORMATION")
	if _, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"}); err != nil {
		t.Fatal(err)
	}
	before := vaultReads(t)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"}); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := vaultReads(t)
	if after-before > 1 {
		t.Errorf("1,000 calls read Vault %v times, want at most once per refresh interval", after-before)
	}
	if before < 1 {
		t.Errorf("the counter shows %v reads before the burst; the credential was never read from Vault?", before)
	}
}

var readsMetric = regexp.MustCompile(`(?m)^bankbridge_credentials_reads_total\{[^}]*bank_id="sandbox"[^}]*bankbridge_outcome="ok"[^}]*\} ([0-9.e+]+)$`)

func vaultReads(t *testing.T) float64 {
	t.Helper()
	resp, err := shared.http.Get("https://" + shared.balAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := readsMetric.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no sandbox read counter in /metrics:\n%s", grep(string(body), "credentials"))
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAPageTokenOutlivesARestart pages alice's transactions two at a time
// and restarts balance between two pages: the stack gives every service
// the one --page-token-key (as replicas share one), so the restarted
// process reads the token the old one minted and serves the next page.
// It needs the sandbox bank, so it runs before outage_test.go stops it
// (file order).
func TestAPageTokenOutlivesARestart(t *testing.T) {
	const info = "ACCOUNT_INFORMATION"
	alice := devToken(t, "alice")
	link(t, alice, "alice")
	list := "/v1/" + aliceChecking + "/transactions?page_size=2"
	first := call(t, http.MethodGet, list, alice, info, nil)
	first.want(t, http.StatusOK, "")
	token, _ := first.body["next_page_token"].(string)
	if token == "" {
		t.Fatalf("no next_page_token after two of alice's transactions: %s", first.raw)
	}

	s := shared.stack
	if err := s.StopProcess("balance"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(t.Context(), "balance"); err != nil {
		t.Fatal(err)
	}
	next := call(t, http.MethodGet, list+"&page_token="+url.QueryEscape(token), alice, info, nil)
	next.want(t, http.StatusOK, "")
	names := func(r rest) map[string]bool {
		out := map[string]bool{}
		txs, _ := r.body["transactions"].([]any)
		for _, tx := range txs {
			name, _ := tx.(map[string]any)["name"].(string)
			out[name] = true
		}
		return out
	}
	got, before := names(next), names(first)
	if len(got) == 0 {
		t.Fatalf("the next page is empty: %s", next.raw)
	}
	for name := range got {
		if before[name] {
			t.Errorf("the next page repeats %s from the first", name)
		}
	}
}
