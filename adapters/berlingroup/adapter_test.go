package berlingroup_test

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/berlingroup"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

var allScopes = []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS}

func startReq(login string, method adapterv1.ScaMethod, key string) *adapterv1.StartScaRequest {
	return &adapterv1.StartScaRequest{
		UserReference: "user-1", LoginHint: login, Scopes: allScopes,
		ValidUntil: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)), PreferredMethod: method, IdempotencyKey: key,
	}
}

// link links login with EMBEDDED SCA and returns the consent id.
func (e *env) link(t *testing.T, login string) string {
	t.Helper()
	start, err := e.client.StartSca(ctx(t), startReq(login, adapterv1.ScaMethod_SCA_METHOD_OTP, "start-"+login+"-"+rand.Text()))
	if err != nil {
		t.Fatalf("StartSca: %v", err)
	}
	v, err := e.client.VerifySca(ctx(t), &adapterv1.VerifyScaRequest{BankConsentId: start.GetBankConsentId(), Code: xs2asandbox.OTP, IdempotencyKey: "verify-" + rand.Text()})
	if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("VerifySca: %v, %v", v, err)
	}
	return v.GetBankConsentId()
}

// wantReason fails unless err carries reason (and so its status code).
func wantReason(t *testing.T, what string, err error, reason commonv1.ErrorReason) {
	t.Helper()
	if got := apierr.Reason(err); got != reason || status.Code(err) != apierr.Code(reason) {
		t.Errorf("%s: got %s (%s), want %s (%s)", what, status.Code(err), got, apierr.Code(reason), reason)
	}
}

