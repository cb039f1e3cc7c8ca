package sandbox_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

const testAPIKey = "sandbox-test-key-1"

func newBank(t *testing.T, o sandbox.Options) *sandbox.Bank {
	t.Helper()
	b, err := sandbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// inProcess returns the sandbox's client through a registry that runs it
// in process, as bank "sandbox" with the given tuning.
func inProcess(t *testing.T, b *sandbox.Bank, tune func(*runtime.Bank)) adapterv1.BankAdapterServiceClient {
	t.Helper()
	bank := runtime.Bank{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox"}
	if tune != nil {
		tune(&bank)
	}
	client, err := adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("sandbox", b)).Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// remote serves the sandbox on 127.0.0.1:0 with testAPIKey and returns its
// client through a registry with a remote bank.
func remote(t *testing.T, b *sandbox.Bank, tune func(*runtime.Bank)) adapterv1.BankAdapterServiceClient {
	t.Helper()
	addr := adaptertest.Serve(t, b, adapters.WithAPIKeys(func() []string { return []string{testAPIKey} }))
	bank := runtime.Bank{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindRemote, Endpoint: addr}
	if tune != nil {
		tune(&bank)
	}
	creds := adaptertest.NewCredentials(map[string]string{"api_key": testAPIKey})
	client, err := adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(creds)).Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// allScopes are every scope the sandbox grants.
var allScopes = []commonv1.Scope{
	commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS,
	commonv1.Scope_SCOPE_SUPPORT, commonv1.Scope_SCOPE_FRAUD_ALERTS,
}

// link links the customer with login, for every scope the sandbox grants,
// and returns the finalised consent.
func link(t *testing.T, client adapterv1.BankAdapterServiceClient, login string) string {
	t.Helper()
	return linkFor(t, client, login, allScopes...)
}

// linkFor links the customer with login for scopes and returns the
// finalised consent.
func linkFor(t *testing.T, client adapterv1.BankAdapterServiceClient, login string, scopes ...commonv1.Scope) string {
	t.Helper()
	ctx := t.Context()
	start, err := client.StartSca(ctx, &adapterv1.StartScaRequest{
		UserReference:  "user-" + login,
		LoginHint:      login,
		Scopes:         scopes,
		ValidUntil:     timestamppb.New(time.Now().Add(time.Hour)),
		IdempotencyKey: fmt.Sprintf("link-%s-%d", login, time.Now().UnixNano()),
	})
	if err != nil {
		t.Fatalf("StartSca(%s): %v", login, err)
	}
	v, err := client.VerifySca(ctx, &adapterv1.VerifyScaRequest{
		BankConsentId: start.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "verify-" + start.GetBankConsentId(),
	})
	if err != nil {
		t.Fatalf("VerifySca(%s): %v", login, err)
	}
	if v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("VerifySca(%s): status %s", login, v.GetStatus())
	}
	return v.GetBankConsentId()
}
