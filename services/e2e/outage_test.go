package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestBankLoginRequired: carol's bank wants her to log in again; that is a
// FAILED_PRECONDITION the chat can act on, not an outage.
func TestBankLoginRequired(t *testing.T) {
	carol := devToken(t, "carol")
	link(t, carol, "carol")
	call(t, http.MethodGet, "/v1/users/carol/accounts", carol, "ACCOUNT_INFORMATION", nil).want(t, http.StatusBadRequest, "BANK_LOGIN_REQUIRED")
}

// TestARestartedBankRevokesTheLink restarts the sandbox bank, which keeps
// its consents in memory, as a bank that lost or dropped them: the next
// call is 403 CONSENT_REVOKED_BY_BANK in bankbridge's words (never the
// bank's), the link is REVOKED and marked as revoked by the bank, and
// later calls are refused by the consent check without asking the bank.
func TestARestartedBankRevokesTheLink(t *testing.T) {
	const user, info = "forgotten", "ACCOUNT_INFORMATION"
	tok := devToken(t, user)
	linkName := linkLogin(t, tok, user, "alice")
	call(t, http.MethodGet, "/v1/users/"+user+"/accounts", tok, info, nil).want(t, http.StatusOK, "")

	if err := shared.stack.StopProcess("sandbox"); err != nil {
		t.Fatal(err)
	}
	if err := shared.stack.Restart(t.Context(), "sandbox"); err != nil {
		t.Fatal(err)
	}
	balance := "/v1/users/" + user + "/accounts/sandbox~acc-alice-checking/balance"
	r := call(t, http.MethodGet, balance, tok, info, nil)
	r.want(t, http.StatusForbidden, "CONSENT_REVOKED_BY_BANK")
	if msg, _ := r.body["message"].(string); strings.Contains(msg, "knows no") || !strings.Contains(msg, "link") {
		t.Errorf("message %q: want bankbridge's own words telling to link again", msg)
	}
	l := call(t, http.MethodGet, "/v1/"+linkName, tok, "CONSENT_MANAGEMENT", nil)
	l.want(t, http.StatusOK, "")
	got, _ := l.body["link"].(map[string]any)
	if got["state"] != "CONSENT_STATE_REVOKED" || got["revoked_by_bank"] != true {
		t.Fatalf("link after the bank forgot it: %s", l.raw)
	}
	// From now on the consent check refuses, for one bank or across banks.
	call(t, http.MethodGet, balance, tok, info, nil).want(t, http.StatusForbidden, "CONSENT_REVOKED_BY_BANK")
	call(t, http.MethodGet, "/v1/users/"+user+"/accounts", tok, info, nil).want(t, http.StatusForbidden, "CONSENT_REVOKED_BY_BANK")
}

// TestBankOutageServesLastKnown stops the sandbox bank: alice's balance,
// read moments ago, comes back marked stale with the time it was read, and
// her account list is still served; an account never read is a clean 503.
// The bank starts again when the test ends, with no consents (it keeps
// them in memory), so tests after it link afresh.
func TestBankOutageServesLastKnown(t *testing.T) {
	alice := devToken(t, "alice")
	link(t, alice, "alice")
	const info = "ACCOUNT_INFORMATION"
	call(t, http.MethodGet, "/v1/users/alice/accounts", alice, info, nil).want(t, http.StatusOK, "")
	fresh := call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", alice, info, nil)
	fresh.want(t, http.StatusOK, "")

	if err := shared.stack.StopProcess("sandbox"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.stack.Restart(context.Background(), "sandbox"); err != nil {
			t.Error(err)
		}
	})
	stale := call(t, http.MethodGet, "/v1/"+aliceChecking+"/balance", alice, info, nil)
	stale.want(t, http.StatusOK, "")
	b := stale.body["balance"].(map[string]any)
	if b["stale"] != true {
		t.Fatalf("balance while the bank is down is not marked stale: %s", stale.raw)
	}
	if got, want := b["as_of"], fresh.body["balance"].(map[string]any)["as_of"]; got != want {
		t.Errorf("stale as_of = %v, want the time of the last read %v", got, want)
	}
	call(t, http.MethodGet, "/v1/users/alice/accounts", alice, info, nil).want(t, http.StatusOK, "")
	call(t, http.MethodGet, "/v1/users/alice/accounts/sandbox~acc-alice-card/balance", alice, info, nil).
		want(t, http.StatusServiceUnavailable, "BANK_UNAVAILABLE")
}