func TestEmbeddedSCA(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	start, err := e.client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_UNSPECIFIED, "embedded-1"))
	if err != nil {
		t.Fatal(err)
	}
	if start.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP || start.GetChallengeText() != "Enter the code your bank sent you by text message." {
		t.Errorf("StartSca: method %s, text %q; want OTP and bankbridge's own text for SMS_OTP", start.GetMethod(), start.GetChallengeText())
	}
	if strings.Contains(start.GetChallengeText(), xs2asandbox.OTP) {
		t.Error("StartSca passes the bank's challengeData (which shows the code) to the customer")
	}
	id := start.GetBankConsentId()
	verify := func(code, key string) (*adapterv1.VerifyScaResponse, error) {
		return e.client.VerifySca(ctx(t), &adapterv1.VerifyScaRequest{BankConsentId: id, Code: code, IdempotencyKey: key})
	}
	_, err = verify("111111", "wrong-key-1")
	wantReason(t, "first wrong code", err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	_, err = verify("111111", "wrong-key-1") // a retry spends no attempt
	wantReason(t, "first wrong code retried", err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	_, err = verify("222222", "wrong-key-2")
	wantReason(t, "second wrong code", err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	v, err := verify(xs2asandbox.OTP, "good-key-1")
	if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("good code after two wrong ones: %v, %v", v, err)
	}
	if d := time.Until(v.GetValidUntil().AsTime()); d < 29*24*time.Hour || d > 32*24*time.Hour {
		t.Errorf("valid_until is %s away, want the end of the requested day, ~30 days", d)
	}

	locked, err := e.client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_OTP, "embedded-2"))
	if err != nil {
		t.Fatal(err)
	}
	id = locked.GetBankConsentId()
	for i := range xs2asandbox.MaxOTPAttempts {
		_, err = verify("333333", "lock-key-"+string(rune('a'+i)))
	}
	wantReason(t, "last allowed wrong code", err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
	_, err = verify(xs2asandbox.OTP, "lock-good-key")
	wantReason(t, "good code after the lock", err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
}

func TestDecoupledSCA(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	for _, tt := range []struct {
		name    string
		approve bool
		want    adapterv1.ScaStatus
	}{
		{"approved", true, adapterv1.ScaStatus_SCA_STATUS_FINALISED},
		{"denied", false, adapterv1.ScaStatus_SCA_STATUS_FAILED},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start, err := e.client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_DECOUPLED, "decoupled-"+tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if start.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_DECOUPLED {
				t.Fatalf("method %s, want DECOUPLED", start.GetMethod())
			}
			poll := func(key string) *adapterv1.VerifyScaResponse {
				v, err := e.client.VerifySca(ctx(t), &adapterv1.VerifyScaRequest{BankConsentId: start.GetBankConsentId(), IdempotencyKey: key})
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if got := poll("poll-1-" + tt.name).GetStatus(); got != adapterv1.ScaStatus_SCA_STATUS_STARTED {
				t.Errorf("before the PSU answered: %s, want STARTED", got)
			}
			if !e.bank.Approve(start.GetBankConsentId(), tt.approve) {
				t.Fatal("the sandbox had nothing to approve")
			}
			if got := poll("poll-2-" + tt.name).GetStatus(); got != tt.want {
				t.Errorf("after the PSU answered: %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRedirectSCA(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	req := startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_REDIRECT, "redirect-1")
	req.ReturnUri = "https://app.example/linked?state=abc"
	start, err := e.client.StartSca(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if start.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_REDIRECT || !strings.HasPrefix(start.GetRedirectUri(), e.bankURL+"/sandbox/sca/") {
		t.Fatalf("StartSca: %s %q, want REDIRECT to the bank's page", start.GetMethod(), start.GetRedirectUri())
	}
	v, err := e.client.VerifySca(ctx(t), &adapterv1.VerifyScaRequest{BankConsentId: start.GetBankConsentId(), IdempotencyKey: "redirect-poll-1"})
	if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_STARTED {
		t.Fatalf("before the PSU came back: %v, %v", v, err)
	}
	// The PSU opens the page (the sandbox approves) and is sent back.
	browser := httpClient(t, e.pki.ClientCert, e.pki.ClientKey, e.pki.CAFile)
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(start.GetRedirectUri())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != req.GetReturnUri() {
		t.Errorf("the bank's page answered %d to %q, want 302 to the return_uri", resp.StatusCode, resp.Header.Get("Location"))
	}
	v, err = e.client.VerifySca(ctx(t), &adapterv1.VerifyScaRequest{BankConsentId: start.GetBankConsentId(), IdempotencyKey: "redirect-poll-2"})
	if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("after the PSU came back: %v, %v", v, err)
	}
}

func TestBalancesMapping(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	consent := e.link(t, xs2asandbox.PSUAnna)
	accounts, err := e.client.ListAccounts(ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: consent})
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts.GetAccounts()) != 2 {
		t.Fatalf("ListAccounts: %d accounts, want anna's 2", len(accounts.GetAccounts()))
	}
	cur := accounts.GetAccounts()[0]
	if cur.GetMaskedNumber().GetLast4() != "3000" || cur.GetType() != adapterv1.AccountType_ACCOUNT_TYPE_CURRENT ||
		accounts.GetAccounts()[1].GetType() != adapterv1.AccountType_ACCOUNT_TYPE_SAVINGS {
		t.Errorf("ListAccounts: %v", accounts)
	}
	b, err := e.client.GetBalances(ctx(t), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: cur.GetBankAccountId()})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		units       int64
		nanos       int32
		creditLimit bool
	}
	wants := map[adapterv1.BalanceType]want{
		adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED:    {1520, 350_000_000, false},
		adapterv1.BalanceType_BALANCE_TYPE_EXPECTED:          {1484, 100_000_000, false},
		adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE: {2984, 100_000_000, true},
	}
	if len(b.GetBalances()) != len(wants) {
		t.Errorf("GetBalances: %d balances, want %d (\"information\" has no bankbridge type)", len(b.GetBalances()), len(wants))
	}
	for _, bal := range b.GetBalances() {
		w, ok := wants[bal.GetType()]
		if !ok || bal.GetAmount().GetUnits() != w.units || bal.GetAmount().GetNanos() != w.nanos ||
			bal.GetAmount().GetCurrencyCode() != "EUR" || bal.GetCreditLimitIncluded() != w.creditLimit {
			t.Errorf("GetBalances: %v, want %+v", bal, w)
		}
	}
}

func TestTransactionPosts(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	consent := e.link(t, xs2asandbox.PSUAnna)
	sync := func(cursor string) *adapterv1.SyncTransactionsResponse {
		r, err := e.client.SyncTransactions(ctx(t), &adapterv1.SyncTransactionsRequest{BankConsentId: consent, BankAccountId: "acc-anna-cur", Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := sync("")
	var pending []string
	for _, tx := range first.GetAdded() {
		if tx.GetStatus() == adapterv1.TransactionStatus_TRANSACTION_STATUS_PENDING {
			pending = append(pending, tx.GetTransactionId())
		}
	}
	if len(first.GetAdded()) != 7 || strings.Join(pending, ",") != "p.tx-anna-006,p.tx-anna-007" || first.GetHasMore() {
		t.Fatalf("first sync: %d added, pending %v, has_more %v; want 5 booked (over the bank's pages of 3) and 2 pending", len(first.GetAdded()), pending, first.GetHasMore())
	}
	second := sync(first.GetNextCursor())
	if len(second.GetAdded()) != 1 || second.GetAdded()[0].GetTransactionId() != "b.tx-anna-007" ||
		second.GetAdded()[0].GetPendingTransactionId() != "p.tx-anna-007" ||
		strings.Join(second.GetRemovedTransactionIds(), ",") != "p.tx-anna-007" {
		t.Errorf("second sync: added %v, removed %v; want the coffee booked, replacing its pending one", second.GetAdded(), second.GetRemovedTransactionIds())
	}
	third := sync(second.GetNextCursor())
	if len(third.GetAdded())+len(third.GetRemovedTransactionIds())+len(third.GetModified()) != 0 {
		t.Errorf("third sync: %v, want no changes", third)
	}
	_, err := e.client.SyncTransactions(ctx(t), &adapterv1.SyncTransactionsRequest{BankConsentId: consent, BankAccountId: "acc-anna-sav", Cursor: third.GetNextCursor()})
	wantReason(t, "another account's cursor", err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
}

// TestBankErrors maps what the sandbox's PSUs and consents answer.
func TestBankErrors(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	list := func(consent string) error {
		_, err := e.client.ListAccounts(ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: consent})
		return err
	}
	tests := []struct {
		name       string
		consent    func(t *testing.T) string
		reason     commonv1.ErrorReason
		retryAfter time.Duration
	}{
		{"503 with Retry-After", func(t *testing.T) string { return e.link(t, xs2asandbox.PSUDora) },
			commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, xs2asandbox.DownRetryAfter},
		{"429 ACCESS_EXCEEDED", func(t *testing.T) string { return e.link(t, xs2asandbox.PSURita) },
			commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, xs2asandbox.RateLimitRetryAfter},
		{"403 SERVICE_BLOCKED", func(t *testing.T) string { return e.link(t, xs2asandbox.PSUCarl) },
			commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED, 0},
		{"400 CONSENT_UNKNOWN", func(*testing.T) string { return "cns-never-granted" },
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, 0},
		{"401 CONSENT_INVALID, revokedByPsu", func(t *testing.T) string {
			id := e.link(t, xs2asandbox.PSUAnna)
			e.bank.RevokeByPSU(id)
			return id
		}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, 0},
		{"401 CONSENT_INVALID, not yet authorised", func(t *testing.T) string {
			s, err := e.client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_OTP, "not-authorised"))
			if err != nil {
				t.Fatal(err)
			}
			return s.GetBankConsentId()
		}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, 0},
		{"401 CONSENT_INVALID, terminatedByTpp", func(t *testing.T) string {
			id := e.link(t, xs2asandbox.PSUAnna)
			if _, err := e.client.RevokeConsent(ctx(t), &adapterv1.RevokeConsentRequest{BankConsentId: id}); err != nil {
				t.Fatal(err)
			}
			return id
		}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := list(tt.consent(t))
			wantReason(t, "ListAccounts", err, tt.reason)
			if got := apierr.RetryDelay(err); got != tt.retryAfter {
				t.Errorf("retry delay %s, want %s", got, tt.retryAfter)
			}
		})
	}
}

func TestConsentExpired(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, xs2asandbox.Options{Now: func() time.Time { return clock() }})
	consent := e.link(t, xs2asandbox.PSUAnna)
	clock = func() time.Time { return now.Add(91 * 24 * time.Hour) } // past the sandbox's 90-day cap
	_, err := e.client.ListAccounts(ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: consent})
	wantReason(t, "ListAccounts on an expired consent", err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
}

