package consentcheck_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// consentServer is the consent service's check API over real gRPC: users
// in allowed have consent; push sends a change on every open watch; drop
// ends every open watch.
type consentServer struct {
	consentv1.UnimplementedConsentCheckServiceServer

	mu      sync.Mutex
	allowed map[string]bool
	// expire is the expire_time of allowed decisions (zero: none sent);
	// denial the reason of denied ones (default CONSENT_REVOKED).
	expire time.Time
	// clock is the consent service's own clock (default time.Now): it
	// reports valid_for from it, and with expireOwn it decides by it too.
	clock     func() time.Time
	expireOwn bool
	denial    commonv1.ErrorReason
	checks    int
	down      bool
	watches   map[chan *consentv1.WatchConsentChangesResponse]chan struct{}

	// resolved and covering answer ResolvePartnerUser and
	// ListCoveringLinks, and failing fails both; got* are the requests.
	resolved    *consentv1.ResolvePartnerUserResponse
	covering    []*consentv1.CoveringLink
	failing     error
	gotResolve  *consentv1.ResolvePartnerUserRequest
	gotCovering *consentv1.ListCoveringLinksRequest
}

func (s *consentServer) ResolvePartnerUser(_ context.Context, req *consentv1.ResolvePartnerUserRequest) (*consentv1.ResolvePartnerUserResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gotResolve = req
	if s.failing != nil {
		return nil, s.failing
	}
	return s.resolved, nil
}

func (s *consentServer) ListCoveringLinks(_ context.Context, req *consentv1.ListCoveringLinksRequest) (*consentv1.ListCoveringLinksResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gotCovering = req
	if s.failing != nil {
		return nil, s.failing
	}
	return &consentv1.ListCoveringLinksResponse{Links: s.covering}, nil
}

// set changes the fake's answers under its lock.
func (s *consentServer) set(f func(s *consentServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *consentServer) CheckConsent(_ context.Context, req *consentv1.CheckConsentRequest) (*consentv1.CheckConsentResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	user, _ := names.UserOf(req.GetUser())
	now := time.Now()
	if s.clock != nil {
		now = s.clock()
	}
	if s.expireOwn && !now.Before(s.expire) {
		return &consentv1.CheckConsentResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED}, nil
	}
	if !s.allowed[user] {
		denial := s.denial
		if denial == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			denial = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED
		}
		return &consentv1.CheckConsentResponse{DenialReason: denial}, nil
	}
	resp := &consentv1.CheckConsentResponse{Allowed: true, Link: req.GetUser() + "/links/l1"}
	if !s.expire.IsZero() {
		resp.ExpireTime = timestamppb.New(s.expire)
		resp.ValidFor = durationpb.New(s.expire.Sub(now))
	}
	return resp, nil
}

func (s *consentServer) WatchConsentChanges(_ *consentv1.WatchConsentChangesRequest, stream grpc.ServerStreamingServer[consentv1.WatchConsentChangesResponse]) error {
	ch, drop := make(chan *consentv1.WatchConsentChangesResponse, 16), make(chan struct{})
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return status.Error(codes.Unavailable, "change feed down")
	}
	s.watches[ch] = drop
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watches, ch)
		s.mu.Unlock()
	}()
	if err := stream.Send(&consentv1.WatchConsentChangesResponse{}); err != nil {
		return err
	}
	for {
		select {
		case c := <-ch:
			if err := stream.Send(c); err != nil {
				return err
			}
		case <-drop:
			_, err := apierr.Internal()
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

func (s *consentServer) watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}

func (s *consentServer) checkCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks
}

// revoke takes user's consent away and tells the watchers.
func (s *consentServer) revoke(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[user] = false
	for ch := range s.watches {
		ch <- &consentv1.WatchConsentChangesResponse{User: names.User(user), Link: names.User(user) + "/links/l1", State: consentv1.ConsentState_CONSENT_STATE_REVOKED}
	}
}

// push sends a change on every open watch.
func (s *consentServer) push(c *consentv1.WatchConsentChangesResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watches {
		ch <- c
	}
}

// drop ends every open watch with INTERNAL, as a broken change feed does,
// and refuses new ones until up.
func (s *consentServer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	for ch, drop := range s.watches {
		close(drop)
		delete(s.watches, ch)
	}
}

