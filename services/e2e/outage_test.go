package e2e

import (
	"net/http"
	"testing"
)

// TestBankLoginRequired: carol's bank wants her to log in again; that is a
// FAILED_PRECONDITION the chat can act on, not an outage.
func TestBankLoginRequired(t *testing.T) {
	carol := devToken(t, "carol")
	link(t, carol, "carol")
	call(t, http.MethodGet, "/v1/users/carol/accounts", carol, "ACCOUNT_INFORMATION", nil).want(t, http.StatusBadRequest, "BANK_LOGIN_REQUIRED")
}

// TestBankOutageServesLastKnown stops the sandbox bank: alice's balance,
// read moments ago, comes back marked stale with the time it was read, and
// her account list is still served; an account never read is a clean 503.
// It runs last (file order): the bank stays down.
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
