package main

// Partner opt-ins over real gRPC through the server kit: what a product
// sees when a user opts in to a partner, and what a data service sees when
// it resolves a partner's push.

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var partnerUserIDShape = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

func (e *env) optIn(t testing.TB, user, partner string, scopes ...commonv1.Scope) (*consentv1.PartnerOptIn, error) {
	t.Helper()
	resp, err := e.consent.CreatePartnerOptIn(e.as(t, user), &consentv1.CreatePartnerOptInRequest{
		Parent:       "users/" + user,
		PartnerOptIn: &consentv1.PartnerOptIn{Partner: partner, Scopes: scopes},
	})
	return resp.GetPartnerOptIn(), err
}

func (e *env) mustOptIn(t testing.TB, user, partner string, scopes ...commonv1.Scope) *consentv1.PartnerOptIn {
	t.Helper()
	o, err := e.optIn(t, user, partner, scopes...)
	if err != nil {
		t.Fatalf("CreatePartnerOptIn: %v", err)
	}
	return o
}

func (e *env) resolve(t testing.TB, partner, id string, scope commonv1.Scope) *consentv1.ResolvePartnerUserResponse {
	t.Helper()
	resp, err := e.check.ResolvePartnerUser(e.asService(t), &consentv1.ResolvePartnerUserRequest{Partner: partner, PartnerUserId: id, Scope: scope})
	if err != nil {
		t.Fatalf("ResolvePartnerUser: %v", err)
	}
	return resp
}

