package sandbox_test

import (
	"context"
	"testing"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// TestConformance proves the sandbox with the conformance kit, in process
// and remote, each through a Registry as bankbridge's services call it.
func TestConformance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		client func(*testing.T, *sandbox.Bank, func(*adapters.Bank)) adapterv1.BankAdapterServiceClient
	}{
		{name: "in-process", client: inProcess},
		{name: "remote", client: remote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bank := newBank(t, sandbox.Options{})
			conformance.Run(t, tt.client(t, bank, nil), conformance.Fixtures{
				LoginHint:        "alice",
				UnknownLoginHint: "mallory",
				GoodCode:         sandbox.Code,
				BadCode:          "654321",
				TriggerEvent: func(context.Context) error {
					_, err := bank.TriggerFraudAlert("alice")
					return err
				},
			})
		})
	}
}
