package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func wantReason(t *testing.T, err error, reason commonv1.ErrorReason) {
	t.Helper()
	if !apierr.Is(err, reason) {
		t.Fatalf("want %s, got %v", apierr.ReasonString(reason), err)
	}
}

func TestCustomers(t *testing.T) {
	t.Parallel()
	c := inProcess(t, newBank(t, sandbox.Options{}), nil)
	tests := []struct {
		login        string
		wantAccounts []adapterv1.AccountType
		wantReason   commonv1.ErrorReason
	}{
		{login: "alice", wantAccounts: []adapterv1.AccountType{adapterv1.AccountType_ACCOUNT_TYPE_CURRENT, adapterv1.AccountType_ACCOUNT_TYPE_CARD}},
		{login: "bob", wantAccounts: []adapterv1.AccountType{adapterv1.AccountType_ACCOUNT_TYPE_SAVINGS}},
		{login: "carol", wantReason: commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
		{login: "dave", wantReason: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.login, func(t *testing.T) {
			t.Parallel()
			consent := link(t, c, tt.login)
			resp, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
			if tt.wantReason != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				wantReason(t, err, tt.wantReason)
				// Every data call fails alike.
				_, err = c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: "acc-any"})
				wantReason(t, err, tt.wantReason)
				_, err = c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{BankConsentId: consent, BankAccountId: "acc-any"})
				wantReason(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var types []adapterv1.AccountType
			for _, a := range resp.GetAccounts() {
				types = append(types, a.GetType())
				if paths := conformance.UnmaskedNumbers(a); len(paths) > 0 {
					t.Errorf("account shows a full number at %v", paths)
				}
			}
			if !slices.Equal(types, tt.wantAccounts) {
				t.Errorf("account types %v, want %v", types, tt.wantAccounts)
			}
		})
	}

	t.Run("unknown login", func(t *testing.T) {
		t.Parallel()
		_, err := c.StartSca(t.Context(), startRequest("mallory", "unknown-login-1"))
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		if strings.Contains(err.Error(), "mallory") {
			t.Errorf("the error echoes the login: %v", err)
		}
	})
}

func startRequest(login, key string) *adapterv1.StartScaRequest {
	return &adapterv1.StartScaRequest{
		UserReference:  "user-1",
		LoginHint:      login,
		Scopes:         []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
		ValidUntil:     timestamppb.New(time.Now().Add(time.Hour)),
		IdempotencyKey: key,
	}
}