func (s *consentServer) up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

// start serves a consent server and runs a checker's Watch against it;
// decisions are cached for an hour, their consents expire in a year.
func start(t *testing.T, users ...string) (*consentServer, *consentcheck.Checker) {
	t.Helper()
	return startWith(t, consentcheck.Options{CacheTTL: time.Hour}, time.Now().AddDate(1, 0, 0), users...)
}

// startWith is start with the checker's options and the consents' expiry.
func startWith(t *testing.T, opts consentcheck.Options, expire time.Time, users ...string) (*consentServer, *consentcheck.Checker) {
	t.Helper()
	fake := &consentServer{allowed: map[string]bool{}, expire: expire, watches: map[chan *consentv1.WatchConsentChangesResponse]chan struct{}{}}
	for _, u := range users {
		fake.allowed[u] = true
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	consentv1.RegisterConsentCheckServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Watch(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return fake, c
}

var need = access.Need{Scope: commonv1.Scope_SCOPE_SHIPPING}

const purpose = commonv1.Purpose_PURPOSE_ORDER_TRACKING

func receive(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification: %s", what)
	}
}

func none(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("unexpected notification: %s", what)
	case <-time.After(100 * time.Millisecond):
	}
}

// drain empties ch of the notifications the watch's start sent.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// TestChangesNotifiesTheUserAfterForgetting: a change for alice reaches
// alice's subscribers, not bob's, and a Decide after the notification asks
// the consent service again even though the cache would have kept the
// allowed decision for an hour.
func TestChangesNotifiesTheUserAfterForgetting(t *testing.T) {
	t.Parallel()
	fake, c := start(t, "alice", "bob")
	alice, cancelAlice := c.Changes("alice")
	defer cancelAlice()
	bob, cancelBob := c.Changes("bob")
	defer cancelBob()
	waitWatching(t, fake)
	drain(alice)
	drain(bob)

	// Cached while the watch is up: the second Decide does not ask.
	for range 2 {
		if _, err := c.Decide(t.Context(), "alice", need, purpose); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.checkCount(); n != 1 {
		t.Fatalf("consent checks = %d, want 1 (the second decision cached)", n)
	}

	fake.revoke("alice")
	receive(t, alice, "alice's consent changed")
	none(t, bob, "only alice's consent changed")
	_, err := c.Decide(t.Context(), "alice", need, purpose)
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED) {
		t.Fatalf("Decide after the change = %v, want CONSENT_REVOKED (the cached decision dropped before the notification)", err)
	}
}

// TestChangesOnFeedLoss: when the change stream drops, changes may be
// missed, so every subscriber hears of it; again when it comes back.
func TestChangesOnFeedLoss(t *testing.T) {
	t.Parallel()
	fake, c := start(t, "alice", "bob")
	alice, cancelAlice := c.Changes("alice")
	defer cancelAlice()
	bob, cancelBob := c.Changes("bob")
	waitWatching(t, fake)
	drain(alice)
	drain(bob)
	cancelBob()
	cancelBob() // safe twice

	fake.drop()
	receive(t, alice, "the change stream dropped")
	none(t, alice, "failed reconnects change nothing")
	fake.up()
	waitWatching(t, fake)
	receive(t, alice, "the change stream came back")
	none(t, bob, "bob cancelled")
}

