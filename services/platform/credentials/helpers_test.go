package credentials_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// rootConfig logs in with the dev server's root token, which never expires.
func rootConfig(v *vaulttest.Server) credentials.Config {
	return credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(v.RootToken())},
	}
}

// newProvider starts a provider that logs into a buffer and closes with the
// test; the log is shown if the test fails.
func newProvider(t *testing.T, cfg credentials.Config, opts ...credentials.Option) (*credentials.Provider, *testkit.SyncBuffer) {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	opts = append([]credentials.Option{credentials.WithLogger(debugLogger(logs))}, opts...)
	p, err := credentials.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("provider log:\n%s", logs.String())
		}
	})
	return p, logs
}

// debugLogger logs everything, as JSON, into w.
func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newClock returns a clock the test moves by hand, to age cached secrets
// without sleeping.
func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}