func TestAliceBalances(t *testing.T) {
	t.Parallel()
	c := inProcess(t, newBank(t, sandbox.Options{}), nil)
	consent := link(t, c, "alice")
	tests := []struct {
		account string
		want    []adapterv1.BalanceType
	}{
		{account: "acc-alice-checking", want: []adapterv1.BalanceType{
			adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, adapterv1.BalanceType_BALANCE_TYPE_INTERIM_BOOKED,
			adapterv1.BalanceType_BALANCE_TYPE_EXPECTED, adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE,
			adapterv1.BalanceType_BALANCE_TYPE_CREDIT_LIMIT,
		}},
		{account: "acc-alice-card", want: []adapterv1.BalanceType{
			adapterv1.BalanceType_BALANCE_TYPE_CREDIT_LIMIT, adapterv1.BalanceType_BALANCE_TYPE_NON_INVOICED,
			adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.account, func(t *testing.T) {
			resp, err := c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: tt.account})
			if err != nil {
				t.Fatal(err)
			}
			var got []adapterv1.BalanceType
			for _, b := range resp.GetBalances() {
				got = append(got, b.GetType())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("balance types %v, want %v", got, tt.want)
			}
		})
	}
	_, err := c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: "acc-bob-savings"})
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// TestPendingTransactionPosts follows alice's coffee from pending to booked.
func TestPendingTransactionPosts(t *testing.T) {
	t.Parallel()
	c := inProcess(t, newBank(t, sandbox.Options{}), nil)
	consent := link(t, c, "alice")
	sync := func(cursor string) *adapterv1.SyncTransactionsResponse {
		t.Helper()
		resp, err := c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{
			BankConsentId: consent, BankAccountId: "acc-alice-checking", Cursor: cursor,
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ids := func(txs []*adapterv1.Transaction) []string {
		var out []string
		for _, tx := range txs {
			out = append(out, tx.GetTransactionId())
		}
		return out
	}

	first := sync("")
	if first.GetHasMore() || len(first.GetRemovedTransactionIds()) > 0 {
		t.Fatalf("initial sync: has_more %v, removed %v", first.GetHasMore(), first.GetRemovedTransactionIds())
	}
	if got := ids(first.GetAdded()); !slices.Contains(got, "tx-alice-chk-p01") || slices.Contains(got, "tx-alice-chk-005") {
		t.Fatalf("initial sync: %v, want the pending coffee and not the booked one", got)
	}

	second := sync(first.GetNextCursor())
	if len(second.GetAdded()) != 1 {
		t.Fatalf("second sync added %v, want the booked coffee only", ids(second.GetAdded()))
	}
	posted := second.GetAdded()[0]
	if posted.GetTransactionId() != "tx-alice-chk-005" || posted.GetStatus() != adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED ||
		posted.GetPendingTransactionId() != "tx-alice-chk-p01" {
		t.Errorf("second sync added %v", posted)
	}
	if !slices.Equal(second.GetRemovedTransactionIds(), []string{"tx-alice-chk-p01"}) {
		t.Errorf("second sync removed %v, want the pending coffee", second.GetRemovedTransactionIds())
	}

	third := sync(second.GetNextCursor())
	if len(third.GetAdded())+len(third.GetModified())+len(third.GetRemovedTransactionIds()) != 0 || third.GetHasMore() {
		t.Errorf("third sync: %v, want no changes", third)
	}
	if third.GetNextCursor() == "" {
		t.Error("third sync: empty next_cursor")
	}

	// Syncing again from scratch shows the bank's state now.
	fresh := ids(sync("").GetAdded())
	if slices.Contains(fresh, "tx-alice-chk-p01") || !slices.Contains(fresh, "tx-alice-chk-005") {
		t.Errorf("fresh sync after posting: %v, want the booked coffee instead of the pending one", fresh)
	}

	// Paging: count 2 walks the same history.
	var paged []string
	cursor := ""
	for range 10 {
		resp, err := c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{
			BankConsentId: consent, BankAccountId: "acc-alice-checking", Cursor: cursor, Count: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, ids(resp.GetAdded())...)
		cursor = resp.GetNextCursor()
		if !resp.GetHasMore() {
			break
		}
	}
	if !slices.Equal(paged, fresh) {
		t.Errorf("paged sync %v, want %v", paged, fresh)
	}

	_, err := c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{
		BankConsentId: consent, BankAccountId: "acc-alice-card", Cursor: first.GetNextCursor(),
	})
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
}

func TestSCA(t *testing.T) {
	t.Parallel()
	c := inProcess(t, newBank(t, sandbox.Options{}), nil)
	verify := func(consent, code, key string) (*adapterv1.VerifyScaResponse, error) {
		return c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: consent, Code: code, IdempotencyKey: key})
	}

	t.Run("wrong codes: four tries left, then locked", func(t *testing.T) {
		t.Parallel()
		start, err := c.StartSca(t.Context(), startRequest("bob", "start-wrong-code"))
		if err != nil {
			t.Fatal(err)
		}
		if start.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP || !strings.Contains(start.GetChallengeText(), sandbox.Code) || start.GetAttemptsAllowed() != 5 {
			t.Errorf("StartSca: method %s, challenge %q, attempts %d", start.GetMethod(), start.GetChallengeText(), start.GetAttemptsAllowed())
		}
		for i := range 4 {
			_, err := verify(start.GetBankConsentId(), "654321", "verify-wrong-"+string(rune('a'+i)))
			wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != strconv.Itoa(4-i) {
				t.Errorf("wrong code #%d: attempts_remaining %q, want %d", i+1, got, 4-i)
			}
		}
		_, err = verify(start.GetBankConsentId(), "654321", "verify-wrong-e")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		_, err = verify(start.GetBankConsentId(), sandbox.Code, "verify-right-after-lock")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		_, err = c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: start.GetBankConsentId()})
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
	})

	t.Run("a wrong code, then the right one", func(t *testing.T) {
		t.Parallel()
		start, err := c.StartSca(t.Context(), startRequest("bob", "start-typo"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = verify(start.GetBankConsentId(), "111111", "verify-typo-1")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		v, err := verify(start.GetBankConsentId(), sandbox.Code, "verify-typo-2")
		if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			t.Fatalf("right code after a typo: %v, %v", v.GetStatus(), err)
		}
	})

	t.Run("scopes", func(t *testing.T) {
		t.Parallel()
		consent := link(t, c, "bob") // accounts, balances, transactions, support
		req := startRequest("bob", "start-accounts-only")
		start, err := c.StartSca(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify(start.GetBankConsentId(), sandbox.Code, "verify-accounts-only"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: start.GetBankConsentId()}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: start.GetBankConsentId(), BankAccountId: "acc-bob-savings"})
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
		if _, err := c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: "acc-bob-savings"}); err != nil {
			t.Fatal(err)
		}

		receipts := startRequest("bob", "start-receipts")
		receipts.Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS}
		_, err = c.StartSca(t.Context(), receipts)
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)

		noLogin := startRequest("", "start-no-login")
		_, err = c.StartSca(t.Context(), noLogin)
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	})

	t.Run("revocation", func(t *testing.T) {
		t.Parallel()
		consent := link(t, c, "alice")
		if _, err := c.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: consent}); err != nil {
			t.Fatal(err)
		}
		// bankbridge's callers see the consent the bank no longer honours,
		// whoever revoked it there.
		_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		req := startRequest("alice", "start-short")
		req.ValidUntil = timestamppb.New(time.Now().Add(300 * time.Millisecond))
		start, err := c.StartSca(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		v, err := verify(start.GetBankConsentId(), sandbox.Code, "verify-short")
		if err != nil {
			t.Fatal(err)
		}
		if got := v.GetValidUntil().AsTime(); !got.Equal(req.GetValidUntil().AsTime()) {
			t.Errorf("valid_until %s, want the requested %s", got, req.GetValidUntil().AsTime())
		}
		time.Sleep(time.Until(v.GetValidUntil().AsTime()) + 10*time.Millisecond)
		_, err = c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: start.GetBankConsentId()})
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
	})
}

