package main

// The data services' consent hook (platform/consentcheck) against the real
// consent service: cached decisions while the change stream is up, dropped
// the moment a revocation is committed, and what the cache saves.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// checker returns a consent checker talking to the env's consent service
// with the balance service's token, and a counter of CheckConsent RPCs.
func (e *env) checker(t testing.TB, ttl time.Duration) (*consentcheck.Checker, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == consentv1.ConsentCheckService_CheckConsent_FullMethodName {
			calls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(count))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{CacheTTL: ttl})
	ctx, cancel := context.WithCancel(e.asService(t))
	t.Cleanup(cancel)
	go c.Watch(ctx)
	return c, &calls
}

func (e *env) linkValid(t testing.TB, user string) string {
	t.Helper()
	l := e.createLink(t, user, "sandbox")
	got, err := e.verify(t, user, l.GetName(), sandbox.Code)
	if err != nil {
		t.Fatal(err)
	}
	return got.GetName()
}

var balances = consentcheck.Need{Scope: commonv1.Scope_SCOPE_BALANCES, BankID: "sandbox"}

func TestConsentCacheDropsARevocationAtOnce(t *testing.T) {
	e := startEnv(t)
	link := e.linkValid(t, "alice")
	c, calls := e.checker(t, time.Minute)
	ctx := e.asService(t)
	purpose := commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION

	// Once the change stream is up, a second decision comes from the cache.
	if !testkit.Within(5*time.Second, func() bool {
		before := calls.Load()
		_, err1 := c.Decide(ctx, "alice", balances, purpose)
		_, err2 := c.Decide(ctx, "alice", balances, purpose)
		return err1 == nil && err2 == nil && calls.Load()-before <= 1
	}) {
		t.Fatalf("decisions were never served from the cache (%d RPCs)", calls.Load())
	}

	if _, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: link, IdempotencyKey: randomKey(t)}); err != nil {
		t.Fatal(err)
	}
	// The change reaches the watcher within milliseconds; the next decision
	// after it asks the consent service again and is refused.
	var err error
	if !testkit.Within(2*time.Second, func() bool {
		_, err = c.Decide(ctx, "alice", balances, purpose)
		return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
	}) {
		t.Fatalf("after revocation Decide = %v, want CONSENT_REVOKED", err)
	}
}

func TestConsentCacheIsOffWithoutTheStream(t *testing.T) {
	e := startEnv(t)
	e.linkValid(t, "bob")
	c, calls := e.checker(t, 0) // no cache
	ctx := e.asService(t)
	for range 3 {
		if _, err := c.Decide(ctx, "bob", balances, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d CheckConsent RPCs for 3 decisions without a cache, want 3", n)
	}
}

// BenchmarkConsentDecide measures one consent decision as a data service
// pays it: uncached (a CheckConsent RPC to the consent service and its
// SQLite store) and cached (while the change stream is up).
func BenchmarkConsentDecide(b *testing.B) {
	e := startEnv(b)
	e.linkValid(b, "alice")
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"uncached", 0}, {"cached", time.Minute}} {
		b.Run(bc.name, func(b *testing.B) {
			c, _ := e.checker(b, bc.ttl)
			ctx := e.asService(b)
			if bc.ttl > 0 && !testkit.Within(5*time.Second, func() bool {
				_, err := c.Decide(ctx, "alice", balances, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION)
				return err == nil
			}) {
				b.Fatal("no decision")
			}
			time.Sleep(200 * time.Millisecond) // let the stream come up
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Decide(ctx, "alice", balances, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
