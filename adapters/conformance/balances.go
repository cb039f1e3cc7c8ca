package conformance

import (
	"fmt"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testBalances is balances/get: every account's balances, each type once.
func (k *kit) testBalances(c *C) {
	k.needAccounts(c)
	for i, a := range k.accounts {
		c.Run(fmt.Sprintf("accounts[%d]", i), func(c *C) {
			resp, err := k.client.GetBalances(k.ctx(c), &adapterv1.GetBalancesRequest{BankConsentId: k.consentID, BankAccountId: a.GetBankAccountId()})
			if !ok(c, "GetBalances", err) {
				return
			}
			k.check(c, "GetBalances", resp)
			types := map[adapterv1.BalanceType]bool{}
			for _, b := range resp.GetBalances() {
				if types[b.GetType()] {
					c.Errorf("GetBalances: balance type %s appears twice", b.GetType())
				}
				types[b.GetType()] = true
			}
		})
	}
}

// testBalancesUnknownAccount is balances/unknown-account.
func (k *kit) testBalancesUnknownAccount(c *C) {
	k.needConsent(c)
	_, err := k.client.GetBalances(k.ctx(c), &adapterv1.GetBalancesRequest{BankConsentId: k.consentID, BankAccountId: unknownID})
	wantError(c, "GetBalances of an unknown account", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// quote is s in Go's double quotes, as the kit names ids in its messages.
func quote(s string) string { return fmt.Sprintf("%q", s) }
