package credentials_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
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
func newProvider(t *testing.T, cfg credentials.Config, opts ...credentials.Option) (*credentials.Provider, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts = append([]credentials.Option{credentials.WithLogger(logs.logger())}, opts...)
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

// logBuffer collects the provider's log lines so tests can scan them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeClock is a clock the test moves by hand, to age cached secrets
// without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
