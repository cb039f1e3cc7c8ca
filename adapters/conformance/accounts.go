package conformance

import (
	"slices"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testAccounts is accounts/list.
func (k *kit) testAccounts(c *C) {
	k.needConsent(c)
	resp, err := k.client.ListAccounts(k.ctx(c), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
	if !ok(c, "ListAccounts", err) {
		c.FailNow()
	}
	k.check(c, "ListAccounts", resp)
	if len(resp.GetAccounts()) == 0 {
		c.Fatal("ListAccounts: the fixture customer must have at least one account")
	}
	seen := map[string]bool{}
	for _, a := range resp.GetAccounts() {
		if seen[a.GetBankAccountId()] {
			c.Errorf("ListAccounts: account id %q appears twice", a.GetBankAccountId())
		}
		seen[a.GetBankAccountId()] = true
	}
	k.accounts = resp.GetAccounts()
}

// testIsolation is accounts/other-customer-isolation: under a second
// customer's consent, the main customer's accounts are not listed, and
// reading their balances or transactions answers NOT_FOUND, as for any
// account the consent does not cover. An adapter that looks accounts up
// by id alone, or caches them across consents, serves one customer's
// money to another.
func (k *kit) testIsolation(c *C) {
	if k.fx.SecondCustomer.zero() {
		c.Skip("no second_customer in the fixtures: whether one customer's accounts can be read under another's consent is not checked")
	}
	k.needAccounts(c)
	other := k.link(c, "second_customer", k.fx.SecondCustomer)
	if other == k.consentID {
		c.Fatal("second_customer's consent is the main customer's")
	}
	resp, err := k.client.ListAccounts(k.ctx(c), &adapterv1.ListAccountsRequest{BankConsentId: other})
	if !ok(c, "ListAccounts under second_customer's consent", err) {
		c.FailNow()
	}
	k.check(c, "ListAccounts under second_customer's consent", resp)
	for _, a := range resp.GetAccounts() {
		if slices.ContainsFunc(k.accounts, func(m *adapterv1.Account) bool { return m.GetBankAccountId() == a.GetBankAccountId() }) {
			c.Errorf("ListAccounts under second_customer's consent shows account %q, which is the main customer's", a.GetBankAccountId())
		}
	}
	for _, a := range k.accounts {
		id := a.GetBankAccountId()
		if k.has(adapterv1.Capability_CAPABILITY_BALANCES) {
			_, err := k.client.GetBalances(k.ctx(c), &adapterv1.GetBalancesRequest{BankConsentId: other, BankAccountId: id})
			wantError(c, "GetBalances of the main customer's account "+quote(id)+" under second_customer's consent", err,
				commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		}
		if k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
			_, err := k.client.SyncTransactions(k.ctx(c), &adapterv1.SyncTransactionsRequest{BankConsentId: other, BankAccountId: id})
			wantError(c, "SyncTransactions of the main customer's account "+quote(id)+" under second_customer's consent", err,
				commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		}
	}
}
