package consentcheck_test

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// serveOnly serves fake without a watch and returns a checker on it that
// logs to logs.
func serveOnly(t *testing.T, fake *consentServer, logs *testkit.SyncBuffer) *consentcheck.Checker {
	t.Helper()
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
	return consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
}

const secretID = "Zm9vYmFyYmF6cXV4cXV1eA"

func TestResolvePartner(t *testing.T) {
	t.Parallel()
	fake := &consentServer{}
	var logs testkit.SyncBuffer
	c := serveOnly(t, fake, &logs)
	rcpt := commonv1.Scope_SCOPE_RECEIPTS

	t.Run("allowed: the user, the opt-in and the product", func(t *testing.T) {
		fake.set(func(s *consentServer) {
			s.failing = nil
			s.resolved = &consentv1.ResolvePartnerUserResponse{
				Allowed: true, User: "users/alice", PartnerOptIn: "users/alice/partnerOptIns/o1", Client: "chat-app",
			}
		})
		got, err := c.ResolvePartner(t.Context(), "demo-partner", secretID, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		if want := (consentcheck.PartnerUser{User: "alice", OptIn: "users/alice/partnerOptIns/o1", Client: "chat-app"}); got != want {
			t.Errorf("ResolvePartner = %+v, want %+v", got, want)
		}
		fake.set(func(s *consentServer) {
			if r := s.gotResolve; r.GetPartner() != "demo-partner" || r.GetPartnerUserId() != secretID || r.GetScope() != rcpt {
				t.Errorf("asked %v", r)
			}
		})
	})

	tests := []struct {
		name   string
		resp   *consentv1.ResolvePartnerUserResponse
		fail   error
		reason commonv1.ErrorReason
	}{
		{"no such id", &consentv1.ResolvePartnerUserResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"revoked", &consentv1.ResolvePartnerUserResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, PartnerOptIn: "users/alice/partnerOptIns/o1"}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED},
		{"a denial without a reason", &consentv1.ResolvePartnerUserResponse{}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"a denial with an unexpected reason", &consentv1.ResolvePartnerUserResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"allowed without a user", &consentv1.ResolvePartnerUserResponse{Allowed: true, User: "alice"}, nil,
			commonv1.ErrorReason_ERROR_REASON_INTERNAL},
		{"the consent service fails", nil, status.Error(codes.Internal, "store broken"),
			commonv1.ErrorReason_ERROR_REASON_INTERNAL},
		{"the consent service is unavailable", nil, status.Error(codes.Unavailable, "store down"),
			commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.set(func(s *consentServer) { s.resolved, s.failing = tt.resp, tt.fail })
			got, err := c.ResolvePartner(t.Context(), "demo-partner", secretID, rcpt)
			md := testkit.RequireReason(t, err, tt.reason)
			if got != (consentcheck.PartnerUser{}) {
				t.Errorf("a refusal answered %+v", got)
			}
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_INTERNAL {
				if id := md["incident_id"]; id == "" || !strings.Contains(logs.String(), id) {
					t.Errorf("incident id %q not logged:\n%s", id, logs.String())
				}
				if strings.Contains(err.Error(), "store broken") {
					t.Errorf("the cause reached the caller: %v", err)
				}
			}
		})
	}
	if strings.Contains(logs.String(), secretID) || strings.Contains(logs.String(), "alice") {
		t.Errorf("the log holds a partner user id or a user id:\n%s", logs.String())
	}
}

func TestCoveringLinks(t *testing.T) {
	t.Parallel()
	fake := &consentServer{}
	var logs testkit.SyncBuffer
	c := serveOnly(t, fake, &logs)
	expire := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	fake.set(func(s *consentServer) {
		s.covering = []*consentv1.CoveringLink{{
			Link: "users/alice/links/l2", BankId: "sandbox", BankConsentId: "cns-2", ExpireTime: timestamppb.New(expire),
			Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_RECEIPTS}, Client: "chat-app",
		}}
	})
	got, err := c.CoveringLinks(t.Context(), "alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Link != "users/alice/links/l2" || got[0].BankID != "sandbox" || got[0].BankConsentID != "cns-2" ||
		got[0].Client != "chat-app" || !got[0].ExpireTime.Equal(expire) || len(got[0].Scopes) != 2 {
		t.Errorf("CoveringLinks = %+v", got)
	}
	fake.set(func(s *consentServer) {
		if r := s.gotCovering; r.GetUser() != "users/alice" || r.GetScope() != commonv1.Scope_SCOPE_RECEIPTS || r.GetPurpose() != commonv1.Purpose_PURPOSE_PURCHASE_HISTORY {
			t.Errorf("asked %v", r)
		}
		s.failing = errors.New("boom")
	})
	got, err = c.CoveringLinks(t.Context(), "alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)
	if got != nil {
		t.Errorf("a failure answered %v", got)
	}
}

func next(t *testing.T, ch <-chan consentcheck.Change, what string) consentcheck.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no change: %s", what)
	}
	return consentcheck.Change{}
}

func noChange(t *testing.T, ch <-chan consentcheck.Change, what string) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("unexpected change %+v: %s", c, what)
	case <-time.After(100 * time.Millisecond):
	}
}

