package access_test

import (
	"context"
	"testing"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	// The contracts register their descriptors when imported.
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

func TestLoadReadsTheRulesTheContractsDeclare(t *testing.T) {
	t.Parallel()
	m, err := access.Load([]string{"bankbridge.balance.v1.BalanceService", "bankbridge.consent.v1.ConsentService", "bankbridge.consent.v1.ConsentCheckService"})
	if err != nil {
		t.Fatal(err)
	}
	bal := m["/bankbridge.balance.v1.BalanceService/GetBalance"]
	if bal.Audience != commonv1.Audience_AUDIENCE_PUBLIC || len(bal.Rule.Scopes) != 1 || bal.Rule.Scopes[0] != commonv1.Scope_SCOPE_BALANCES ||
		bal.Rule.BankField != "name" || bal.Rule.ConsentNotRequired {
		t.Errorf("GetBalance = %+v", bal)
	}
	link := m["/bankbridge.consent.v1.ConsentService/CreateLink"]
	if !link.Rule.ConsentNotRequired || len(link.Rule.Purposes) != 1 || link.Rule.Purposes[0] != commonv1.Purpose_PURPOSE_CONSENT_MANAGEMENT {
		t.Errorf("CreateLink = %+v", link)
	}
	if c := m["/bankbridge.consent.v1.ConsentCheckService/CheckConsent"]; c.Audience != commonv1.Audience_AUDIENCE_INTERNAL {
		t.Errorf("CheckConsent audience = %v", c.Audience)
	}
	if _, err := access.Load([]string{"no.such.v1.Service"}); err == nil {
		t.Error("Load accepted a service that is not in the registry")
	}
}

func TestGrantFromFailsLoudlyWithoutAGrant(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("GrantFrom returned without a grant in the context")
		}
	}()
	access.GrantFrom(context.Background())
}

func TestAGrantCannotBeChangedThroughItsScopes(t *testing.T) {
	t.Parallel()
	scopes := []commonv1.Scope{commonv1.Scope_SCOPE_BALANCES}
	ctx := access.WithGrant(context.Background(), access.Grant{User: "alice", Scopes: scopes})
	scopes[0] = commonv1.Scope_SCOPE_SUPPORT
	g := access.GrantFrom(ctx)
	g.Scopes[0] = commonv1.Scope_SCOPE_RECEIPTS
	if got := access.GrantFrom(ctx).Scopes[0]; got != commonv1.Scope_SCOPE_BALANCES {
		t.Errorf("scope in the context became %v", got)
	}
}

func TestSubjectIDsArePseudonymousAndKeyed(t *testing.T) {
	t.Parallel()
	a, b := access.NewPseudonyms([]byte("k1")), access.NewPseudonyms([]byte("k2"))
	id := a.SubjectID("https://issuer", "alice")
	if id != a.SubjectID("https://issuer", "alice") || len(id) != 32 {
		t.Errorf("SubjectID not stable or not 32 hex digits: %q", id)
	}
	if id == b.SubjectID("https://issuer", "alice") || id == a.SubjectID("https://issuer", "bob") || id == a.SubjectID("https://other", "alice") {
		t.Error("SubjectID ignores the key, the subject or the issuer")
	}
}

// A bank field may sit inside the request's body message, as
// CreateConversation's conversation.bank_id does: the kit must read it
// there, and read nothing when the body is unset.
func TestBankValueFollowsAFieldPath(t *testing.T) {
	t.Parallel()
	m, err := access.Load([]string{"bankbridge.support.v1.SupportService"})
	if err != nil {
		t.Fatal(err)
	}
	create := m["/bankbridge.support.v1.SupportService/CreateConversation"].Rule
	if create.BankField != "conversation.bank_id" || !create.NamesBankID() {
		t.Fatalf("CreateConversation rule = %+v", create)
	}
	req := &supportv1.CreateConversationRequest{Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox"}}
	if got := create.BankValue(req.ProtoReflect()); got != "sandbox" {
		t.Errorf("BankValue = %q; want sandbox", got)
	}
	if got := create.BankValue((&supportv1.CreateConversationRequest{Parent: "users/alice"}).ProtoReflect()); got != "" {
		t.Errorf("BankValue without a conversation = %q; want empty", got)
	}
	get := m["/bankbridge.support.v1.SupportService/GetConversation"].Rule
	if get.NamesBankID() {
		t.Error("GetConversation's name was taken for a bank id")
	}
	if got := get.BankValue((&supportv1.GetConversationRequest{Name: "users/alice/conversations/sandbox~c1"}).ProtoReflect()); got != "users/alice/conversations/sandbox~c1" {
		t.Errorf("BankValue(name) = %q", got)
	}
}
