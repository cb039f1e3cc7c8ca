package credentials_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// kinds runs a test for banks and for partners, which share every code
// path but the Vault path.
var kinds = []struct {
	name  string
	put   func(t testing.TB, v *vaulttest.Server, id string, data map[string]any) int
	get   func(p *credentials.Provider, ctx context.Context, id string) (credentials.Secret, error)
	reads func(p *credentials.Provider, id string) int64
}{
	{
		name: "bank",
		put: func(t testing.TB, v *vaulttest.Server, id string, d map[string]any) int {
			return v.PutBankSecret(t, id, d)
		},
		get:   (*credentials.Provider).Bank,
		reads: (*credentials.Provider).Reads,
	},
	{
		name: "partner",
		put: func(t testing.TB, v *vaulttest.Server, id string, d map[string]any) int {
			return v.PutPartnerSecret(t, id, d)
		},
		get:   (*credentials.Provider).Partner,
		reads: (*credentials.Provider).PartnerReads,
	},
}

func TestRead(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	clock := newClock()
	p, _ := newProvider(t, rootConfig(v), credentials.WithClock(clock.Now))

	for _, tt := range kinds {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := map[string]any{"client_id": "bankbridge", "api_key": "k-" + tt.name, "port": 8443, "sandbox": true}
			tt.put(t, v, "acme", want)

			got, err := tt.get(p, t.Context(), "acme")
			if err != nil {
				t.Fatalf("%s(acme): %v", tt.name, err)
			}
			wantData := map[string]string{"client_id": "bankbridge", "api_key": "k-" + tt.name, "port": "8443", "sandbox": "true"}
			if got.ID != "acme" || got.Version != 1 || !maps.Equal(got.Data, wantData) || !got.FetchedAt.Equal(clock.Now()) {
				t.Errorf("%s(acme) = %+v, %v, want ID acme, version 1, FetchedAt %s, data %v",
					tt.name, got, got.Data, clock.Now(), wantData)
			}
			if n := tt.reads(p, "acme"); n != 1 {
				t.Errorf("Vault reads = %d, want 1", n)
			}
		})
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	clock := newClock()
	cfg := rootConfig(v)
	cfg.RefreshInterval = time.Minute
	p, _ := newProvider(t, cfg, credentials.WithClock(clock.Now))

	first, err := p.Bank(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Bank: %v", err)
	}
	first.Data["api_key"] = "changed by a caller"

	clock.Add(59 * time.Second)
	second, err := p.Bank(t.Context(), "acme")
	if err != nil {
		t.Fatalf("second Bank: %v", err)
	}
	if n := p.Reads("acme"); n != 1 {
		t.Errorf("Vault reads after a second call within RefreshInterval = %d, want 1", n)
	}
	if second.Data["api_key"] != "k1" {
		t.Errorf("second Bank api_key = %q, want k1: a caller's change must not reach the cache", second.Data["api_key"])
	}

	clock.Add(time.Second)
	if _, err := p.Bank(t.Context(), "acme"); err != nil {
		t.Fatalf("Bank after RefreshInterval: %v", err)
	}
	if n := p.Reads("acme"); n != 2 {
		t.Errorf("Vault reads after RefreshInterval = %d, want 2", n)
	}
}

func TestConcurrentFirstReadsShareOneVaultRead(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
	p, _ := newProvider(t, rootConfig(v))

	const callers = 1000
	start := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			<-start
			s, err := p.Bank(t.Context(), "acme")
			if err == nil && s.Data["api_key"] != "k1" {
				err = errors.New("wrong data: api_key is not k1")
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Bank: %v", err)
		}
	}
	if n := p.Reads("acme"); n != 1 {
		t.Errorf("Vault reads for %d concurrent first calls = %d, want 1", callers, n)
	}
}

func TestRotationIsPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	cfg := rootConfig(v)
	cfg.RefreshInterval = 200 * time.Millisecond
	p, logs := newProvider(t, cfg)

	for _, tt := range kinds {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.put(t, v, "acme", map[string]any{"api_key": "k1"})
			if s, err := tt.get(p, t.Context(), "acme"); err != nil || s.Version != 1 {
				t.Fatalf("%s before rotation = version %d, %v; want version 1", tt.name, s.Version, err)
			}

			tt.put(t, v, "acme", map[string]any{"api_key": "k2"})
			var s credentials.Secret
			var err error
			if !testkit.Within(5*time.Second, func() bool {
				s, err = tt.get(p, t.Context(), "acme")
				return err == nil && s.Version == 2
			}) {
				t.Fatalf("%s 5s after writing version 2 = version %d, %v", tt.name, s.Version, err)
			}
			if s.Data["api_key"] != "k2" {
				t.Fatalf("%s after rotation = %v, want the new key", tt.name, s.Data)
			}
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		if n := strings.Count(logs.String(), `"msg":"credentials rotated"`); n != len(kinds) {
			t.Errorf("%d rotation log lines, want %d:\n%s", n, len(kinds), logs.String())
		}
	})
}

func TestVaultOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		outage func(v *vaulttest.Server, t testing.TB)
	}{
		{name: "vault stopped", outage: func(v *vaulttest.Server, _ testing.TB) { v.Stop() }},
		{name: "vault sealed (503)", outage: (*vaulttest.Server).Seal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := vaulttest.Start(t)
			v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})
			clock := newClock()
			cfg := rootConfig(v)
			cfg.RefreshInterval = time.Minute
			cfg.MaxStale = 10 * time.Minute
			p, _ := newProvider(t, cfg, credentials.WithClock(clock.Now))
			fetched, err := p.Bank(t.Context(), "acme")
			if err != nil {
				t.Fatalf("Bank before the outage: %v", err)
			}

			tt.outage(v, t)
			clock.Add(2 * time.Minute)
			s, err := p.Bank(t.Context(), "acme")
			if err != nil {
				t.Fatalf("Bank 2m into the outage (MaxStale 10m): %v, want the cached secret", err)
			}
			if s.Version != 1 || s.Data["api_key"] != "k1" || !s.FetchedAt.Equal(fetched.FetchedAt) {
				t.Fatalf("stale Bank = %v, want version 1 fetched at %s", s, fetched.FetchedAt)
			}
			if n := p.Reads("acme"); n != 2 {
				t.Fatalf("Vault reads = %d, want 2 (the initial read and one failed refresh)", n)
			}
			if _, err := p.Bank(t.Context(), "acme"); err != nil {
				t.Fatalf("Bank right after a failed read: %v", err)
			}
			if n := p.Reads("acme"); n != 2 {
				t.Errorf("Vault reads right after a failed read = %d, want still 2: the cache answers without waiting for Vault to fail again", n)
			}

			_, err = p.Bank(t.Context(), "never-read")
			if !errors.Is(err, credentials.ErrUnavailable) {
				t.Errorf("Bank of an uncached bank during the outage = %v, want ErrUnavailable", err)
			}

			clock.Add(9 * time.Minute)
			s, err = p.Bank(t.Context(), "acme")
			if !errors.Is(err, credentials.ErrUnavailable) || errors.Is(err, credentials.ErrNotFound) {
				t.Fatalf("Bank 11m after the last read (MaxStale 10m) = %v, %v; want ErrUnavailable", s, err)
			}
			if s.Data != nil || s.Version != 0 {
				t.Errorf("Bank past MaxStale returned data %v; want the zero Secret", s)
			}
			for _, want := range []string{`bank "acme"`, "cached version 1", "past MaxStale 10m0s"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	clock := newClock()
	cfg := rootConfig(v)
	cfg.RefreshInterval = time.Minute
	p, _ := newProvider(t, cfg, credentials.WithClock(clock.Now))

	tests := []struct {
		name      string
		id        string
		wantReads int64
	}{
		{name: "never written", id: "nobank", wantReads: 1},
		{name: "empty id", id: "", wantReads: 0},
		{name: "path traversal", id: "a/../b", wantReads: 0},
		{name: "dot dot", id: "..", wantReads: 0},
		{name: "slash", id: "acme/extra", wantReads: 0},
		{name: "space", id: "ac me", wantReads: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Bank(t.Context(), tt.id)
			if !errors.Is(err, credentials.ErrNotFound) || errors.Is(err, credentials.ErrUnavailable) {
				t.Errorf("Bank(%q) = %v, want ErrNotFound only", tt.id, err)
			}
			if n := p.Reads(tt.id); n != tt.wantReads {
				t.Errorf("Vault reads for %q = %d, want %d", tt.id, n, tt.wantReads)
			}
		})
	}

	t.Run("deleted after caching", func(t *testing.T) {
		v.PutBankSecret(t, "gone", map[string]any{"api_key": "k1"})
		if _, err := p.Bank(t.Context(), "gone"); err != nil {
			t.Fatalf("Bank before delete: %v", err)
		}
		v.DeleteBankSecret(t, "gone")
		clock.Add(time.Minute)
		for i := range 2 {
			if _, err := p.Bank(t.Context(), "gone"); !errors.Is(err, credentials.ErrNotFound) {
				t.Fatalf("Bank #%d after delete = %v, want ErrNotFound: a deleted secret must not be served from cache", i+1, err)
			}
		}
	})
}

func TestClose(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.PutBankSecret(t, "acme", map[string]any{"api_key": "k1"})

	t.Run("Close", func(t *testing.T) {
		p, err := credentials.New(t.Context(), rootConfig(v))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := p.Bank(t.Context(), "acme"); err != nil {
			t.Fatalf("Bank: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := p.Bank(t.Context(), "acme"); !errors.Is(err, credentials.ErrUnavailable) {
			t.Errorf("Bank after Close = %v, want ErrUnavailable", err)
		}
	})

	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p, err := credentials.New(ctx, rootConfig(v))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		cancel()
		if _, err := p.Bank(t.Context(), "acme"); !errors.Is(err, credentials.ErrUnavailable) {
			t.Errorf("Bank after the provider's context ended = %v, want ErrUnavailable", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	t.Run("caller context cancelled", func(t *testing.T) {
		p, _ := newProvider(t, rootConfig(v))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := p.Bank(ctx, "acme"); !errors.Is(err, context.Canceled) {
			t.Errorf("Bank with a cancelled context = %v, want context.Canceled", err)
		}
	})
}
