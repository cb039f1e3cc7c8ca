package conformance

import (
	"context"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testBankUnavailable is errors/bank-unavailable: under the consent of a
// customer whose bank is down, every data call the adapter declares
// answers UNAVAILABLE (BANK_UNAVAILABLE) with a positive RetryInfo delay.
// That is what lets bankbridge open its breaker, serve a stale balance
// marked as such, and tell the user to retry later; an adapter that
// answers success with nothing, or another reason, hides the outage.
func (k *kit) testBankUnavailable(c *C) {
	if k.fx.UnavailableCustomer.zero() {
		c.Skip("no unavailable_customer in the fixtures: how the adapter answers when the bank is down is not checked")
	}
	consent := k.link(c, "unavailable_customer", k.fx.UnavailableCustomer)
	calls := []struct {
		capability adapterv1.Capability
		method     string
		call       func(ctx context.Context) error
	}{
		{adapterv1.Capability_CAPABILITY_ACCOUNTS, "ListAccounts", func(ctx context.Context) error {
			_, err := k.client.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: consent})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_BALANCES, "GetBalances", func(ctx context.Context) error {
			_, err := k.client.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: consent, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_TRANSACTIONS, "SyncTransactions", func(ctx context.Context) error {
			_, err := k.client.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{BankConsentId: consent, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "ListCards", func(ctx context.Context) error {
			_, err := k.client.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: consent})
			return err
		}},
	}
	tried := 0
	for _, cc := range calls {
		if !k.has(cc.capability) {
			continue
		}
		tried++
		what := cc.method + " under unavailable_customer's consent"
		err := cc.call(k.ctx(c))
		if !wantError(c, what, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
			continue
		}
		if ri := retryInfo(err); ri != nil && ri.GetRetryDelay().AsDuration() <= 0 {
			c.Errorf("%s: RetryInfo with retry_delay %s; say when to try again", what, ri.GetRetryDelay().AsDuration())
		}
	}
	if tried == 0 {
		c.Skip("the adapter declares none of ACCOUNTS, BALANCES, TRANSACTIONS, CARDS, whose calls reach the bank")
	}
}
