package store_test

import (
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
)

// testResolveBankConsent: a bank's consent id, as a bank's event names it,
// resolves to the VALID link that carries it, and to a reason otherwise.
func testResolveBankConsent(t *testing.T, st *store.Store) {
	now := t0.Add(time.Hour)
	alerts := []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_FRAUD_ALERTS}
	link := func(user, id string, state app.State, mod func(*app.Link)) app.Link {
		l := newLink(user, id, "sandbox", state, t0)
		l.Scopes, l.Client, l.BankConsentID = alerts, "chat-app", "cns-"+user+"-"+id
		if mod != nil {
			mod(&l)
		}
		return l
	}
	valid := link("rbc-valid", "l1", app.StateValid, nil)
	// An older link that carried the same consent id and was replaced.
	replaced := link("rbc-valid", "l0", app.StateRevoked, func(l *app.Link) {
		l.BankConsentID, l.CreateTime = valid.BankConsentID, t0.Add(-time.Hour)
	})
	noAlerts := link("rbc-scope", "l1", app.StateValid, func(l *app.Link) { l.Scopes = l.Scopes[:1] })
	expired := link("rbc-expired", "l1", app.StateValid, func(l *app.Link) { l.ExpireTime = now })
	expiredStored := link("rbc-expired", "l2", app.StateExpired, nil)
	revoked := link("rbc-revoked", "l1", app.StateRevoked, nil)
	byBank := link("rbc-bybank", "l1", app.StateRevoked, func(l *app.Link) { l.RevokedByBank = true })
	received := link("rbc-received", "l1", app.StateReceived, func(l *app.Link) { l.SCA.ExpireTime = now.Add(time.Minute) })
	rejected := link("rbc-rejected", "l1", app.StateRejected, nil)
	otherBank := link("rbc-other", "l1", app.StateValid, func(l *app.Link) { l.BankID = "otherbank" })
	insert(t, st, valid, replaced, noAlerts, expired, expiredStored, revoked, byBank, received, rejected, otherBank)
	svc := service(t, st, now)

	required := commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
	tests := []struct {
		name       string
		bank, id   string
		scope      commonv1.Scope
		wantLink   *app.Link
		wantDenial commonv1.ErrorReason
	}{
		{"a VALID link covering the scope, not the older one it replaced", "sandbox", valid.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, &valid, 0},
		{"another scope of the same link", "sandbox", valid.BankConsentID, commonv1.Scope_SCOPE_ACCOUNTS, &valid, 0},
		{"a scope the link does not cover", "sandbox", valid.BankConsentID, commonv1.Scope_SCOPE_SUPPORT, nil, required},
		{"a VALID link without the scope", "sandbox", noAlerts.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
		{"a VALID link past its expiry", "sandbox", expired.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED},
		{"an EXPIRED link", "sandbox", expiredStored.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED},
		{"a link the user revoked", "sandbox", revoked.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED},
		{"a link its bank revoked", "sandbox", byBank.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED},
		{"a link not verified yet", "sandbox", received.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
		{"a rejected link", "sandbox", rejected.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
		{"another bank's consent id", "sandbox", otherBank.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
		{"the right id at the wrong bank", "otherbank", valid.BankConsentID, commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
		{"an id no link has", "sandbox", "cns-nobody", commonv1.Scope_SCOPE_FRAUD_ALERTS, nil, required},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := svc.ResolveBankConsent(t.Context(), app.BankConsentQuery{BankID: tt.bank, BankConsentID: tt.id, Scope: tt.scope})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLink == nil {
				if d.Allowed || d.DenialReason != tt.wantDenial || d.Link.ID != "" {
					t.Errorf("got allowed=%v reason=%s link=%q, want denied with %s and no link", d.Allowed, d.DenialReason, d.Link.Name(), tt.wantDenial)
				}
				return
			}
			if !d.Allowed || d.Link.User != tt.wantLink.User || d.Link.ID != tt.wantLink.ID ||
				d.Link.Client != "chat-app" || d.Link.BankConsentID != tt.id || len(d.Link.Scopes) != 2 {
				t.Errorf("got %+v, want allowed with %s", d, tt.wantLink.Name())
			}
		})
	}
}
