package app_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

const (
	demoPartner  = "demo-partner"
	otherPartner = "other-partner"
	chatApp      = "chat-app"
)

var (
	receipts = []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS}
	both     = []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS, commonv1.Scope_SCOPE_SHIPPING}
	// partnerUserIDShape is the contract's rule for a partner-scoped id.
	partnerUserIDShape = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
)

// withPartners is f's store and clock under a service that knows the two
// partners.
func withPartners(t *testing.T, f *fixture) *app.Service {
	t.Helper()
	svc, err := app.New(f.st, f.bank, app.Config{Now: f.clock.Now, Partners: map[string]bool{demoPartner: true, otherPartner: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func optIn(t *testing.T, svc *app.Service, user, partner string, scopes []commonv1.Scope) app.PartnerOptIn {
	t.Helper()
	o, err := svc.CreatePartnerOptIn(t.Context(), app.CreatePartnerOptInInput{User: user, Client: chatApp, Partner: partner, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestCreatePartnerOptIn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc := withPartners(t, f)

	t.Run("an unknown partner is NOT_FOUND, naming the field", func(t *testing.T) {
		for _, partner := range []string{"no-such-partner", "chat-app"} {
			_, err := svc.CreatePartnerOptIn(t.Context(), app.CreatePartnerOptInInput{User: "alice", Client: chatApp, Partner: partner, Scopes: receipts})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
			testkit.RequireFieldViolation(t, err, "partner_opt_in.partner")
			if strings.Contains(err.Error(), demoPartner) {
				t.Errorf("the error lists the partners: %v", err)
			}
		}
	})

	t.Run("a service without partners knows none", func(t *testing.T) {
		_, err := f.svc.CreatePartnerOptIn(t.Context(), app.CreatePartnerOptInInput{User: "alice", Client: chatApp, Partner: demoPartner, Scopes: receipts})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})

	first := optIn(t, svc, "alice", demoPartner, both)
	t.Run("an ACTIVE opt-in with a fresh partner user id and the product client", func(t *testing.T) {
		if first.State != app.OptInActive || !first.RevokeTime.IsZero() || !first.CreateTime.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("opt-in %+v: want ACTIVE, created now", first)
		}
		if !partnerUserIDShape.MatchString(first.PartnerUserID) || len(first.PartnerUserID) < 20 {
			t.Errorf("partner user id %q: want ~22 URL-safe characters", first.PartnerUserID)
		}
		if first.Client != chatApp || first.Partner != demoPartner || !strings.HasPrefix(first.Name(), "users/alice/partnerOptIns/") {
			t.Errorf("opt-in %+v", first)
		}
	})

	t.Run("a retry returns the same opt-in, whatever the order of the scopes", func(t *testing.T) {
		again := optIn(t, svc, "alice", demoPartner, []commonv1.Scope{commonv1.Scope_SCOPE_SHIPPING, commonv1.Scope_SCOPE_RECEIPTS})
		if again.ID != first.ID || again.PartnerUserID != first.PartnerUserID {
			t.Errorf("retry made %s (%s) besides %s", again.ID, again.PartnerUserID, first.ID)
		}
	})

	t.Run("other scopes while ACTIVE are ALREADY_EXISTS", func(t *testing.T) {
		_, err := svc.CreatePartnerOptIn(t.Context(), app.CreatePartnerOptInInput{User: "alice", Client: chatApp, Partner: demoPartner, Scopes: receipts})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS)
	})

	t.Run("two partners get two ids for the same user", func(t *testing.T) {
		other := optIn(t, svc, "alice", otherPartner, both)
		if other.PartnerUserID == first.PartnerUserID || other.ID == first.ID {
			t.Errorf("the partners share %s", other.PartnerUserID)
		}
	})

	t.Run("after a revocation, a new opt-in gets a new id", func(t *testing.T) {
		if _, err := svc.RevokePartnerOptIn(t.Context(), "alice", first.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Second)
		fresh := optIn(t, svc, "alice", demoPartner, receipts)
		if fresh.ID == first.ID || fresh.PartnerUserID == first.PartnerUserID {
			t.Errorf("the new opt-in reuses %s / %s", fresh.ID, fresh.PartnerUserID)
		}
	})

	t.Run("created and revoked go to the outbox for the product, without the id", func(t *testing.T) {
		for typ, n := range map[string]int{app.EventPartnerOptInCreated: 3, app.EventPartnerOptInRevoked: 1} {
			evs := f.outboxed(t, typ)
			if len(evs) != n {
				t.Fatalf("%d %s events, want %d", len(evs), typ, n)
			}
			for _, e := range evs {
				if e.Client != chatApp || e.User != "alice" || !strings.HasPrefix(e.Resource, "users/alice/partnerOptIns/") {
					t.Errorf("event %+v: want it for alice, to %s", e, chatApp)
				}
				if strings.Contains(string(e.Data), first.PartnerUserID) {
					t.Errorf("event %s carries the partner user id", e.Type)
				}
			}
		}
	})
}

// TestCreatePartnerOptInConcurrently: retries racing each other make one
// opt-in, which they all return.
func TestCreatePartnerOptInConcurrently(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc := withPartners(t, f)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	for range 8 {
		wg.Go(func() {
			o, err := svc.CreatePartnerOptIn(context.Background(), app.CreatePartnerOptInInput{User: "alice", Client: chatApp, Partner: demoPartner, Scopes: receipts})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[o.PartnerUserID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Errorf("concurrent creates made %d opt-ins, want 1", len(ids))
	}
}

func TestRevokePartnerOptIn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc := withPartners(t, f)
	o := optIn(t, svc, "alice", demoPartner, receipts)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := svc.WatchChanges(ctx)

	f.clock.Add(time.Minute)
	got, err := svc.RevokePartnerOptIn(t.Context(), "alice", o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != app.OptInRevoked || !got.RevokeTime.Equal(f.clock.Now().Truncate(time.Microsecond)) || got.PartnerUserID != o.PartnerUserID {
		t.Errorf("revoked %+v: want REVOKED now, the same id", got)
	}
	select {
	case c := <-changes:
		if want := (app.Change{User: "alice", OptInID: o.ID, Partner: demoPartner, OptInState: app.OptInRevoked}); c != want {
			t.Errorf("change %+v, want %+v", c, want)
		}
	case <-time.After(5 * time.Second):
		t.Error("watchers did not hear of the revocation")
	}

	f.clock.Add(time.Minute)
	again, err := svc.RevokePartnerOptIn(t.Context(), "alice", o.ID)
	if err != nil || again.State != app.OptInRevoked || !again.RevokeTime.Equal(got.RevokeTime) {
		t.Errorf("revoking again = %+v, %v; want it unchanged", again, err)
	}
	select {
	case c := <-changes:
		t.Errorf("revoking again published %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
	if n := len(f.outboxed(t, app.EventPartnerOptInRevoked)); n != 1 {
		t.Errorf("%d revocation events, want 1", n)
	}

	for name, call := range map[string]func() error{
		"unknown opt-in": func() error {
			_, err := svc.RevokePartnerOptIn(t.Context(), "alice", "nope")
			return err
		},
		"another user's opt-in": func() error {
			_, err := svc.RevokePartnerOptIn(t.Context(), "bob", o.ID)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			testkit.RequireReason(t, call(), commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		})
	}
}

func TestResolvePartnerUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc := withPartners(t, f)
	alice := optIn(t, svc, "alice", demoPartner, receipts)
	aliceOther := optIn(t, svc, "alice", otherPartner, both)
	bob := optIn(t, svc, "bob", demoPartner, both)
	if _, err := svc.RevokePartnerOptIn(t.Context(), "bob", bob.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		q       app.PartnerUserQuery
		allowed bool
		reason  commonv1.ErrorReason
		optIn   string // the opt-in named; "" when the partner has no such id
	}{
		{"the partner's own id", app.PartnerUserQuery{demoPartner, alice.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS}, true, 0, alice.Name()},
		{"a scope the opt-in does not cover", app.PartnerUserQuery{demoPartner, alice.PartnerUserID, commonv1.Scope_SCOPE_SHIPPING}, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, alice.Name()},
		{"an id never minted", app.PartnerUserQuery{demoPartner, "AAAAAAAAAAAAAAAAAAAAAA", commonv1.Scope_SCOPE_RECEIPTS}, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"another partner's id", app.PartnerUserQuery{demoPartner, aliceOther.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS}, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"the other partner's own id", app.PartnerUserQuery{otherPartner, aliceOther.PartnerUserID, commonv1.Scope_SCOPE_SHIPPING}, true, 0, aliceOther.Name()},
		{"a revoked opt-in", app.PartnerUserQuery{demoPartner, bob.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS}, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, bob.Name()},
		{"a revoked opt-in, asked by another partner", app.PartnerUserQuery{otherPartner, bob.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS}, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := svc.ResolvePartnerUser(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allowed || d.DenialReason != tt.reason || (d.OptIn.ID != "") != (tt.optIn != "") ||
				(tt.optIn != "" && d.OptIn.Name() != tt.optIn) {
				t.Errorf("decision %+v; want allowed %v, reason %s, opt-in %q", d, tt.allowed, tt.reason, tt.optIn)
			}
			if d.Allowed && (d.OptIn.User != "alice" || d.OptIn.Client != chatApp) {
				t.Errorf("allowed for %q through %q, want alice through %s", d.OptIn.User, d.OptIn.Client, chatApp)
			}
		})
	}
}

func TestListPartnerOptIns(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc := withPartners(t, f)
	var made []string
	for _, p := range []string{demoPartner, otherPartner} {
		made = append(made, optIn(t, svc, "alice", p, receipts).ID)
		f.clock.Add(time.Second)
	}
	if _, err := svc.RevokePartnerOptIn(t.Context(), "alice", made[0]); err != nil {
		t.Fatal(err)
	}
	made = append(made, optIn(t, svc, "alice", demoPartner, both).ID)
	optIn(t, svc, "bob", demoPartner, receipts)

	var got []string
	token := ""
	for {
		page, next, err := svc.ListPartnerOptIns(t.Context(), app.ListPartnerOptInsInput{User: "alice", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			got = append(got, o.ID)
		}
		if token = next; token == "" {
			break
		}
	}
	if want := []string{made[2], made[1], made[0]}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("alice's opt-ins %v, want newest first %v", got, want)
	}
	_, _, err := svc.ListPartnerOptIns(t.Context(), app.ListPartnerOptInsInput{User: "alice", PageToken: "bogus"})
	requirePageTokenInvalid(t, err)
}

func TestListCoveringLinks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	link := func(user, bank string, scopes []commonv1.Scope, purposes []commonv1.Purpose) app.Link {
		t.Helper()
		in := createInput(user)
		in.BankID, in.Client, in.Scopes, in.Purposes = bank, chatApp, scopes, purposes
		l, err := f.svc.CreateLink(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		if l, err = f.verify(t, l, codeRight); err != nil || l.State != app.StateValid {
			t.Fatalf("verify: %v, %s", err, l.State)
		}
		f.clock.Add(time.Second)
		return l
	}
	history := []commonv1.Purpose{commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}
	txReceipts := []commonv1.Scope{commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_RECEIPTS}
	replaced := link("alice", "acme", txReceipts, history)
	acme := link("alice", "acme", txReceipts, history) // replaces the first: one VALID link per bank
	other := link("alice", "other", txReceipts, history)
	_ = f.create(t, "alice") // RECEIVED: covers nothing
	link("bob", "acme", txReceipts, history)
	short := createInput("carol")
	short.Scopes, short.Purposes, short.TTL = txReceipts, history, 24*time.Hour
	l, err := f.svc.CreateLink(t.Context(), short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, l, codeRight); err != nil {
		t.Fatal(err)
	}
	revoked := link("dave", "acme", txReceipts, history)
	if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "dave", LinkID: revoked.ID, IdempotencyKey: key()}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		q     app.CoveringLinksQuery
		later time.Duration
		want  []app.Link
	}{
		{"every bank, newest first", app.CoveringLinksQuery{"alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}, 0, []app.Link{other, acme}},
		{"a scope no link covers", app.CoveringLinksQuery{"alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}, 0, nil},
		{"a purpose no link covers", app.CoveringLinksQuery{"alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}, 0, nil},
		{"advertising", app.CoveringLinksQuery{"alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_ADVERTISING}, 0, nil},
		{"marketing", app.CoveringLinksQuery{"alice", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_MARKETING}, 0, nil},
		{"expired, before any sweep", app.CoveringLinksQuery{"carol", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}, 25 * time.Hour, nil},
		{"revoked", app.CoveringLinksQuery{"dave", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}, 0, nil},
		{"no link at all", app.CoveringLinksQuery{"erin", commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Add(tt.later)
			defer f.clock.Add(-tt.later)
			got, err := f.svc.ListCoveringLinks(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d links %v, want %d", len(got), got, len(tt.want))
			}
			for i, l := range got {
				w := tt.want[i]
				if l.Name() != w.Name() || l.BankID != w.BankID || l.BankConsentID != w.BankConsentID || l.Client != chatApp ||
					!l.ExpireTime.Equal(w.ExpireTime) || len(l.Scopes) != 2 {
					t.Errorf("link %d: %+v, want %+v", i, l, w)
				}
				if l.ID == replaced.ID {
					t.Errorf("the replaced link %s is listed", replaced.ID)
				}
			}
		})
	}
}