func TestKnobs(t *testing.T) {
	t.Parallel()
	// failures runs 20 bank calls and says which failed.
	failures := func(t *testing.T, o sandbox.Options) []bool {
		b := newBank(t, o)
		var out []bool
		for range 20 {
			_, err := b.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: "cns-none"})
			if err != nil && !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
				t.Fatalf("want BANK_UNAVAILABLE, got %v", err)
			}
			out = append(out, err != nil)
		}
		return out
	}
	count := func(fails []bool) int {
		n := 0
		for _, f := range fails {
			if f {
				n++
			}
		}
		return n
	}

	t.Run("error rate is repeatable with a seed", func(t *testing.T) {
		t.Parallel()
		a := failures(t, sandbox.Options{ErrorRate: 0.5, Seed: 7})
		b := failures(t, sandbox.Options{ErrorRate: 0.5, Seed: 7})
		if !slices.Equal(a, b) {
			t.Errorf("same seed, different failures: %v vs %v", a, b)
		}
		if n := count(a); n == 0 || n == 20 {
			t.Errorf("error rate 0.5 failed %d of 20 calls", n)
		}
	})
	t.Run("error rate bounds", func(t *testing.T) {
		t.Parallel()
		if n := count(failures(t, sandbox.Options{})); n != 0 {
			t.Errorf("error rate 0 failed %d calls", n)
		}
		if n := count(failures(t, sandbox.Options{ErrorRate: 1})); n != 20 {
			t.Errorf("error rate 1 failed %d of 20 calls", n)
		}
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		b := newBank(t, sandbox.Options{Latency: 100 * time.Millisecond})
		start := time.Now()
		if _, err := b.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: "cns-none"}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("call took %s, want at least the 100ms latency", d)
		}
		info, err := b.Info(t.Context())
		if err != nil || time.Since(start) > 150*time.Millisecond {
			t.Errorf("Info is not a bank call and takes no latency: %v", err)
		}
		if len(info.GetCapabilities()) != len(adapterv1.Capability_name)-1 { // every capability
			t.Errorf("capabilities %v", info.GetCapabilities())
		}
	})
	t.Run("health", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			o    sandbox.Options
			want adapterv1.HealthStatus
		}{
			{o: sandbox.Options{}, want: adapterv1.HealthStatus_HEALTH_STATUS_SERVING},
			{o: sandbox.Options{ErrorRate: 0.1}, want: adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED},
			{o: sandbox.Options{Latency: 2 * time.Second}, want: adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED},
		}
		for _, tt := range tests {
			h, err := newBank(t, tt.o).CheckHealth(t.Context(), &adapterv1.CheckHealthRequest{})
			if err != nil || h.GetStatus() != tt.want {
				t.Errorf("%+v: health %v (%v), want %v", tt.o, h.GetStatus(), err, tt.want)
			}
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		t.Parallel()
		for _, o := range []sandbox.Options{{ErrorRate: 1.5}, {ErrorRate: -0.1}, {Latency: -time.Second}, {BankID: "Sandbox Bank"}, {FraudCaseStep: -time.Second}} {
			if _, err := sandbox.New(o); err == nil {
				t.Errorf("New(%+v): want an error", o)
			}
		}
	})
}

