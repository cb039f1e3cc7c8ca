package app_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/events"
)

func TestRevocationReachesABankThatWasDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	l := f.linked(t, "alice")
	f.bank.setRevokeErr(apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down", apierr.WithRetryAfter(time.Second)))
	got, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: l.ID, IdempotencyKey: key()})
	if err != nil || got.State != app.StateRevoked {
		t.Fatalf("RevokeLink = %s, %v; want REVOKED at once, whatever the bank", got.State, err)
	}
	select {
	case id := <-f.bank.revoked:
		t.Fatalf("a bank that is down revoked %s", id)
	case <-time.After(200 * time.Millisecond): // several retries
	}
	f.bank.setRevokeErr(nil)
	select {
	case id := <-f.bank.revoked:
		if id != l.BankConsentID {
			t.Errorf("bank revoked %s, want %s", id, l.BankConsentID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the bank, back up, was not told of the revocation")
	}
}

func TestRevocationEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	in := createInput("alice")
	in.Client = "chat-app"
	l, err := f.svc.CreateLink(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if l.Client != "chat-app" {
		t.Errorf("link's client %q, want chat-app", l.Client)
	}
	if l, err = f.verify(t, l, codeRight); err != nil {
		t.Fatal(err)
	}
	replacement := f.linked(t, "alice") // revokes l: the bank must hear of it too
	if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: replacement.ID, IdempotencyKey: key()}); err != nil {
		t.Fatal(err)
	}
	byBank := f.linked(t, "bob")
	if _, err := f.svc.ReportBankRevocation(t.Context(), "bob", byBank.ID); err != nil {
		t.Fatal(err)
	}

	revs := f.outboxed(t, app.EventLinkRevoked)
	want := []struct {
		link          app.Link
		client        string
		revokedByBank bool
	}{{l, "chat-app", false}, {replacement, "", false}, {byBank, "", true}}
	if len(revs) != len(want) {
		t.Fatalf("%d revocation events, want %d: %v", len(revs), len(want), revs)
	}
	for i, w := range want {
		e := revs[i]
		var msg consentv1.ConsentLinkRevoked
		if err := protojson.Unmarshal(e.Data, &msg); err != nil {
			t.Fatalf("event %d: data %s: %v", i, e.Data, err)
		}
		if e.Source != "consent" || e.User != w.link.User || e.Client != w.client || e.Resource != w.link.Name() ||
			msg.GetEventId() != e.ID || msg.GetLink() != w.link.Name() || msg.GetBankId() != "acme" ||
			msg.GetRevokedByBank() != w.revokedByBank || msg.GetRevokeTime() == nil {
			t.Errorf("event %d = %+v / %v, want the revocation of %s by client %q (by bank %v)", i, e, &msg, w.link.Name(), w.client, w.revokedByBank)
		}
	}
	// The bank hears of bankbridge's two revocations, not of its own.
	told := map[string]bool{}
	for range 2 {
		select {
		case id := <-f.bank.revoked:
			told[id] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("the bank was told of %v only", told)
		}
	}
	if !told[l.BankConsentID] || !told[replacement.BankConsentID] {
		t.Errorf("bank told of %v, want %s and %s", told, l.BankConsentID, replacement.BankConsentID)
	}
	select {
	case id := <-f.bank.revoked:
		t.Errorf("the bank was told of %s too", id)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestHandleRevocation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	l := f.linked(t, "alice")
	if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: l.ID, IdempotencyKey: key()}); err != nil {
		t.Fatal(err)
	}
	<-f.bank.revoked // the running worker's delivery
	delivered := events.Delivered{Event: events.Event{ID: "ev1", Type: app.EventLinkRevoked, User: "alice", Resource: l.Name()}}
	tests := []struct {
		name    string
		bank    error
		retried bool
	}{
		{"the bank accepts", nil, false},
		{"the bank no longer knows the consent", apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "gone"), false},
		{"the bank is no longer configured", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank"), false},
		{"the bank is down", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down"), true},
		{"the bank is rate limiting", apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, "slow down"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.bank.setRevokeErr(tt.bank)
			defer f.bank.setRevokeErr(nil)
			err := f.svc.HandleRevocation(t.Context(), delivered)
			if (err != nil) != tt.retried {
				t.Errorf("HandleRevocation = %v, want retried %v", err, tt.retried)
			}
			if tt.bank == nil {
				<-f.bank.revoked
			}
		})
	}
	t.Run("nothing to tell", func(t *testing.T) {
		f.bank.setRevokeErr(apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down"))
		defer f.bank.setRevokeErr(nil)
		valid := f.linked(t, "bob")
		for name, resource := range map[string]string{
			"a link that is not revoked": valid.Name(),
			"an unknown link":            "users/bob/links/nope",
			"not a link":                 "users/bob",
		} {
			d := delivered
			d.Resource = resource
			if err := f.svc.HandleRevocation(t.Context(), d); err != nil {
				t.Errorf("%s: %v, want done", name, err)
			}
		}
	})
}

func TestExpiryWarningEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	in := createInput("alice")
	in.Client = "chat-app"
	l, err := f.svc.CreateLink(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = f.verify(t, l, codeRight); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(84 * day) // 6 days before the end
	if r, err := f.svc.Sweep(t.Context()); err != nil || r.Warned != 1 {
		t.Fatalf("sweep = %+v, %v; want one warning", r, err)
	}
	if r, err := f.svc.Sweep(t.Context()); err != nil || r.Warned != 0 {
		t.Fatalf("second sweep = %+v, %v; want none", r, err)
	}
	evs := f.outboxed(t, app.EventLinkExpiring)
	if len(evs) != 1 {
		t.Fatalf("%d expiry warnings, want 1", len(evs))
	}
	e := evs[0]
	var msg consentv1.ConsentExpiryWarning
	if err := protojson.Unmarshal(e.Data, &msg); err != nil {
		t.Fatal(err)
	}
	if e.Source != "consent" || e.User != "alice" || e.Client != "chat-app" || e.Resource != l.Name() ||
		msg.GetEventId() != e.ID || msg.GetLink() != l.Name() || msg.GetBankId() != "acme" ||
		!msg.GetExpireTime().AsTime().Equal(l.ExpireTime) || len(msg.GetScopes()) != 2 {
		t.Errorf("event %+v / %v, want alice's link for chat-app expiring at %v", e, &msg, l.ExpireTime)
	}
	// Thin: ids, types and times; no name of the bank, login or consent id.
	for _, leak := range []string{"Acme Bank", l.BankConsentID, "alice\""} {
		if strings.Contains(string(e.Data), leak) {
			t.Errorf("payload %s holds %q", e.Data, leak)
		}
	}
}
