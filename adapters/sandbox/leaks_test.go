package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"buf.build/go/protovalidate"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestTheLeakSwitch: a sandbox leaks nothing until its admin endpoint
// turns a customer's leak switch on; then that customer's accounts, and
// only theirs, show the full number, which bankbridge's registry refuses;
// turned off, the bank is well-behaved again.
func TestTheLeakSwitch(t *testing.T) {
	t.Parallel()
	b := newBank(t, sandbox.Options{})
	admin := httptest.NewServer(b.AdminHandler())
	t.Cleanup(admin.Close)
	checked := inProcess(t, b, nil)
	alice, bob := link(t, checked, "alice"), link(t, checked, "bob")

	leaksOf := func(consent string) []adapters.Leak {
		t.Helper()
		resp, err := b.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
		if err != nil {
			t.Fatal(err)
		}
		return adapters.FindLeaks(resp)
	}
	send := func(method, query string) int {
		t.Helper()
		req, _ := http.NewRequest(method, admin.URL+"/admin/leaks?"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if l := leaksOf(alice); len(l) != 0 {
		t.Fatalf("a new sandbox leaks: %v", l)
	}
	for _, tt := range []struct {
		leak string
		kind adapters.LeakKind
	}{{"card", adapters.LeakCard}, {"iban", adapters.LeakIBAN}} {
		if code := send(http.MethodPost, "user=alice&leak="+tt.leak); code != http.StatusOK {
			t.Fatalf("turn on %s: %d", tt.leak, code)
		}
		l := leaksOf(alice)
		if len(l) == 0 || l[0].Kind != tt.kind || !strings.HasSuffix(l[0].Path, "masked_number.display") {
			t.Errorf("%s leak: FindLeaks = %v, want a %s in masked_number.display", tt.leak, l, tt.kind)
		}
		if l := leaksOf(bob); len(l) != 0 {
			t.Errorf("%s leak on alice: bob's accounts leak too: %v", tt.leak, l)
		}
		// The answer is valid but for the leak: refused as a leak, not as
		// a broken answer.
		resp, _ := b.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: alice})
		if err := protovalidate.Validate(resp); err != nil {
			t.Errorf("%s leak: the answer breaks the protocol's rules besides leaking: %v", tt.leak, err)
		}
		_, err := checked.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: alice})
		if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE || strings.Contains(err.Error(), "1111") || strings.Contains(err.Error(), "3704") {
			t.Errorf("%s leak through the registry: %v, want BANK_UNAVAILABLE without the number", tt.leak, err)
		}
	}
	if code := send(http.MethodDelete, "user=alice"); code != http.StatusOK {
		t.Fatalf("turn off: %d", code)
	}
	if l := leaksOf(alice); len(l) != 0 {
		t.Errorf("switched off, alice's accounts still leak: %v", l)
	}

	for _, tt := range []struct {
		name, method, query string
		code                int
	}{
		{"unknown customer", http.MethodPost, "user=nobody&leak=card", http.StatusNotFound},
		{"unknown leak", http.MethodPost, "user=alice&leak=phone", http.StatusBadRequest},
		{"no leak", http.MethodPost, "user=alice", http.StatusBadRequest},
		{"no user", http.MethodDelete, "", http.StatusBadRequest},
	} {
		if code := send(tt.method, tt.query); code != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.code)
		}
	}
	if l := leaksOf(alice); len(l) != 0 {
		t.Errorf("refused admin calls turned a leak on: %v", l)
	}
}
