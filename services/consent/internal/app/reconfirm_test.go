package app_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

const day = 24 * time.Hour

func (f *fixture) reconfirm(t *testing.T, l app.Link) (app.Link, error) {
	t.Helper()
	return f.svc.ReconfirmLink(t.Context(), app.ReconfirmLinkInput{User: l.User, LinkID: l.ID, IdempotencyKey: key()})
}

func TestReconfirmLink(t *testing.T) {
	t.Parallel()

	t.Run("without SCA: the bank's capped validity is the new expiry, warned again before it", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		f.clock.Add(83 * day)
		if r, err := f.svc.Sweep(t.Context()); err != nil || r.Warned != 1 {
			t.Fatalf("sweep at day 83 = %+v, %v; want one warning", r, err)
		}
		now := f.clock.Now().Truncate(time.Microsecond)
		f.bank.extendCap = now.Add(60 * day) // e.g. 180 days from the last SCA
		got, err := f.reconfirm(t, l)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != app.StateValid || !got.ExpireTime.Equal(now.Add(60*day)) || !got.ExpiryWarnTime.IsZero() {
			t.Errorf("reconfirmed link %s until %v (warned %v), want VALID until the bank's cap, unwarned", got.State, got.ExpireTime, got.ExpiryWarnTime)
		}
		if asked := f.bank.extends[0].ValidUntil; !asked.Equal(now.Add(90 * day)) {
			t.Errorf("the bank was asked for %v, want 90 days from now", asked)
		}
		if got.SCA.Status != app.ScaStatusFinalised {
			t.Errorf("challenge %s, want the first one's FINALISED untouched", got.SCA.Status)
		}
		f.clock.Add(52 * day) // 8 days before the new expiry
		if r, _ := f.svc.Sweep(t.Context()); r.Warned != 0 {
			t.Errorf("warned %d links 8 days before the new expiry, want none", r.Warned)
		}
		f.clock.Add(day + time.Minute)
		if r, _ := f.svc.Sweep(t.Context()); r.Warned != 1 {
			t.Errorf("warned %d links 7 days before the new expiry, want one", r.Warned)
		}
		if n := len(f.outboxed(t, app.EventLinkExpiring)); n != 2 {
			t.Errorf("%d expiry warnings, want one per expiry", n)
		}
	})

	t.Run("the service's own ConsentTTL caps what a bank grants", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		f.bank.extendErr = nil
		f.bank.extendCap = time.Time{}
		f.clock.Add(time.Hour)
		got, err := f.reconfirm(t, l)
		if err != nil || !got.ExpireTime.Equal(f.clock.Now().Truncate(time.Microsecond).Add(app.DefaultConsentTTL)) {
			t.Fatalf("reconfirmed until %v, %v; want 90 days from now", got.ExpireTime, err)
		}
	})

	t.Run("with SCA: the link stays VALID with its expiry until VerifyLink completes the challenge", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		f.bank.extendSCA = true
		f.clock.Add(83 * day)
		got, err := f.reconfirm(t, l)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != app.StateValid || !got.ExpireTime.Equal(l.ExpireTime) || got.SCA.Status != app.ScaStatusStarted ||
			got.SCA.AttemptsRemaining != app.MaxScaAttempts || got.SCA.Instruction == "" {
			t.Fatalf("link %s until %v, challenge %+v; want VALID, old expiry, a STARTED challenge", got.State, got.ExpireTime, got.SCA)
		}
		d, err := f.svc.CheckConsent(t.Context(), app.ConsentQuery{User: "alice", BankID: "acme",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		if err != nil || !d.Allowed {
			t.Errorf("CheckConsent during the challenge = %+v, %v; want allowed", d, err)
		}
		_, err = f.verify(t, got, codeWrong)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		done, err := f.verify(t, got, codeRight)
		if err != nil {
			t.Fatal(err)
		}
		want := f.clock.Now().Truncate(time.Microsecond).Add(app.DefaultConsentTTL)
		if done.State != app.StateValid || done.SCA.Status != app.ScaStatusFinalised || !done.ExpireTime.Equal(want) || !done.VerifyTime.Equal(l.VerifyTime) {
			t.Errorf("after the code: %s / %s until %v, verified %v; want VALID / FINALISED until %v, first verify time kept", done.State, done.SCA.Status, done.ExpireTime, done.VerifyTime, want)
		}
		_, err = f.verify(t, done, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING)
	})

	t.Run("a failed reconfirmation challenge keeps the link VALID with its old expiry", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			act    func(f *fixture, t *testing.T, l app.Link) error
			reason commonv1.ErrorReason
			status app.ScaStatus
		}{
			{"locked by the bank", func(f *fixture, t *testing.T, l app.Link) error {
				_, err := f.verify(t, l, codeLocks)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, app.ScaStatusLocked},
			{"timed out", func(f *fixture, t *testing.T, l app.Link) error {
				f.clock.Add(10 * time.Minute)
				_, err := f.verify(t, l, codeRight)
				return err
			}, commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, app.ScaStatusExpired},
			{"declined", func(f *fixture, t *testing.T, l app.Link) error {
				got, err := f.verify(t, l, codeDeclined)
				if err == nil && got.SCA.Status != app.ScaStatusFailed {
					t.Errorf("declined: challenge %s, want FAILED", got.SCA.Status)
				}
				return err
			}, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, app.ScaStatusFailed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := setup(t)
				l := f.linked(t, "alice")
				f.bank.extendSCA = true
				pending, err := f.reconfirm(t, l)
				if err != nil {
					t.Fatal(err)
				}
				err = tt.act(f, t, pending)
				if tt.reason != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
					testkit.RequireReason(t, err, tt.reason)
				}
				got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
				if got.State != app.StateValid || !got.ExpireTime.Equal(l.ExpireTime) || got.SCA.Status != tt.status {
					t.Errorf("link %s / %s until %v; want VALID / %s until %v", got.State, got.SCA.Status, got.ExpireTime, tt.status, l.ExpireTime)
				}
			})
		}
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		revoked := f.linked(t, "bob")
		if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "bob", LinkID: revoked.ID, IdempotencyKey: key()}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			link   func() app.Link
			reason commonv1.ErrorReason
			state  string
		}{
			{"a RECEIVED link", func() app.Link { return f.create(t, "carol") }, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "RECEIVED"},
			{"a REVOKED link", func() app.Link { return revoked }, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "REVOKED"},
			{"an unknown link", func() app.Link { return app.Link{User: "carol", ID: "nope"} }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.reconfirm(t, tt.link())
				md := testkit.RequireReason(t, err, tt.reason)
				if md["state"] != tt.state {
					t.Errorf("metadata state %q, want %q", md["state"], tt.state)
				}
			})
		}
		t.Run("an EXPIRED link", func(t *testing.T) {
			l := f.expired(t, "dave")
			_, err := f.reconfirm(t, l)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
		})
		if n := f.bank.extendCount(); n != 0 {
			t.Errorf("the bank was asked %d times to extend a link that is not VALID", n)
		}
	})

	t.Run("the bank's errors: down changes nothing, no capability is passed on", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		for _, reason := range []commonv1.ErrorReason{
			commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
		} {
			f.bank.mu.Lock()
			f.bank.extendErr = apierr.New(reason, "no")
			f.bank.mu.Unlock()
			_, err := f.reconfirm(t, l)
			testkit.RequireReason(t, err, reason)
		}
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateValid || !got.ExpireTime.Equal(l.ExpireTime) || !got.UpdateTime.Equal(l.UpdateTime) {
			t.Errorf("link changed after the bank failed: %+v", got)
		}
	})

	t.Run("a bank that forgot the consent revokes the link, by the bank", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		f.bank.extendErr = apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "unknown consent")
		in := app.ReconfirmLinkInput{User: "alice", LinkID: l.ID, IdempotencyKey: key()}
		_, err := f.svc.ReconfirmLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateRevoked || !got.RevokedByBank {
			t.Errorf("link %s (by bank %v), want REVOKED by the bank", got.State, got.RevokedByBank)
		}
		_, err = f.svc.ReconfirmLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
		revs := f.outboxed(t, app.EventLinkRevoked)
		var msg consentv1.ConsentLinkRevoked
		if len(revs) != 1 || protojson.Unmarshal(revs[0].Data, &msg) != nil || !msg.GetRevokedByBank() {
			t.Errorf("revocation events %v, want one, revoked by the bank", revs)
		}
		select {
		case id := <-f.bank.revoked:
			t.Errorf("the bank was asked to revoke %s, which it no longer has", id)
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("a retry with the key asks the bank once; the key for another link is refused", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		l := f.linked(t, "alice")
		in := app.ReconfirmLinkInput{User: "alice", LinkID: l.ID, IdempotencyKey: key()}
		first, err := f.svc.ReconfirmLink(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.svc.ReconfirmLink(t.Context(), in)
		if err != nil || !again.ExpireTime.Equal(first.ExpireTime) || f.bank.extendCount() != 1 {
			t.Errorf("retry = %v, %v after %d bank calls; want the first answer, one call", again.ExpireTime, err, f.bank.extendCount())
		}
		other := f.linked(t, "alice") // replaces l
		in.LinkID = other.ID
		_, err = f.svc.ReconfirmLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})
}
