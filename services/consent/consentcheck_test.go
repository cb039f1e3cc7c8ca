package main

// The data services' consent hook (platform/consentcheck) against the real
// consent service: cached decisions while the change stream is up, dropped
// the moment a revocation is committed, and what the cache saves.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

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
// SQLite store) and cached (while the change stream is up), each call
// another of decideUsers linked users', as production traffic is.
func BenchmarkConsentDecide(b *testing.B) {
	const decideUsers = 200
	e := startEnv(b)
	users := make([]string, decideUsers)
	for i := range users {
		// Each links the sandbox's customer alice: the sandbox knows
		// only its own customers' logins.
		// Linking calls the bank, whose per-bank rate limit the test
		// env keeps low: wait for it as a client would.
		users[i] = fmt.Sprintf("bench-%04d", i)
		var err error
		for range 100 {
			var resp *consentv1.CreateLinkResponse
			if resp, err = e.createLinkAs(users[i], "alice", randomKey(b)); err == nil {
				_, err = e.verify(b, users[i], resp.GetLink().GetName(), sandbox.Code)
			}
			if status.Code(err) != codes.ResourceExhausted {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	purpose := commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"uncached", 0}, {"cached", time.Minute}} {
		b.Run(bc.name, func(b *testing.B) {
			c, _ := e.checker(b, bc.ttl)
			ctx := e.asService(b)
			if bc.ttl > 0 && !testkit.Within(5*time.Second, func() bool {
				_, err := c.Decide(ctx, users[0], balances, purpose)
				return err == nil
			}) {
				b.Fatal("no decision")
			}
			time.Sleep(200 * time.Millisecond) // let the stream come up
			for _, u := range users {          // every user's first decision
				if _, err := c.Decide(ctx, u, balances, purpose); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := c.Decide(ctx, users[i], balances, purpose); err != nil {
					b.Fatal(err)
				}
				i = (i + 1) % len(users)
			}
		})
	}
}

// TestCheckerResolvesPartnersAndListsCoveringLinks: the data services' view
// of partner opt-ins and covering links, through the checker.
func TestCheckerResolvesPartnersAndListsCoveringLinks(t *testing.T) {
	e := startEnv(t)
	c, _ := e.checker(t, time.Minute)
	ctx := e.asService(t)
	o := e.mustOptIn(t, "alice", demoPartner, commonv1.Scope_SCOPE_RECEIPTS)

	got, err := c.ResolvePartner(ctx, demoPartner, o.GetPartnerUserId(), commonv1.Scope_SCOPE_RECEIPTS)
	if want := (consentcheck.PartnerUser{User: "alice", OptIn: o.GetName(), Client: chatApp}); err != nil || got != want {
		t.Fatalf("ResolvePartner = %+v, %v; want %+v", got, err, want)
	}
	for name, call := range map[string]func() error{
		"another partner": func() error {
			_, err := c.ResolvePartner(ctx, otherPartner, o.GetPartnerUserId(), commonv1.Scope_SCOPE_RECEIPTS)
			return err
		},
		"a scope not opted in to": func() error {
			_, err := c.ResolvePartner(ctx, demoPartner, o.GetPartnerUserId(), commonv1.Scope_SCOPE_SHIPPING)
			return err
		},
		"an id never minted": func() error {
			_, err := c.ResolvePartner(ctx, demoPartner, "AAAAAAAAAAAAAAAAAAAAAA", commonv1.Scope_SCOPE_RECEIPTS)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			testkit.RequireReason(t, call(), commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
		})
	}
	_, err = c.ResolvePartner(ctx, demoPartner, "bad id!", commonv1.Scope_SCOPE_RECEIPTS)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL) // no answer: refused

	if _, err := e.consent.RevokePartnerOptIn(e.as(t, "alice"), &consentv1.RevokePartnerOptInRequest{Name: o.GetName()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolvePartner(ctx, demoPartner, o.GetPartnerUserId(), commonv1.Scope_SCOPE_RECEIPTS)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)

	link := e.linkValid(t, "alice")
	links, err := c.CoveringLinks(ctx, "alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION)
	if err != nil || len(links) != 1 || links[0].Link != link || links[0].BankID != "sandbox" || links[0].BankConsentID == "" ||
		links[0].Client != chatApp || links[0].ExpireTime.Before(time.Now()) || len(links[0].Scopes) != 2 {
		t.Fatalf("CoveringLinks = %+v, %v; want %s", links, err, link)
	}
	links, err = c.CoveringLinks(ctx, "alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_MARKETING)
	if err != nil || len(links) != 0 {
		t.Errorf("CoveringLinks for marketing = %+v, %v; want none", links, err)
	}
}

// TestPartnerRevocationReachesTheCheckersSubscribers: revoking an opt-in
// reaches every AllChanges subscriber and the user's Changes subscribers.
func TestPartnerRevocationReachesTheCheckersSubscribers(t *testing.T) {
	e := startEnv(t)
	c, _ := e.checker(t, time.Minute)
	all, cancelAll := c.AllChanges()
	defer cancelAll()
	alice, cancelAlice := c.Changes("alice")
	defer cancelAlice()
	o := e.mustOptIn(t, "alice", demoPartner, commonv1.Scope_SCOPE_RECEIPTS, commonv1.Scope_SCOPE_SHIPPING)

	// The stream's coming up says Resync; the opt-in may come before or
	// after it.
	want := consentcheck.Change{User: "alice", PartnerOptIn: o.GetName(), Partner: demoPartner,
		PartnerState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED}
	deadline := time.After(5 * time.Second)
	var resynced bool
	for !resynced {
		select {
		case ch := <-all:
			resynced = ch.Resync
		case <-deadline:
			t.Fatal("the change stream never came up")
		}
	}
	drainChanges(alice)

	if _, err := e.consent.RevokePartnerOptIn(e.as(t, "alice"), &consentv1.RevokePartnerOptInRequest{Name: o.GetName()}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ch := <-all:
			if ch.PartnerState == consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_ACTIVE {
				continue // the opt-in itself, had it come after the Resync
			}
			if ch != want {
				t.Fatalf("change %+v, want %+v", ch, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the revocation did not reach AllChanges")
		}
		break
	}
	select {
	case <-alice:
	case <-time.After(5 * time.Second):
		t.Fatal("the revocation did not reach Changes(alice)")
	}
}

func drainChanges(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}
