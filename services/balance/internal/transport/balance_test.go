package transport_test

// These tests call BalanceService the way a product does: over gRPC, with a
// bearer token and a declared purpose, through the real server kit (token
// check, user binding, validation, access rules, consent check, access
// log) on 127.0.0.1:0. Consent and banks are fakes at the ports: the kit's
// consent checker and the app's Banks.

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/balance/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

const (
	testClient = servertest.Client

	aliceChecking = "users/alice/accounts/sandbox~chk"
	aliceSavings  = "users/alice/accounts/sandbox~sav"
	aliceCard     = "users/alice/accounts/acme~card"
)

var readAt = time.Date(2026, 11, 21, 9, 12, 0, 0, time.UTC)

type env struct {
	client  balancev1.BalanceServiceClient
	issuer  *auth.DevIssuer
	consent *fakeConsent
	banks   *fakeBanks
	clock   *testkit.Clock
}

// start serves balance with two banks, sandbox and acme: alice has two
// accounts at sandbox and one at acme, and links to both; bob has none.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{consent: newFakeConsent(), banks: newFakeBanks("sandbox", "acme"), clock: testkit.NewClock(readAt)}
	e.consent.link("alice", "sandbox")
	e.consent.link("alice", "acme")
	e.banks.accounts["sandbox"] = []app.BankAccount{
		{ID: "sav", DisplayName: "Savings", MaskedNumber: app.MaskedNumber{Last4: "0001", Display: "•••• 0001"}, Type: app.AccountSavings, CurrencyCode: "EUR"},
		{ID: "chk", DisplayName: "Everyday", MaskedNumber: app.MaskedNumber{Last4: "4821", Display: "•••• 4821"}, Type: app.AccountCurrent, CurrencyCode: "EUR"},
	}
	e.banks.accounts["acme"] = []app.BankAccount{{ID: "card", DisplayName: "Card", Type: app.AccountCreditCard, CurrencyCode: "EUR"}}
	e.banks.balances["chk"] = []app.Balance{{Type: app.BalanceInterimAvailable, Amount: app.Money{CurrencyCode: "EUR", Units: 2387, Nanos: 110000000}, AsOf: readAt.Add(-time.Hour)}}
	booked := func(id string, day int) app.Transaction {
		return app.Transaction{ID: id, Status: app.TransactionBooked, Amount: app.Money{CurrencyCode: "EUR", Units: -int64(day)},
			BookingTime: time.Date(2026, 11, day, 0, 0, 0, 0, time.UTC)}
	}
	e.banks.txs["chk"] = []app.Transaction{
		booked("t3", 3), booked("t1", 1),
		{ID: "p1", Status: app.TransactionPending, Amount: app.Money{CurrencyCode: "EUR", Units: -5}},
		booked("t2", 2),
	}
	e.banks.txs["chk"][0].PendingID = "p0"
	e.banks.removed["chk"] = []string{"p0"}

	svc, err := app.New(e.banks, appConsents{e.consent}, app.Config{Pages: pagetoken.Random(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, server.Deps{Consent: e.consent, Recorder: e.consent, Banks: e.banks},
		func(r grpc.ServiceRegistrar) {
			balancev1.RegisterBalanceServiceServer(r, transport.NewBalanceServer(svc))
		}, servertest.Options{Name: "balance"})
	e.issuer = srv.Issuer
	e.client = balancev1.NewBalanceServiceClient(srv.Conn)
	return e
}

// as is a call by user, for ACCOUNT_INFORMATION.
func (e *env) as(t *testing.T, user string) context.Context {
	t.Helper()
	tok, err := e.issuer.Mint(user, testClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "ACCOUNT_INFORMATION")
}

func accountNames(accts []*balancev1.Account) []string {
	out := make([]string, len(accts))
	for i, a := range accts {
		out[i] = a.GetName()
	}
	return out
}

func TestGetBalance(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.as(t, "alice")

	resp, err := e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.GetBalance()
	if b.GetName() != aliceChecking+"/balance" || b.GetStale() || !b.GetAsOf().AsTime().Equal(readAt) || len(b.GetBalances()) != 1 {
		t.Fatalf("balance = %v", b)
	}
	got := b.GetBalances()[0]
	if got.GetType() != balancev1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE ||
		got.GetAmount().GetUnits() != 2387 || got.GetAmount().GetNanos() != 110000000 || got.GetAmount().GetCurrencyCode() != "EUR" {
		t.Errorf("balance entry = %v, want INTERIM_AVAILABLE EUR 2387.11 exactly", got)
	}
	// The bank was asked under the consent of alice's sandbox link, for
	// the purpose the caller declared: first for her accounts (is this one
	// hers?), then for its balances.
	calls := e.banks.called()
	want := app.BankAccess{BankID: "sandbox", BankConsentID: "bc-alice-sandbox", Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}
	if len(calls) != 2 || calls[0] != (bankCall{"ListAccounts", want}) || calls[1] != (bankCall{"GetBalances", want}) {
		t.Errorf("bank calls = %+v, want ListAccounts then GetBalances, each %+v", calls, want)
	}

	t.Run("bank down: the last balance, stale, as of its read", func(t *testing.T) {
		e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = true })
		defer e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = false })
		e.clock.Set(readAt.Add(3 * time.Hour))
		resp, err := e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetBalance().GetStale() || !resp.GetBalance().GetAsOf().AsTime().Equal(readAt) {
			t.Errorf("balance = %v, want stale as of %s", resp.GetBalance(), readAt)
		}
	})

	tests := []struct {
		name   string
		user   string
		req    string
		reason commonv1.ErrorReason
		field  string
	}{
		{"bank down, nothing read before", "alice", aliceSavings + "/balance", commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, ""},
		{"a bank without consent", "bob", "users/bob/accounts/sandbox~chk/balance", commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"an account at a bank not configured", "alice", "users/alice/accounts/nobank~chk/balance", commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
		{"an account id without a bank", "alice", "users/alice/accounts/chk/balance", commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
		{"another user's account", "bob", aliceChecking + "/balance", commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"not a balance name", "alice", aliceChecking, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE {
				e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = true })
				defer e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = false })
			}
			_, err := e.client.GetBalance(e.as(t, tt.user), &balancev1.GetBalanceRequest{Name: tt.req})
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
		})
	}
}