var (
	linkRevoked = &consentv1.WatchConsentChangesResponse{
		User: "users/alice", Link: "users/alice/links/l1", State: consentv1.ConsentState_CONSENT_STATE_REVOKED,
	}
	optInRevoked = &consentv1.WatchConsentChangesResponse{
		User: "users/bob", PartnerOptIn: "users/bob/partnerOptIns/o1", Partner: "demo-partner",
		PartnerOptInState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED,
	}
)

// TestAllChanges: every change reaches every AllChanges subscriber, link
// and partner opt-in alike, after a Resync each time the stream comes up.
func TestAllChanges(t *testing.T) {
	t.Parallel()
	fake, c := start(t, "alice", "bob")
	all, cancel := c.AllChanges()
	defer cancel()
	waitWatching(t, fake)
	if got := next(t, all, "the stream came up"); got != (consentcheck.Change{Resync: true}) {
		t.Fatalf("first change %+v, want Resync alone", got)
	}

	fake.push(linkRevoked)
	fake.push(optInRevoked)
	want := []consentcheck.Change{
		{User: "alice", Link: "users/alice/links/l1", LinkState: consentv1.ConsentState_CONSENT_STATE_REVOKED},
		{User: "bob", PartnerOptIn: "users/bob/partnerOptIns/o1", Partner: "demo-partner", PartnerState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED},
	}
	for _, w := range want {
		if got := next(t, all, "a pushed change"); got != w {
			t.Errorf("change %+v, want %+v", got, w)
		}
	}

	fake.drop()
	noChange(t, all, "the stream is down: nothing to report yet")
	fake.up()
	waitWatching(t, fake)
	if got := next(t, all, "the stream came back"); got != (consentcheck.Change{Resync: true}) {
		t.Errorf("after reconnecting %+v, want Resync alone", got)
	}

	cancel()
	cancel() // safe twice
	if _, ok := <-all; ok {
		t.Error("the channel stayed open after cancel")
	}
	fake.push(linkRevoked) // no subscriber: nothing blocks
}

// TestPartnerChangeDropsTheUsersDecisions: a partner opt-in change is a
// change of the user's consent like a link's: cached decisions go, and
// Changes subscribers hear of it.
func TestPartnerChangeDropsTheUsersDecisions(t *testing.T) {
	t.Parallel()
	fake, c := start(t, "bob")
	bob, cancelBob := c.Changes("bob")
	defer cancelBob()
	waitWatching(t, fake)
	drain(bob)
	for range 2 {
		if _, err := c.Decide(t.Context(), "bob", need, purpose); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.checkCount(); n != 1 {
		t.Fatalf("consent checks = %d, want 1 (cached)", n)
	}
	fake.push(optInRevoked)
	receive(t, bob, "bob's partner opt-in changed")
	if _, err := c.Decide(t.Context(), "bob", need, purpose); err != nil {
		t.Fatal(err)
	}
	if n := fake.checkCount(); n != 2 {
		t.Errorf("consent checks = %d, want 2 (the cached decision dropped)", n)
	}
}

// TestAllChangesNeverBlocksTheWatcher: a subscriber that reads nothing gets
// Resync in place of what did not fit, while another keeps getting every
// change (or, should it fall behind too, a Resync for what it missed).
func TestAllChangesNeverBlocksTheWatcher(t *testing.T) {
	t.Parallel()
	fake, c := start(t, "alice")
	slow, cancelSlow := c.AllChanges()
	defer cancelSlow()
	fast, cancelFast := c.AllChanges()
	defer cancelFast()
	waitWatching(t, fake)
	// Whether the watch came up before or after the subscriptions (start
	// runs it), each begins with one Resync.
	for _, ch := range []<-chan consentcheck.Change{slow, fast} {
		if got := next(t, ch, "the stream came up"); !got.Resync {
			t.Fatalf("first change %+v, want Resync", got)
		}
	}

	const n = 600 // well beyond any buffer
	marker := &consentv1.WatchConsentChangesResponse{User: "users/zed", Link: "users/zed/links/last", State: consentv1.ConsentState_CONSENT_STATE_REVOKED}
	type tally struct{ changes, resyncs int }
	done := make(chan tally)
	go func() {
		var got tally
		for ch := range fast {
			switch {
			case ch.Resync:
				got.resyncs++
			case ch.User == "zed":
				done <- got
				return
			default:
				got.changes++
			}
		}
	}()
	for range n {
		fake.push(linkRevoked)
	}
	// Should the reader have fallen behind at the end, a marker was lost
	// to its Resync: the next one gets through.
	deadline := time.After(10 * time.Second)
	var got tally
wait:
	for {
		fake.push(marker)
		select {
		case got = <-done:
			break wait
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no change reached the reading subscriber any more: the slow one blocked the watcher")
		}
	}
	if got.changes != n && got.resyncs == 0 {
		t.Fatalf("the reading subscriber got %d of %d changes and no Resync", got.changes, n)
	}

	var changes, resyncs int
	last := consentcheck.Change{}
	for {
		select {
		case ch := <-slow:
			if ch.Resync {
				resyncs++
			} else {
				changes++
			}
			last = ch
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if !last.Resync || changes >= n {
		t.Errorf("the slow subscriber got %d changes and %d resyncs, ending with %+v: want fewer than %d, then Resync", changes, resyncs, last, n)
	}
	// Caught up, it gets changes again.
	fake.push(linkRevoked)
	if got := next(t, slow, "after catching up"); got.Resync || got.Link == "" {
		t.Errorf("after catching up %+v, want the change", got)
	}
}
