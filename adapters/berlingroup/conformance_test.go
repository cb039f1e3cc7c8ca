package berlingroup_test

import (
	"log/slog"
	"testing"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
	"github.com/bankbridge/bankbridge/adapters/conformance"
)

// TestConformance runs the conformance kit against the adapter, served
// over gRPC on 127.0.0.1 with an API key, in front of the sandbox bank over
// mutual TLS.
func TestConformance(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	const key = "conformance-api-key-0123456789"
	client := serve(t, e.adapter, adapters.WithAPIKeys(func() []string { return []string{key} }))
	conformance.Run(t, client, fixtures(key))
}

// TestConformanceInMemory runs it through the SDK's in-memory client, as
// an in-process adapter runs.
func TestConformanceInMemory(t *testing.T) {
	e := newEnv(t, xs2asandbox.Options{})
	client, closeClient := adapters.NewInMemoryClient(adapters.NewServer(e.adapter, adapters.WithLogger(slog.New(slog.DiscardHandler))))
	defer closeClient()
	conformance.Run(t, client, fixtures(""))
}

func fixtures(apiKey string) conformance.Fixtures {
	return conformance.Fixtures{
		LoginHint:           xs2asandbox.PSUAnna,
		UnknownLoginHint:    "nobody",
		GoodCode:            xs2asandbox.OTP,
		BadCode:             "000000",
		SecondCustomer:      conformance.Customer{LoginHint: xs2asandbox.PSUBen},
		UnavailableCustomer: conformance.Customer{LoginHint: xs2asandbox.PSUDora},
		APIKey:              apiKey,
	}
}