func TestEventCursorFromAnotherRun(t *testing.T) {
	t.Parallel()
	earlier := newBank(t, sandbox.Options{})
	c := inProcess(t, earlier, nil)
	link(t, c, "alice")
	ev, _ := openEvents(t, c, earlier, "alice")

	restarted := inProcess(t, newBank(t, sandbox.Options{}), nil)
	stream, err := restarted.StreamEvents(t.Context(), &adapterv1.StreamEventsRequest{ResumeCursor: ev.GetCursor()})
	if err == nil {
		_, err = stream.Recv()
	}
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
}

// TestEventsFromAStartTime: with no cursor but a start time, the stream
// starts with the first event kept that happened at or after it, so a
// consumer that has stored no cursor yet loses nothing while it is away.
func TestEventsFromAStartTime(t *testing.T) {
	t.Parallel()
	t0 := time.Now().UTC().Truncate(time.Second)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	bank := newBank(t, sandbox.Options{Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	c := inProcess(t, bank, nil)
	link(t, c, "alice")
	for i := range 3 {
		now.Store(t0.Add(time.Duration(i) * time.Minute).UnixNano())
		if _, err := bank.TriggerFraudAlert("alice"); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stream, err := c.StreamEvents(ctx, &adapterv1.StreamEventsRequest{StartTime: timestamppb.New(t0.Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.GetEventTime().AsTime(); !got.Equal(want) || ev.GetFraudAlert() == nil {
			t.Errorf("event at %v (%v), want the alert raised at %v", got, ev.GetEvent(), want)
		}
	}
}

func TestAdminFraudAlerts(t *testing.T) {
	t.Parallel()
	bank := newBank(t, sandbox.Options{})
	srv := httptest.NewServer(bank.AdminHandler())
	defer srv.Close()
	post := func(user string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/admin/fraud-alerts?user="+user, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	if code, _ := post("alice"); code != http.StatusConflict {
		t.Errorf("alert before linking: %d, want 409", code)
	}
	if code, _ := post("mallory"); code != http.StatusNotFound {
		t.Errorf("alert for an unknown customer: %d, want 404", code)
	}
	if code, _ := post(""); code != http.StatusBadRequest {
		t.Errorf("alert without user: %d, want 400", code)
	}
	resp, err := http.Get(srv.URL + "/admin/fraud-alerts?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}

	c := inProcess(t, bank, nil)
	consent := link(t, c, "alice")
	ev, _ := openEvents(t, c, nil, "alice", func() {
		if code, body := post("alice"); code != http.StatusOK || len(body["alert_ids"].([]any)) != 1 {
			t.Errorf("alert: %d %v", code, body)
		}
	})
	alert := ev.GetFraudAlert()
	if alert.GetBankConsentId() != consent || alert.GetBankAccountId() != "acc-alice-card" || alert.GetBankCardId() != "card-alice-credit" ||
		alert.GetSeverity() != adapterv1.FraudSeverity_FRAUD_SEVERITY_HIGH {
		t.Errorf("alert %v", alert)
	}
}

// openEvents opens an event stream and returns its first event and the
// rest. An empty cursor means "from now on", which starts when the bank sees
// the stream, so it raises fraud alerts for login (with trigger, or on bank)
// until one arrives: the first event is such an alert, and the rest may
// start with more.
func openEvents(t *testing.T, c adapterv1.BankAdapterServiceClient, bank *sandbox.Bank, login string, trigger ...func()) (*adapterv1.StreamEventsResponse, <-chan *adapterv1.StreamEventsResponse) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stream, err := c.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *adapterv1.StreamEventsResponse)
	go func() {
		defer close(events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range 100 {
		if len(trigger) > 0 {
			trigger[0]()
		} else if _, err := bank.TriggerFraudAlert(login); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-events:
			if !ok || ev.GetFraudAlert() == nil {
				t.Fatalf("first event %v, want a fraud alert", ev)
			}
			return ev, events
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("the event stream delivered nothing")
	return nil, nil
}

// next returns the next event, failing the test after a few seconds.
func next(t *testing.T, events <-chan *adapterv1.StreamEventsResponse) *adapterv1.StreamEventsResponse {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return nil
	}
}

// TestUnknownAndRevokedConsents checks the sandbox's own answers, called
// directly: a consent it never granted, or granted before a restart (its
// state lives in memory), is CONSENT_REVOKED_BY_BANK; one revoked is
// CONSENT_REVOKED.
func TestUnknownAndRevokedConsents(t *testing.T) {
	t.Parallel()
	before := newBank(t, sandbox.Options{})
	consent := link(t, inProcess(t, before, nil), "alice")
	if _, err := before.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: consent}); err != nil {
		t.Fatal(err)
	}
	restarted := newBank(t, sandbox.Options{})
	tests := []struct {
		name string
		bank *sandbox.Bank
		want commonv1.ErrorReason
		call func(b *sandbox.Bank) error
	}{
		{"revoked: ListAccounts", before, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, func(b *sandbox.Bank) error {
			_, err := b.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
			return err
		}},
		{"revoked: VerifySca", before, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, func(b *sandbox.Bank) error {
			_, err := b.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: consent, Code: sandbox.Code, IdempotencyKey: "verify-revoked"})
			return err
		}},
		{"after a restart: ListAccounts", restarted, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, func(b *sandbox.Bank) error {
			_, err := b.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
			return err
		}},
		{"after a restart: GetBalances", restarted, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, func(b *sandbox.Bank) error {
			_, err := b.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: "acc-alice-checking"})
			return err
		}},
		{"after a restart: VerifySca", restarted, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, func(b *sandbox.Bank) error {
			_, err := b.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: consent, Code: sandbox.Code, IdempotencyKey: "verify-restarted"})
			return err
		}},
		{"after a restart: StartSupportHandoff", restarted, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, func(b *sandbox.Bank) error {
			_, err := b.StartSupportHandoff(t.Context(), &adapterv1.StartSupportHandoffRequest{
				BankConsentId: consent, ConversationReference: "conv-1", Reason: "help", IdempotencyKey: "handoff-restarted",
			})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantReason(t, tt.call(tt.bank), tt.want)
		})
	}
}