func TestHealthFollowsBankCalls(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	dora := e.link(t, xs2asandbox.PSUDora)
	health := func() adapterv1.HealthStatus {
		h, err := e.client.CheckHealth(ctx(t), &adapterv1.CheckHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return h.GetStatus()
	}
	for i, want := range []adapterv1.HealthStatus{adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED, adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED, adapterv1.HealthStatus_HEALTH_STATUS_DOWN} {
		_, _ = e.client.ListAccounts(ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: dora})
		if got := health(); got != want {
			t.Errorf("after %d failed calls: %s, want %s", i+1, got, want)
		}
	}
	e.link(t, xs2asandbox.PSUAnna)
	if got := health(); got != adapterv1.HealthStatus_HEALTH_STATUS_SERVING {
		t.Errorf("after the bank answered again: %s, want SERVING", got)
	}
}

// TestMutualTLS: the bank refuses a TPP without a client certificate, or
// with one of another CA, at the handshake; the adapter then answers
// BANK_UNAVAILABLE, never the TLS error's text.
func TestMutualTLS(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	pool, err := berlingroup.ClientTLS(e.pki.ClientCert, e.pki.ClientKey, e.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	other, err := berlingroup.ClientTLS(e.pki.OtherClientCert, e.pki.OtherClientKey, e.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", &tls.Config{RootCAs: pool.RootCAs, MinVersion: tls.VersionTLS12}},
		{"a client certificate of another CA", other},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tt.cfg}, Timeout: 5 * time.Second}
			resp, err := hc.Get(e.bankURL + "/v1/accounts")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("the bank answered %d; want the handshake refused", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error %v, want a TLS handshake failure", err)
			}
			client := serve(t, e.newAdapter(t, berlingroup.Options{HTTPClient: hc}))
			_, err = client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_OTP, "mtls-key-"+string(rune('a'+i))))
			wantReason(t, "StartSca over a refused handshake", err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			if msg := status.Convert(err).Message(); strings.Contains(msg, "tls") || strings.Contains(msg, "certificate") {
				t.Errorf("the caller sees the transport's error: %q", msg)
			}
		})
	}
}

