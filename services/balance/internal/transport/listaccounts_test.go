package transport_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestListAccountsWhenLinksLapse: what ListAccounts' comment promises a
// chat whose user's links lapse. Without bank_id, a lapsed link's accounts
// are left out while another link is active; when none is, the call
// fails with the newest lapsed link's reason (CONSENT_REQUIRED when the
// user never linked), so the chat can offer to link or relink rather than
// say "no accounts". With bank_id, that bank's lapsed consent is the error.
func TestListAccountsWhenLinksLapse(t *testing.T) {
	t.Parallel()
	const (
		revoked       = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED
		expired       = commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED
		revokedByBank = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK
		required      = commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
	)
	type lapse struct {
		bank   string
		reason commonv1.ErrorReason // 0: stays VALID
	}
	tests := []struct {
		name   string
		links  []lapse // made in this order, oldest first
		bankID string
		want   []string // the accounts listed, when it succeeds
		reason commonv1.ErrorReason
	}{
		{name: "the only link revoked", links: []lapse{{"sandbox", revoked}}, reason: revoked},
		{name: "the only link expired", links: []lapse{{"sandbox", expired}}, reason: expired},
		{name: "the only link revoked by its bank", links: []lapse{{"sandbox", revokedByBank}}, reason: revokedByBank},
		{name: "never linked", reason: required},
		{name: "every link lapsed: the newest says why", links: []lapse{{"sandbox", expired}, {"acme", revoked}}, reason: revoked},
		{name: "every link lapsed, the newest expired", links: []lapse{{"acme", revoked}, {"sandbox", expired}}, reason: expired},
		{name: "a lapsed link beside an active one is left out", links: []lapse{{"sandbox", revoked}, {"acme", 0}}, want: []string{"acme~card"}},
		{name: "an active link beside a newer lapsed one", links: []lapse{{"acme", 0}, {"sandbox", expired}}, want: []string{"acme~card"}},
		{name: "bank_id of a lapsed link", links: []lapse{{"sandbox", expired}, {"acme", 0}}, bankID: "sandbox", reason: expired},
		{name: "bank_id of a link revoked by its bank", links: []lapse{{"sandbox", revokedByBank}, {"acme", 0}}, bankID: "sandbox", reason: revokedByBank},
		{name: "bank_id of a bank never linked", links: []lapse{{"acme", 0}}, bankID: "sandbox", reason: required},
		{name: "bank_id of an active link", links: []lapse{{"sandbox", revoked}, {"acme", 0}}, bankID: "acme", want: []string{"acme~card"}},
	}
	e := start(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "lapse" + string(rune('a'+i))
			for _, l := range tt.links {
				e.consent.link(user, l.bank)
				if l.reason != 0 {
					e.consent.lapse(user, l.bank, l.reason)
				}
			}
			resp, err := e.client.ListAccounts(e.as(t, user), &balancev1.ListAccountsRequest{Parent: "users/" + user, BankId: tt.bankID})
			if tt.reason != 0 {
				testkit.RequireReason(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, a := range tt.want {
				want = append(want, "users/"+user+"/accounts/"+a)
			}
			if got := accountNames(resp.GetAccounts()); !slices.Equal(got, want) {
				t.Errorf("accounts = %v, want %v", got, want)
			}
		})
	}
}

// TestListAccountsFailsAsDocumented provokes each failure ListAccounts'
// comment names, through the real server kit, and checks the code and
// reason the caller gets. (RATE_LIMITED and CONSENT_UNAVAILABLE are the
// kit's, proven for every RPC by platform/server's ratelimit and consent
// contract tests and consentcheck's unavailable_test; the consent reasons
// by TestListAccountsWhenLinksLapse; OVERLOADED by the kit's admission
// tests.)
func TestListAccountsFailsAsDocumented(t *testing.T) {
	t.Parallel()
	e := start(t)
	tok := func(user string, ttl time.Duration) string {
		t.Helper()
		s, err := e.issuer.Mint(user, testClient, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	call := func(token, purpose string) context.Context {
		md := []string{"bankbridge-purpose", purpose}
		if token != "" {
			md = append(md, "authorization", "Bearer "+token)
		}
		return metadata.AppendToOutgoingContext(t.Context(), md...)
	}
	alice := call(tok("alice", time.Hour), "ACCOUNT_INFORMATION")
	e.consent.link("gina", "sandbox")
	e.consent.link("hank", "sandbox")
	e.consent.link("ivy", "sandbox")
	e.banks.set(func(b *fakeBanks) {
		b.accounts["login"] = nil
		b.ids = append(b.ids, "login", "creds")
		b.failing["login"] = apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED, "log in at the bank")
		b.failing["creds"] = apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE, "no credentials")
	})
	e.consent.link("alice", "login")
	e.consent.link("alice", "creds")
	e.consent.link("hank", "login")
	e.consent.link("ivy", "creds")
	e.consent.revoke("hank", "sandbox")
	e.consent.revoke("ivy", "sandbox")

	tests := []struct {
		name   string
		ctx    context.Context
		req    *balancev1.ListAccountsRequest
		reason commonv1.ErrorReason
	}{
		{"no token", call("", "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/alice"}, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID},
		{"an expired token", call(tok("alice", -time.Hour), "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/alice"}, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED},
		{"a field breaking its rule", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "no/slash"}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"a made-up page token", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", PageToken: "bm9wZQ"}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID},
		{"another user", alice, &balancev1.ListAccountsRequest{Parent: "users/bob"}, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH},
		{"a purpose the client may not declare", call(tok("alice", time.Hour), "CUSTOMER_SUPPORT"), &balancev1.ListAccountsRequest{Parent: "users/alice"}, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED},
		{"advertising", call(tok("alice", time.Hour), "ADVERTISING"), &balancev1.ListAccountsRequest{Parent: "users/alice"}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"a purpose the method does not serve", call(tok("alice", time.Hour), "ORDER_TRACKING"), &balancev1.ListAccountsRequest{Parent: "users/alice"}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"a bank not configured", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "nobank"}, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND},
		{"bank_id of a bank that wants a login", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "login"}, commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
		{"the only active link's bank wants a login", call(tok("hank", time.Hour), "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/hank"}, commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
		{"bank_id of a bank without credentials", alice, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "creds"}, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE},
		{"the only active link's bank without credentials", call(tok("ivy", time.Hour), "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/ivy"}, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ListAccounts(tt.ctx, tt.req)
			testkit.RequireReason(t, err, tt.reason)
		})
	}
	t.Run("a bank down with nothing remembered", func(t *testing.T) {
		e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = true })
		defer e.banks.set(func(b *fakeBanks) { b.down["sandbox"] = false })
		_, err := e.client.ListAccounts(call(tok("gina", time.Hour), "ACCOUNT_INFORMATION"), &balancev1.ListAccountsRequest{Parent: "users/gina"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	})
	t.Run("a failing bank beside one that answers is left out", func(t *testing.T) {
		resp, err := e.client.ListAccounts(alice, &balancev1.ListAccountsRequest{Parent: "users/alice"})
		if err != nil {
			t.Fatal(err)
		}
		if got := accountNames(resp.GetAccounts()); !slices.Equal(got, []string{aliceCard, aliceChecking, aliceSavings}) {
			t.Errorf("accounts = %v", got)
		}
	})
}
