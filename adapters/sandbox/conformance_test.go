package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// TestConformance proves the sandbox with the conformance kit, in process
// and remote, each through a Registry as bankbridge's services call it.
func TestConformance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		client func(*testing.T, *sandbox.Bank, func(*runtime.Bank)) adapterv1.BankAdapterServiceClient
	}{
		{name: "in-process", client: inProcess},
		{name: "remote", client: remote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Fraud cases move on quickly, so that the kit sees every
			// status go by.
			bank := newBank(t, sandbox.Options{FraudCaseStep: 5 * time.Millisecond})
			alert := func(context.Context) error {
				_, err := bank.TriggerFraudAlert("alice")
				return err
			}
			// The kit makes a few hundred calls at once: more than the
			// registry's default rate limit lets through.
			roomy := func(b *runtime.Bank) { b.RateLimit = runtime.RateLimit{PerSecond: 1000, Burst: 1000} }
			conformance.Run(t, tt.client(t, bank, roomy), conformance.Fixtures{
				LoginHint:         "alice",
				UnknownLoginHint:  "mallory",
				GoodCode:          sandbox.Code,
				BadCode:           "654321",
				TriggerEvent:      alert,
				TriggerFraudAlert: alert,
				PromptEvents:      true, // Anna and the fraud desk answer at once
			})
		})
	}
}
