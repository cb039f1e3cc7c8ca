package banks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/banks"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// withoutEvents is the sandbox behind an adapter that streams no events
// (no EVENTS), as one written before fraud alerts: it links, and does
// fraud reports.
type withoutEvents struct {
	adapters.Adapter
	adapters.SCAAdapter
	adapters.AccountsAdapter
	adapters.FraudAdapter
}

func (w withoutEvents) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := w.Adapter.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(w)
	return info, nil
}

// registryOf serves a as bank "sandbox", in process.
func registryOf(t *testing.T, a adapters.Adapter) *banks.Adapters {
	t.Helper()
	reg, err := runtime.NewRegistry([]runtime.Bank{{
		ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox",
	}}, runtime.WithInProcess("sandbox", a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return banks.New(reg)
}

var allScopes = []commonv1.Scope{
	commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS,
	commonv1.Scope_SCOPE_RECEIPTS, commonv1.Scope_SCOPE_SHIPPING, commonv1.Scope_SCOPE_SUPPORT,
	commonv1.Scope_SCOPE_FRAUD_ALERTS,
}

// TestAdaptersLinkEveryScope: a link may carry all seven scopes, fraud
// alerts among them, at a bank whose adapter streams events and takes
// answers to alerts.
func TestAdaptersLinkEveryScope(t *testing.T) {
	t.Parallel()
	if len(allScopes) != len(commonv1.Scope_name)-1 {
		t.Fatalf("the test lists %d scopes; the contract has %d", len(allScopes), len(commonv1.Scope_name)-1)
	}
	b := inProcess(t)
	ch, err := b.StartSca(t.Context(), "sandbox", app.StartScaRequest{
		UserReference: "u-ref-all", LoginHint: "alice", Scopes: allScopes,
		ValidUntil: time.Now().Add(24 * time.Hour), IdempotencyKey: "key-00000021",
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.VerifySca(t.Context(), "sandbox", app.VerifyScaRequest{BankConsentID: ch.BankConsentID, Code: sandbox.Code, IdempotencyKey: "key-00000022"})
	if err != nil || res.Status != app.ScaStatusFinalised {
		t.Fatalf("verify = %+v, %v; want FINALISED", res, err)
	}
}

// TestAdaptersRefuseFraudAlertsWithoutEvents: fraud alerts need the
// adapter's FRAUD and EVENTS; without EVENTS no alert could ever arrive,
// so linking with the scope is refused before the bank is asked, and
// linking without it still works.
func TestAdaptersRefuseFraudAlertsWithoutEvents(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	b := registryOf(t, withoutEvents{Adapter: sb, SCAAdapter: sb, AccountsAdapter: sb, FraudAdapter: sb})
	tests := []struct {
		name   string
		scopes []commonv1.Scope
		reason commonv1.ErrorReason
	}{
		{"fraud alerts", []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_FRAUD_ALERTS}, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED},
		{"no fraud alerts", []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS}, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.StartSca(t.Context(), "sandbox", app.StartScaRequest{
				UserReference: "u-ref-ev", LoginHint: "alice", Scopes: tt.scopes,
				ValidUntil: time.Now().Add(time.Hour), IdempotencyKey: fmt.Sprintf("key-%08d", 30+i),
			})
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			md := testkit.RequireReason(t, err, tt.reason)
			if md["scope"] != "SCOPE_FRAUD_ALERTS" {
				t.Errorf("metadata %v: want scope SCOPE_FRAUD_ALERTS", md)
			}
		})
	}
}