func TestPartnerOptIns(t *testing.T) {
	e := startEnv(t)
	rcpt, ship := commonv1.Scope_SCOPE_RECEIPTS, commonv1.Scope_SCOPE_SHIPPING

	t.Run("the contract's refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			call   func() error
			reason commonv1.ErrorReason
			field  string
		}{
			{"an unknown partner", func() error {
				_, err := e.optIn(t, "alice", "no-such-partner", rcpt)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "partner_opt_in.partner"},
			{"a product is no partner", func() error {
				_, err := e.optIn(t, "alice", chatApp, rcpt)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "partner_opt_in.partner"},
			{"a scope a partner cannot push", func() error {
				_, err := e.optIn(t, "alice", demoPartner, commonv1.Scope_SCOPE_BALANCES)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "partner_opt_in.scopes[0]"},
			{"no scopes", func() error {
				_, err := e.optIn(t, "alice", demoPartner)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "partner_opt_in.scopes"},
			{"another user's parent", func() error {
				_, err := e.consent.CreatePartnerOptIn(e.as(t, "bob"), &consentv1.CreatePartnerOptInRequest{
					Parent: "users/alice", PartnerOptIn: &consentv1.PartnerOptIn{Partner: demoPartner, Scopes: []commonv1.Scope{rcpt}},
				})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"an unknown opt-in", func() error {
				_, err := e.consent.RevokePartnerOptIn(e.as(t, "alice"), &consentv1.RevokePartnerOptInRequest{Name: "users/alice/partnerOptIns/nope"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"a made-up page token", func() error {
				_, err := e.consent.ListPartnerOptIns(e.as(t, "alice"), &consentv1.ListPartnerOptInsRequest{Parent: "users/alice", PageToken: "bogus"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				testkit.RequireReason(t, err, tt.reason)
				if tt.field != "" {
					testkit.RequireFieldViolation(t, err, tt.field)
				}
				if strings.Contains(err.Error(), otherPartner) {
					t.Errorf("the error names the configured partners: %v", err)
				}
			})
		}
	})

	alice := e.mustOptIn(t, "alice", demoPartner, rcpt)
	t.Run("an opt-in is ACTIVE with a partner-scoped id", func(t *testing.T) {
		if alice.GetState() != consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_ACTIVE || alice.GetCreateTime() == nil || alice.GetRevokeTime() != nil {
			t.Errorf("opt-in %v: want ACTIVE with create_time", alice)
		}
		if !partnerUserIDShape.MatchString(alice.GetPartnerUserId()) || !strings.HasPrefix(alice.GetName(), "users/alice/partnerOptIns/") {
			t.Errorf("opt-in %v: want a name under users/alice and a URL-safe partner_user_id", alice)
		}
	})

	t.Run("creating again returns the same opt-in; other scopes are ALREADY_EXISTS", func(t *testing.T) {
		again := e.mustOptIn(t, "alice", demoPartner, rcpt)
		if again.GetName() != alice.GetName() || again.GetPartnerUserId() != alice.GetPartnerUserId() {
			t.Errorf("retry made %s besides %s", again.GetName(), alice.GetName())
		}
		_, err := e.optIn(t, "alice", demoPartner, rcpt, ship)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS)
	})

	aliceOther := e.mustOptIn(t, "alice", otherPartner, rcpt, ship)
	t.Run("two partners get different ids for the same user", func(t *testing.T) {
		if aliceOther.GetPartnerUserId() == alice.GetPartnerUserId() {
			t.Errorf("both partners know alice as %s", alice.GetPartnerUserId())
		}
	})

	t.Run("resolving a partner's id", func(t *testing.T) {
		required := commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
		tests := []struct {
			name    string
			partner string
			id      string
			scope   commonv1.Scope
			reason  commonv1.ErrorReason // unset: allowed
			optIn   string
		}{
			{"its own id, within scope", demoPartner, alice.GetPartnerUserId(), rcpt, 0, alice.GetName()},
			{"its own id, outside scope", demoPartner, alice.GetPartnerUserId(), ship, required, alice.GetName()},
			{"an id never minted", demoPartner, "AAAAAAAAAAAAAAAAAAAAAA", rcpt, required, ""},
			{"another partner's id", demoPartner, aliceOther.GetPartnerUserId(), rcpt, required, ""},
			{"the other partner, its own id", otherPartner, aliceOther.GetPartnerUserId(), ship, 0, aliceOther.GetName()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.resolve(t, tt.partner, tt.id, tt.scope)
				if r.GetAllowed() != (tt.reason == 0) || r.GetDenialReason() != tt.reason || r.GetPartnerOptIn() != tt.optIn {
					t.Fatalf("ResolvePartnerUser = %v; want allowed %v, reason %s, opt-in %q", r, tt.reason == 0, tt.reason, tt.optIn)
				}
				if tt.reason == 0 && (r.GetUser() != "users/alice" || r.GetClient() != chatApp) {
					t.Errorf("allowed for %q through %q, want users/alice through %s", r.GetUser(), r.GetClient(), chatApp)
				}
				if tt.reason != 0 && (r.GetUser() != "" || r.GetClient() != "") {
					t.Errorf("a denial names user %q, client %q", r.GetUser(), r.GetClient())
				}
			})
		}
	})

	t.Run("only bankbridge's services resolve ids", func(t *testing.T) {
		_, err := e.check.ResolvePartnerUser(e.as(t, "alice"), &consentv1.ResolvePartnerUserRequest{
			Partner: demoPartner, PartnerUserId: alice.GetPartnerUserId(), Scope: rcpt,
		})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
		_, err = e.check.ResolvePartnerUser(e.asService(t), &consentv1.ResolvePartnerUserRequest{
			Partner: demoPartner, PartnerUserId: "short", Scope: rcpt,
		})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		testkit.RequireFieldViolation(t, err, "partner_user_id")
	})

	t.Run("revoking refuses the next push and tells watchers", func(t *testing.T) {
		stream := e.watch(t)
		resp, err := e.consent.RevokePartnerOptIn(e.as(t, "alice"), &consentv1.RevokePartnerOptInRequest{Name: alice.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.GetPartnerOptIn()
		if got.GetState() != consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED || got.GetRevokeTime() == nil || got.GetPartnerUserId() != alice.GetPartnerUserId() {
			t.Fatalf("revoked opt-in %v: want REVOKED with revoke_time", got)
		}
		r := e.resolve(t, demoPartner, alice.GetPartnerUserId(), rcpt)
		if r.GetAllowed() || r.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED || r.GetPartnerOptIn() != alice.GetName() || r.GetUser() != "" {
			t.Fatalf("ResolvePartnerUser after revoke = %v, want denied CONSENT_REVOKED", r)
		}
		change, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if change.GetUser() != "users/alice" || change.GetPartnerOptIn() != alice.GetName() || change.GetPartner() != demoPartner ||
			change.GetPartnerOptInState() != consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED || change.GetLink() != "" ||
			change.GetState() != consentv1.ConsentState_CONSENT_STATE_UNSPECIFIED {
			t.Errorf("change = %v, want %s REVOKED for %s", change, alice.GetName(), demoPartner)
		}
		again, err := e.consent.RevokePartnerOptIn(e.as(t, "alice"), &consentv1.RevokePartnerOptInRequest{Name: alice.GetName()})
		if err != nil || !again.GetPartnerOptIn().GetRevokeTime().AsTime().Equal(got.GetRevokeTime().AsTime()) {
			t.Errorf("revoking again = %v, %v; want it unchanged", again.GetPartnerOptIn(), err)
		}
		_, err = e.consent.RevokePartnerOptIn(e.as(t, "bob"), &consentv1.RevokePartnerOptInRequest{Name: aliceOther.GetName()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})

	var fresh *consentv1.PartnerOptIn
	t.Run("opting in again after a revocation mints a new id", func(t *testing.T) {
		time.Sleep(2 * time.Millisecond) // a create_time of its own, for the order below
		fresh = e.mustOptIn(t, "alice", demoPartner, rcpt, ship)
		if fresh.GetName() == alice.GetName() || fresh.GetPartnerUserId() == alice.GetPartnerUserId() {
			t.Errorf("new opt-in %v reuses the revoked one's name or id", fresh)
		}
		if r := e.resolve(t, demoPartner, alice.GetPartnerUserId(), rcpt); r.GetAllowed() {
			t.Errorf("the revoked id resolves again: %v", r)
		}
	})

	t.Run("ListPartnerOptIns lists ACTIVE and REVOKED, newest first", func(t *testing.T) {
		var got []string
		token := ""
		for {
			page, err := e.consent.ListPartnerOptIns(e.as(t, "alice"), &consentv1.ListPartnerOptInsRequest{Parent: "users/alice", PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.GetPartnerOptIns() {
				got = append(got, o.GetName())
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		want := []string{fresh.GetName(), aliceOther.GetName(), alice.GetName()}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("listed %v, want %v", got, want)
		}
		_, err := e.consent.ListPartnerOptIns(e.as(t, "bob"), &consentv1.ListPartnerOptInsRequest{Parent: "users/alice"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})

	t.Run("the access log holds the calls, never a partner user id", func(t *testing.T) {
		resp, err := e.consent.ListAccessLog(e.as(t, "alice"), &consentv1.ListAccessLogRequest{Parent: "users/alice", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		var created int
		for _, en := range resp.GetEntries() {
			if en.GetMethod() == consentv1.ConsentService_CreatePartnerOptIn_FullMethodName {
				created++
			}
			for _, id := range []string{alice.GetPartnerUserId(), aliceOther.GetPartnerUserId(), fresh.GetPartnerUserId()} {
				if strings.Contains(en.String(), id) {
					t.Errorf("entry %d holds a partner user id", en.GetSequence())
				}
			}
		}
		if created == 0 {
			t.Error("no CreatePartnerOptIn in alice's access log")
		}
	})
}

func TestListCoveringLinks(t *testing.T) {
	e := startEnv(t)
	sandboxLink := e.linkValid(t, "alice")
	time.Sleep(2 * time.Millisecond)
	oldbank := e.createLink(t, "alice", "oldbank")
	oldLink, err := e.verify(t, "alice", oldbank.GetName(), sandbox.Code)
	if err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T, user string, scope commonv1.Scope, purpose commonv1.Purpose) []*consentv1.CoveringLink {
		t.Helper()
		resp, err := e.check.ListCoveringLinks(e.asService(t), &consentv1.ListCoveringLinksRequest{User: "users/" + user, Scope: scope, Purpose: purpose})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetLinks()
	}
	info := commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION

	t.Run("every bank's VALID link, newest first, with what reading needs", func(t *testing.T) {
		got := list(t, "alice", commonv1.Scope_SCOPE_BALANCES, info)
		if len(got) != 2 || got[0].GetLink() != oldLink.GetName() || got[1].GetLink() != sandboxLink {
			t.Fatalf("links %v, want %s then %s", got, oldLink.GetName(), sandboxLink)
		}
		for _, l := range got {
			if l.GetBankConsentId() == "" || l.GetClient() != chatApp || l.GetExpireTime() == nil || len(l.GetScopes()) != 2 {
				t.Errorf("covering link %v: want its bank consent id, client, expiry and scopes", l)
			}
		}
		if got[0].GetBankId() != "oldbank" || got[1].GetBankId() != "sandbox" {
			t.Errorf("banks %s, %s", got[0].GetBankId(), got[1].GetBankId())
		}
	})

	t.Run("nothing covers", func(t *testing.T) {
		tests := []struct {
			name    string
			user    string
			scope   commonv1.Scope
			purpose commonv1.Purpose
		}{
			{"a scope no link covers", "alice", commonv1.Scope_SCOPE_RECEIPTS, info},
			{"a purpose no link covers", "alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY},
			{"advertising", "alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_ADVERTISING},
			{"marketing", "alice", commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_MARKETING},
			{"a user without links", "bob", commonv1.Scope_SCOPE_BALANCES, info},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := list(t, tt.user, tt.scope, tt.purpose); len(got) != 0 {
					t.Errorf("links %v, want none", got)
				}
			})
		}
	})

	t.Run("a revoked link no longer covers", func(t *testing.T) {
		if _, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: sandboxLink, IdempotencyKey: randomKey(t)}); err != nil {
			t.Fatal(err)
		}
		got := list(t, "alice", commonv1.Scope_SCOPE_BALANCES, info)
		if len(got) != 1 || got[0].GetLink() != oldLink.GetName() {
			t.Errorf("links %v, want only %s", got, oldLink.GetName())
		}
	})
}