func TestABankThatForgotTheConsentRevokesTheLink(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.as(t, "alice")
	e.banks.set(func(b *fakeBanks) { b.forgot["sandbox"] = true })

	// Named: the caller is told to ask the user to link again; the kit reports it.
	_, err := e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	// Across banks: that bank's accounts are left out, as for any lapsed
	// consent, and the link is reported by the service.
	resp, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAccounts() {
		if a.GetBankId() == "sandbox" {
			t.Errorf("listed %s from the bank that forgot the consent", a.GetName())
		}
	}
	if got := e.consent.reportedLinks(); !slices.Equal(got, []string{"users/alice/links/l-sandbox", "users/alice/links/l-sandbox"}) {
		t.Errorf("reported %v, want the sandbox link twice (once by the kit, once by ListAccounts)", got)
	}
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.as(t, "alice")

	resp, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	// Every bank's accounts, ordered by name, each with its link.
	if got, want := accountNames(resp.GetAccounts()), []string{aliceCard, aliceChecking, aliceSavings}; !slices.Equal(got, want) || resp.GetNextPageToken() != "" {
		t.Fatalf("accounts = %v (next %q), want %v on one page", got, resp.GetNextPageToken(), want)
	}
	chk := resp.GetAccounts()[1]
	if chk.GetBankId() != "sandbox" || chk.GetLink() != "users/alice/links/l-sandbox" || chk.GetMaskedNumber().GetLast4() != "4821" ||
		chk.GetType() != balancev1.AccountType_ACCOUNT_TYPE_CURRENT || chk.GetStatus() != balancev1.AccountStatus_ACCOUNT_STATUS_ACTIVE {
		t.Errorf("checking = %v", chk)
	}
	// Each bank was read under its own consent, never another bank's.
	for _, c := range e.banks.called() {
		if c.at.BankConsentID != "bc-alice-"+c.at.BankID {
			t.Errorf("bank %s read under consent %s", c.at.BankID, c.at.BankConsentID)
		}
	}

	t.Run("paging", func(t *testing.T) {
		var got []string
		token := ""
		for {
			page, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice", PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, accountNames(page.GetAccounts())...)
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if want := []string{aliceCard, aliceChecking, aliceSavings}; !slices.Equal(got, want) {
			t.Errorf("pages gave %v, want %v", got, want)
		}

		first, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		e.consent.link("bob", "sandbox")
		bad := []struct {
			name string
			ctx  context.Context
			req  *balancev1.ListAccountsRequest
		}{
			{"with another filter", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "sandbox", PageToken: first.GetNextPageToken()}},
			{"of another user's list", e.as(t, "bob"), &balancev1.ListAccountsRequest{Parent: "users/bob", PageToken: first.GetNextPageToken()}},
			{"made up", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", PageToken: "b2Zmc2V0PTI"}},
		}
		for _, tt := range bad {
			t.Run("refuses a token "+tt.name, func(t *testing.T) {
				_, err := e.client.ListAccounts(tt.ctx, tt.req)
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
				testkit.RequireFieldViolation(t, err, "page_token")
			})
		}
		t.Run("refuses page_size over 100", func(t *testing.T) {
			_, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice", PageSize: 101})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			testkit.RequireFieldViolation(t, err, "page_size")
		})
	})

	t.Run("bank filter", func(t *testing.T) {
		resp, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "acme"})
		if err != nil || !slices.Equal(accountNames(resp.GetAccounts()), []string{aliceCard}) {
			t.Fatalf("acme's accounts = %v, %v", accountNames(resp.GetAccounts()), err)
		}
		_, err = e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "nobank"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND)
		e.consent.link("carol", "sandbox")
		_, err = e.client.ListAccounts(e.as(t, "carol"), &balancev1.ListAccountsRequest{Parent: "users/carol", BankId: "acme"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
	})

	t.Run("a bank without consent is left out", func(t *testing.T) {
		e.consent.link("dave", "acme")
		e.banks.set(func(b *fakeBanks) { b.calls = nil })
		resp, err := e.client.ListAccounts(e.as(t, "dave"), &balancev1.ListAccountsRequest{Parent: "users/dave"})
		if err != nil || !slices.Equal(accountNames(resp.GetAccounts()), []string{"users/dave/accounts/acme~card"}) {
			t.Fatalf("dave's accounts = %v, %v", accountNames(resp.GetAccounts()), err)
		}
		for _, c := range e.banks.called() {
			if c.at.BankID != "acme" {
				t.Errorf("bank %s was read for dave, who has no consent there", c.at.BankID)
			}
		}
	})

	t.Run("a bank down: remembered accounts, else an error", func(t *testing.T) {
		e.banks.set(func(b *fakeBanks) { b.down["sandbox"], b.down["acme"] = true, true })
		defer e.banks.set(func(b *fakeBanks) { b.down["sandbox"], b.down["acme"] = false, false })
		e.clock.Set(readAt.Add(2 * time.Hour)) // the lists alice read are no longer fresh, still kept
		resp, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice"})
		if err != nil || len(resp.GetAccounts()) != 3 {
			t.Errorf("alice's accounts with both banks down = %v, %v; want the 3 read before", accountNames(resp.GetAccounts()), err)
		}
		e.consent.link("erin", "sandbox")
		_, err = e.client.ListAccounts(e.as(t, "erin"), &balancev1.ListAccountsRequest{Parent: "users/erin"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	})

	t.Run("revoked consent", func(t *testing.T) {
		e.consent.link("frank", "sandbox")
		e.consent.revoke("frank", "sandbox")
		_, err := e.client.GetAccount(e.as(t, "frank"), &balancev1.GetAccountRequest{Name: "users/frank/accounts/sandbox~chk"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
	})
}

func TestGetAccount(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.as(t, "alice")
	resp, err := e.client.GetAccount(alice, &balancev1.GetAccountRequest{Name: aliceSavings})
	if err != nil || resp.GetAccount().GetDisplayName() != "Savings" || resp.GetAccount().GetMaskedNumber().GetLast4() != "0001" {
		t.Fatalf("GetAccount = %v, %v", resp.GetAccount(), err)
	}
	// Served from the list read a moment ago: the bank is asked once.
	if _, err := e.client.GetAccount(alice, &balancev1.GetAccountRequest{Name: aliceChecking}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.banks.called()); n != 1 {
		t.Errorf("%d bank calls for two accounts of one fresh list, want 1", n)
	}
	_, err = e.client.GetAccount(alice, &balancev1.GetAccountRequest{Name: "users/alice/accounts/sandbox~nope"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	e := start(t)
	alice := e.as(t, "alice")
	list := func(t *testing.T, req *balancev1.ListTransactionsRequest) ([]string, string) {
		t.Helper()
		resp, err := e.client.ListTransactions(alice, req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tx := range resp.GetTransactions() {
			ids = append(ids, tx.GetName()[len(aliceChecking+"/transactions/"):])
		}
		return ids, resp.GetNextPageToken()
	}

	t.Run("newest first, pending before booked, in pages", func(t *testing.T) {
		var got []string
		token := ""
		for {
			ids, next := list(t, &balancev1.ListTransactionsRequest{Parent: aliceChecking, PageSize: 3, PageToken: token})
			got = append(got, ids...)
			if token = next; token == "" {
				break
			}
		}
		if want := []string{"p1", "t3", "t2", "t1"}; !slices.Equal(got, want) {
			t.Errorf("transactions = %v, want %v", got, want)
		}
	})
	t.Run("filters", func(t *testing.T) {
		ids, _ := list(t, &balancev1.ListTransactionsRequest{Parent: aliceChecking, Status: balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
			StartTime: timestamppb.New(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))})
		if want := []string{"t3", "t2"}; !slices.Equal(ids, want) {
			t.Errorf("booked since the 2nd = %v, want %v", ids, want)
		}
	})
	t.Run("a token is bound to its filters", func(t *testing.T) {
		_, next := list(t, &balancev1.ListTransactionsRequest{Parent: aliceChecking, PageSize: 1})
		_, err := e.client.ListTransactions(alice, &balancev1.ListTransactionsRequest{
			Parent: aliceChecking, PageToken: next, Status: balancev1.TransactionStatus_TRANSACTION_STATUS_PENDING,
		})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
		testkit.RequireFieldViolation(t, err, "page_token")
	})
	t.Run("get", func(t *testing.T) {
		resp, err := e.client.GetTransaction(alice, &balancev1.GetTransactionRequest{Name: aliceChecking + "/transactions/t3"})
		if err != nil {
			t.Fatal(err)
		}
		tx := resp.GetTransaction()
		if tx.GetStatus() != balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED || tx.GetAmount().GetUnits() != -3 ||
			tx.GetPendingTransaction() != aliceChecking+"/transactions/p0" || !tx.GetBookingTime().AsTime().Equal(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("t3 = %v", tx)
		}
		_, err = e.client.GetTransaction(alice, &balancev1.GetTransactionRequest{Name: aliceChecking + "/transactions/nope"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
	t.Run("sync", func(t *testing.T) {
		first, err := e.client.SyncTransactions(alice, &balancev1.SyncTransactionsRequest{Parent: aliceChecking, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.GetAdded()) != 3 || !first.GetHasMore() || !slices.Equal(first.GetRemoved(), []string{aliceChecking + "/transactions/p0"}) {
			t.Fatalf("first sync = %v", first)
		}
		rest, err := e.client.SyncTransactions(alice, &balancev1.SyncTransactionsRequest{Parent: aliceChecking, Cursor: first.GetNextCursor()})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.GetAdded()) != 1 || rest.GetHasMore() || rest.GetAdded()[0].GetName() != aliceChecking+"/transactions/t2" {
			t.Errorf("second sync = %v", rest)
		}
		_, err = e.client.SyncTransactions(alice, &balancev1.SyncTransactionsRequest{Parent: aliceSavings, Cursor: first.GetNextCursor()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
		testkit.RequireFieldViolation(t, err, "cursor")
	})
}

// TestEveryCallIsRecorded checks the kit and the service together: each
// decided call, allowed or refused, reaches the access log with the
// resource it named.
func TestEveryCallIsRecorded(t *testing.T) {
	t.Parallel()
	e := start(t)
	_, _ = e.client.GetBalance(e.as(t, "alice"), &balancev1.GetBalanceRequest{Name: aliceChecking + "/balance"})
	_, _ = e.client.GetBalance(e.as(t, "bob"), &balancev1.GetBalanceRequest{Name: "users/bob/accounts/sandbox~chk/balance"})
	e.consent.mu.Lock()
	defer e.consent.mu.Unlock()
	if len(e.consent.entries) != 2 || !e.consent.entries[0].Allowed || e.consent.entries[1].Allowed ||
		e.consent.entries[0].Resource != aliceChecking+"/balance" {
		t.Errorf("access log = %+v, want alice's read allowed then bob's refused", e.consent.entries)
	}
}
