package adapters_test

import (
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"testing"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/runtime"
)

// TestConformancePartialAdapter proves that an adapter with only some
// capabilities passes the kit, in process and remote: the SDK answers the
// rest with CAPABILITY_NOT_SUPPORTED. (The sandbox, with every capability,
// is proved in package sandbox.)
func TestConformancePartialAdapter(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			c := tr.Reach(t, &adaptertest.TestBank{}, runtime.Bank{ID: "test", DisplayName: "Test Bank"})
			conformance.Run(t, c, conformance.Fixtures{BankConsentID: "ok"})
		})
	}
}
