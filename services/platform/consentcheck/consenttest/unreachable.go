package consenttest

import (
	"context"
	"io"
	"testing"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// Unreachable is a consent checker dialed, the way bootstrap dials it, to
// an address nothing listens on: every question to it fails as a killed
// consent service's would.
func Unreachable(t testing.TB) *consentcheck.Checker {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "consenttest", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	conn, err := client.Dial(testkit.ClosedAddr(t), tel, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{})
}
