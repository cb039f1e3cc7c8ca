package runtime_test

import (
	"context"
	"log"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// How a bankbridge service reaches its banks.
func ExampleNewRegistry() {
	banks, err := runtime.LoadConfig("banks.yaml")
	if err != nil {
		log.Fatal(err)
	}
	var vault runtime.CredentialSource // the service's Vault provider
	var acme adapters.Adapter          // a Go adapter run in process
	r, err := runtime.NewRegistry(banks,
		runtime.WithCredentials(vault),
		runtime.WithInProcess("acme", acme),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	client, err := r.Client("acme")
	if err != nil {
		log.Fatal(err) // NOT_FOUND (BANK_NOT_FOUND)
	}
	_, err = client.ListAccounts(context.Background(), &adapterv1.ListAccountsRequest{BankConsentId: "cns-1"})
	switch {
	case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE):
		log.Print("the bank is down; serve the last known balance, marked stale")
	case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK):
		log.Print("the bank no longer honours the consent; end the link (ReportBankRevocation) and answer 403")
	}
}