// TestRequestID: the bank refuses a call without X-Request-ID and echoes it.
func TestRequestID(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	hc := httpClient(t, e.pki.ClientCert, e.pki.ClientKey, e.pki.CAFile)
	resp, err := hc.Get(e.bankURL + "/v1/accounts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var msg struct {
		TppMessages []struct{ Code string } `json:"tppMessages"`
	}
	_ = json.Unmarshal(body, &msg)
	if resp.StatusCode != http.StatusBadRequest || len(msg.TppMessages) != 1 || msg.TppMessages[0].Code != "FORMAT_ERROR" {
		t.Errorf("without X-Request-ID: %d %s, want 400 FORMAT_ERROR", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.bankURL+"/v1/accounts", nil)
	req.Header.Set("X-Request-ID", "99391c7e-ad88-49ec-a2ad-99ddcb1f7721")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != "99391c7e-ad88-49ec-a2ad-99ddcb1f7721" {
		t.Errorf("X-Request-ID echoed as %q", got)
	}
}

func TestStartScaRequests(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	support := startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_OTP, "scope-support")
	support.Scopes = append(support.Scopes, commonv1.Scope_SCOPE_SUPPORT)
	_, err := e.client.StartSca(ctx(t), support)
	wantReason(t, "StartSca for SCOPE_SUPPORT", err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)

	noLogin := startReq("", adapterv1.ScaMethod_SCA_METHOD_OTP, "no-login-hint")
	_, err = e.client.StartSca(ctx(t), noLogin)
	wantReason(t, "StartSca without login_hint", err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)

	// REDIRECT without a return_uri: the bank's default, EMBEDDED.
	s, err := e.client.StartSca(ctx(t), startReq(xs2asandbox.PSUAnna, adapterv1.ScaMethod_SCA_METHOD_REDIRECT, "redirect-no-return"))
	if err != nil || s.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
		t.Errorf("REDIRECT without return_uri: %v, %v; want the default method, OTP", s.GetMethod(), err)
	}
}