func waitWatching(t *testing.T, fake *consentServer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fake.watchers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the checker never opened the change stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestACachedDecisionNeverOutlivesItsConsent: a consent that expires in
// two seconds is not served from a cache that would keep it for an hour:
// once it has expired, the next call asks the consent service, which says
// CONSENT_EXPIRED.
func TestACachedDecisionNeverOutlivesItsConsent(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	fake, c := startWith(t, consentcheck.Options{CacheTTL: time.Hour, Now: clock.Now}, clock.Now().Add(2*time.Second), "alice")
	waitWatching(t, fake)
	waitCached(t, c, fake)
	before := fake.checkCount()

	clock.Add(1500 * time.Millisecond) // the consent still holds: cached
	if _, err := c.Decide(t.Context(), "alice", need, purpose); err != nil || fake.checkCount() != before {
		t.Fatalf("Decide before the consent expired = %v after %d checks, want it cached (%d)", err, fake.checkCount(), before)
	}

	fake.set(func(s *consentServer) {
		s.allowed["alice"], s.denial = false, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED
	})
	clock.Add(time.Second) // the consent has expired, the cache's hour has not
	_, err := c.Decide(t.Context(), "alice", need, purpose)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
	if fake.checkCount() != before+1 {
		t.Errorf("consent checks = %d, want %d: the expired decision was served from the cache", fake.checkCount(), before+1)
	}
}

// TestADecisionWithoutExpiryIsNotCached: an allowed answer that names no
// expiry cannot be known to still hold; every call asks.
func TestADecisionWithoutExpiryIsNotCached(t *testing.T) {
	t.Parallel()
	fake, c := startWith(t, consentcheck.Options{CacheTTL: time.Hour}, time.Time{}, "alice")
	waitWatching(t, fake)
	for range 3 {
		if _, err := c.Decide(t.Context(), "alice", need, purpose); err != nil {
			t.Fatal(err)
		}
	}
	// The watch may come up between calls; none of the three is cached
	// either way.
	if n := fake.checkCount(); n != 3 {
		t.Errorf("consent checks = %d, want 3", n)
	}
}

// waitCached decides for alice until a decision is cached (the change
// stream's first message, which turns the cache on, may come after the
// stream opened).
func waitCached(t *testing.T, c *consentcheck.Checker, fake *consentServer) {
	t.Helper()
	testkit.Eventually(t, func() bool {
		n := fake.checkCount()
		for range 2 {
			if _, err := c.Decide(t.Context(), "alice", need, purpose); err != nil {
				t.Fatal(err)
			}
		}
		return fake.checkCount() == n+1
	}, 5*time.Second)
}

// TestCachedDecisionsHoldUnderClockSkew: the consent service's clock is 5
// minutes ahead of or behind this service's. A consent that has 10 s left
// as consent sees it is served, from the cache, until then and never after
// (consent then says CONSENT_EXPIRED), and consent is asked about once
// while it holds, whichever way the clocks disagree: the cache counts the
// consent's remaining validity on its own clock instead of comparing the
// consent's expire_time with it.
func TestCachedDecisionsHoldUnderClockSkew(t *testing.T) {
	t.Parallel()
	const ttl, left = 30 * time.Second, 10 * time.Second
	tests := []struct {
		name string
		skew time.Duration // the consent service's clock minus ours
	}{
		{name: "consent 5 min ahead", skew: 5 * time.Minute},
		{name: "consent 5 min behind", skew: -5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := testkit.NewClock(time.Now())
			consentNow := func() time.Time { return clock.Now().Add(tt.skew) }
			fake, c := startWith(t, consentcheck.Options{CacheTTL: ttl, Now: clock.Now}, consentNow().Add(left), "alice")
			fake.set(func(s *consentServer) { s.clock, s.expireOwn = consentNow, true })
			waitWatching(t, fake)
			testkit.Eventually(t, func() bool { return consentcheck.Watching(c) }, 5*time.Second)

			served := 0
			for step := time.Duration(0); step <= ttl+time.Second; step += 500 * time.Millisecond {
				_, err := c.Decide(t.Context(), "alice", need, purpose)
				expired := !consentNow().Before(fake.expire)
				switch {
				case expired && err == nil:
					t.Fatalf("at %s, %s after the consent expired as consent sees it: served (from the cache)", step, consentNow().Sub(fake.expire))
				case expired:
					testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
				case err != nil:
					t.Fatalf("at %s, %s before the consent expires: refused: %v", step, fake.expire.Sub(consentNow()), err)
				default:
					served++
				}
				clock.Add(500 * time.Millisecond)
			}
			if served != int(left/(500*time.Millisecond)) {
				t.Errorf("served %d calls while the consent held, want %d", served, left/(500*time.Millisecond))
			}
			// One question for the 20 calls while the consent held, then
			// one per call once it expired (denials are not cached).
			if want := 1 + (int((ttl+time.Second)/(500*time.Millisecond)) + 1 - served); fake.checkCount() != want {
				t.Errorf("consent checks = %d, want %d: the consent held for %s and was asked about once in that time", fake.checkCount(), want, left)
			}
		})
	}
}
