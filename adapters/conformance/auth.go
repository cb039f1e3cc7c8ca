package conformance

import (
	"context"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// wrongAPIKey is a key no adapter accepts.
const wrongAPIKey = "conformance-wrong-api-key-0000"

// testCredentials is auth/credentials-rejected: the API key bankbridge
// presents is what lets a caller in. A call with a wrong key and one with
// none answer UNAUTHENTICATED (CREDENTIALS_REJECTED), on GetAdapterInfo and
// on a data call, before the adapter looks at anything else; with the
// right key GetAdapterInfo succeeds (info/adapter-info already proved it).
func (k *kit) testCredentials(c *C) {
	if k.fx.APIKey == "" {
		c.Skip("no API key given (--api-key-file, Fixtures.APIKey): whether the adapter refuses a wrong or missing key is not checked")
	}
	calls := []struct {
		method string
		call   func(ctx context.Context) error
	}{
		{"GetAdapterInfo", func(ctx context.Context) error {
			_, err := k.client.GetAdapterInfo(ctx, &adapterv1.GetAdapterInfoRequest{})
			return err
		}},
	}
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		calls = append(calls, struct {
			method string
			call   func(ctx context.Context) error
		}{"ListAccounts", func(ctx context.Context) error {
			_, err := k.client.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: unknownID})
			return err
		}})
	}
	for _, cc := range calls {
		wantError(c, cc.method+" with a wrong API key", cc.call(k.ctxWithKey(c, wrongAPIKey)),
			commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
		wantError(c, cc.method+" without an API key", cc.call(k.ctxWithKey(c, "")),
			commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
	}
}
