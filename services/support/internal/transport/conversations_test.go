package transport_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// menu is the payloads of the assistant's main quick replies.
var menu = []string{"BALANCE", "TRANSACTIONS", "LOST_CARD", "UNRECOGNISED_CHARGE", "HUMAN"}

func TestCreateConversation(t *testing.T) {
	t.Parallel()
	e := start(t, options{noBankEvents: true, secondBank: true})

	t.Run("opens with the assistant in control and its greeting", func(t *testing.T) {
		c := e.create(t)
		if !strings.HasPrefix(c.GetName(), "users/alice/conversations/sandbox~") || c.GetBankId() != "sandbox" ||
			c.GetState() != supportv1.ConversationState_CONVERSATION_STATE_OPEN || c.GetController() != supportv1.Controller_CONTROLLER_ASSISTANT {
			t.Fatalf("conversation = %v", c)
		}
		ms := e.messages(t, c.GetName())
		if len(ms) != 1 || ms[0].GetSenderRole() != supportv1.ParticipantRole_PARTICIPANT_ROLE_ASSISTANT || !slices.Equal(payloads(ms[0]), menu) {
			t.Fatalf("messages = %v", ms)
		}
	})

	t.Run("a retry with the same key returns the same conversation", func(t *testing.T) {
		req := &supportv1.CreateConversationRequest{Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox"}, IdempotencyKey: "key-retry-0001"}
		first, err := e.support.CreateConversation(e.as(t, "alice"), req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.support.CreateConversation(e.as(t, "alice"), req)
		if err != nil || again.GetConversation().GetName() != first.GetConversation().GetName() {
			t.Fatalf("retry = %v, %v; want %s", again, err, first.GetConversation().GetName())
		}
		if n := len(e.messages(t, first.GetConversation().GetName())); n != 1 {
			t.Errorf("messages after the retry = %d, want the one greeting", n)
		}
	})

	t.Run("the same key for another bank is refused; a retry of the first returns its conversation", func(t *testing.T) {
		at := func(bank string) *supportv1.CreateConversationRequest {
			return &supportv1.CreateConversationRequest{Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: bank}, IdempotencyKey: "key-two-banks-0001"}
		}
		first, err := e.support.CreateConversation(e.as(t, "alice"), at("sandbox"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.support.CreateConversation(e.as(t, "alice"), at("sandbox-two"))
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("code = %v (%v), want AlreadyExists", status.Code(err), err)
		}
		if got := apierr.Reason(err); got != commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED {
			t.Errorf("reason = %v, want IDEMPOTENCY_KEY_REUSED", got)
		}
		again, err := e.support.CreateConversation(e.as(t, "alice"), at("sandbox"))
		if err != nil || again.GetConversation().GetName() != first.GetConversation().GetName() {
			t.Fatalf("retry = %v, %v; want %s", again, err, first.GetConversation().GetName())
		}
		// The refused request opened nothing, though alice may open
		// conversations at the second bank.
		list, err := e.support.ListConversations(e.as(t, "alice"), &supportv1.ListConversationsRequest{Parent: "users/alice", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.GetConversations() {
			if c.GetBankId() == "sandbox-two" {
				t.Errorf("a conversation at sandbox-two: %v", c)
			}
		}
		other, err := e.support.CreateConversation(e.as(t, "alice"), &supportv1.CreateConversationRequest{
			Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox-two"}, IdempotencyKey: "key-" + randomSuffix(),
		})
		if err != nil || !strings.HasPrefix(other.GetConversation().GetName(), "users/alice/conversations/sandbox-two~") {
			t.Errorf("a conversation at sandbox-two with a fresh key = %v, %v", other, err)
		}
	})

	tests := []struct {
		name   string
		user   string
		bank   string
		reason commonv1.ErrorReason
	}{
		{"a bank that is not configured", "alice", "nobank", commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND},
		{"no consent at the bank", "bob", "sandbox", commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.support.CreateConversation(e.as(t, tt.user), &supportv1.CreateConversationRequest{
				Parent: "users/" + tt.user, Conversation: &supportv1.Conversation{BankId: tt.bank}, IdempotencyKey: "key-" + randomSuffix(),
			})
			testkit.RequireReason(t, err, tt.reason)
		})
	}

	t.Run("another user's conversation does not exist", func(t *testing.T) {
		c := e.create(t)
		e.consent.AddLink("bob", "sandbox")
		other := strings.Replace(c.GetName(), "users/alice", "users/bob", 1)
		_, err := e.support.GetConversation(e.as(t, "bob"), &supportv1.GetConversationRequest{Name: other})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		_, err = e.support.GetConversation(e.as(t, "bob"), &supportv1.GetConversationRequest{Name: c.GetName()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})
}

func TestListConversations(t *testing.T) {
	t.Parallel()
	e := start(t, options{noBankEvents: true})
	var created []string
	for range 3 {
		created = append(created, e.create(t).GetName())
	}
	if _, err := e.support.CloseConversation(e.as(t, "alice"), &supportv1.CloseConversationRequest{Name: created[0]}); err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T, req *supportv1.ListConversationsRequest) []string {
		t.Helper()
		req.Parent, req.PageSize = "users/alice", 2
		var out []string
		for {
			resp, err := e.support.ListConversations(e.as(t, "alice"), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range resp.GetConversations() {
				out = append(out, c.GetName())
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				return out
			}
		}
	}
	t.Run("most recently updated first, a page at a time", func(t *testing.T) {
		got := list(t, &supportv1.ListConversationsRequest{})
		if want := []string{created[0], created[2], created[1]}; !slices.Equal(got, want) {
			t.Errorf("list = %v, want %v", got, want)
		}
	})
	t.Run("only open ones", func(t *testing.T) {
		got := list(t, &supportv1.ListConversationsRequest{State: supportv1.ConversationState_CONVERSATION_STATE_OPEN})
		if want := []string{created[2], created[1]}; !slices.Equal(got, want) {
			t.Errorf("open = %v, want %v", got, want)
		}
	})
	t.Run("a page token of other filters is refused", func(t *testing.T) {
		resp, err := e.support.ListConversations(e.as(t, "alice"), &supportv1.ListConversationsRequest{Parent: "users/alice", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.support.ListConversations(e.as(t, "alice"), &supportv1.ListConversationsRequest{Parent: "users/alice", PageSize: 1,
			PageToken: resp.GetNextPageToken(), State: supportv1.ConversationState_CONVERSATION_STATE_CLOSED})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
	})
}

func TestAssistant(t *testing.T) {
	t.Parallel()
	e := start(t, options{noBankEvents: true})

	t.Run("the balance comes from the balance service, called as the user for customer support", func(t *testing.T) {
		c := e.create(t)
		e.mustSend(t, c.GetName(), "What's my balance?")
		reply := e.last(t, c.GetName())
		for _, want := range []string{"Everyday (•••• 4321): 1234.56 EUR available", "Savings (•••• 8765): -7.05 EUR available"} {
			if !strings.Contains(reply.GetText(), want) {
				t.Errorf("reply %q lacks %q", reply.GetText(), want)
			}
		}
		if !slices.Equal(payloads(reply), menu) {
			t.Errorf("quick replies = %v", payloads(reply))
		}
		calls := e.balances.metadataOf()
		if len(calls) != 3 {
			t.Fatalf("balance calls = %d, want ListAccounts and two GetBalance", len(calls))
		}
		for _, md := range calls {
			if got := md.Get("bankbridge-purpose"); !slices.Equal(got, []string{"CUSTOMER_SUPPORT"}) {
				t.Errorf("purpose = %v", got)
			}
			if got := md.Get("authorization"); len(got) != 1 || !strings.HasPrefix(got[0], "Bearer ey") {
				t.Errorf("authorization = %v, want alice's bearer token", got)
			}
		}
	})

	t.Run("recent transactions, newest first", func(t *testing.T) {
		c := e.create(t)
		e.mustSend(t, c.GetName(), "postback:TRANSACTIONS")
		got := e.last(t, c.GetName()).GetText()
		want := "Your recent transactions:\n• 2031-03-04 Blue Door Coffee -4.50 EUR\n• 2031-03-03 Corner Grocery -86.40 EUR\n• 2031-03-02 Transfer in 100.00 EUR"
		if got != want {
			t.Errorf("reply =\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("a postback the last message did not offer is refused", func(t *testing.T) {
		c := e.create(t)
		_, err := e.send(t, c.GetName(), "postback:CONFIRM_BLOCK")
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		testkit.RequireFieldViolation(t, err, "message.postback.payload")
	})

	t.Run("a postback shows the quick reply's title", func(t *testing.T) {
		c := e.create(t)
		m := e.mustSend(t, c.GetName(), "postback:BALANCE")
		if m.GetPostback().GetPayload() != "BALANCE" || m.GetPostback().GetTitle() != "Balance" || m.GetSenderRole() != supportv1.ParticipantRole_PARTICIPANT_ROLE_USER {
			t.Errorf("message = %v", m)
		}
	})

	t.Run("a lost card: pick it, confirm, and it is blocked at the bank", func(t *testing.T) {
		c := e.create(t)
		e.mustSend(t, c.GetName(), "I lost my card")
		offer := e.last(t, c.GetName())
		if want := []string{"BLOCK_CARD:card-alice-debit", "BLOCK_CARD:card-alice-credit", "CANCEL"}; !slices.Equal(payloads(offer), want) {
			t.Fatalf("offer = %v, want %v", payloads(offer), want)
		}
		if title := offer.GetQuickReplies()[0].GetTitle(); title != "Block •••• 1043" {
			t.Errorf("title = %q", title)
		}
		e.mustSend(t, c.GetName(), "postback:BLOCK_CARD:card-alice-debit")
		if got := payloads(e.last(t, c.GetName())); !slices.Equal(got, []string{"CONFIRM_BLOCK", "CANCEL"}) {
			t.Fatalf("confirmation = %v", got)
		}
		e.mustSend(t, c.GetName(), "postback:CONFIRM_BLOCK")
		if got := e.last(t, c.GetName()).GetText(); !strings.Contains(got, "ending in 1043 is blocked") {
			t.Errorf("reply = %q", got)
		}
		if state := e.cardState(t, "card-alice-debit"); state != adapterv1.CardState_CARD_STATE_BLOCKED {
			t.Errorf("card at the bank = %v, want BLOCKED", state)
		}
		if state := e.cardState(t, "card-alice-credit"); state != adapterv1.CardState_CARD_STATE_ACTIVE {
			t.Errorf("the other card = %v, want ACTIVE", state)
		}
	})

	t.Run("an unrecognised charge: pick it, confirm, and a fraud report is filed", func(t *testing.T) {
		c := e.create(t)
		e.mustSend(t, c.GetName(), "I don't recognise a charge")
		offer := e.last(t, c.GetName())
		if want := []string{"CHARGE:1", "CHARGE:2", "CHARGE:3", "CANCEL"}; !slices.Equal(payloads(offer), want) {
			t.Fatalf("offer = %v, want %v", payloads(offer), want)
		}
		if title := offer.GetQuickReplies()[0].GetTitle(); title != "2031-03-04 Blue Door Coffee -4.50 EUR" {
			t.Errorf("title = %q", title)
		}
		e.mustSend(t, c.GetName(), "postback:CHARGE:1")
		if got := payloads(e.last(t, c.GetName())); !slices.Equal(got, []string{"CONFIRM_REPORT", "CANCEL"}) {
			t.Fatalf("confirmation = %v", got)
		}
		e.mustSend(t, c.GetName(), "postback:CONFIRM_REPORT")
		if got := e.last(t, c.GetName()).GetText(); !strings.HasPrefix(got, "I've reported the transaction to your bank") {
			t.Fatalf("reply = %q", got)
		}
		reports, err := e.support.ListFraudReports(e.as(t, "alice"), &supportv1.ListFraudReportsRequest{Parent: "users/alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(reports.GetFraudReports()) != 1 || reports.GetFraudReports()[0].GetTransaction() != "users/alice/accounts/sandbox~acc-alice-checking/transactions/tx-c1" ||
			reports.GetFraudReports()[0].GetCategory() != supportv1.FraudCategory_FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION {
			t.Errorf("fraud reports = %v", reports.GetFraudReports())
		}
	})

	t.Run("a resend is the same message; other content under its id is refused", func(t *testing.T) {
		c := e.create(t)
		req := &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{ClientMessageId: "cm-resend-0001", Text: "hello"}}
		first, err := e.support.SendMessage(e.as(t, "alice"), req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.support.SendMessage(e.as(t, "alice"), req)
		if err != nil || again.GetMessage().GetName() != first.GetMessage().GetName() {
			t.Fatalf("resend = %v, %v", again, err)
		}
		if n := len(e.messages(t, c.GetName())); n != 3 {
			t.Errorf("messages = %d, want greeting, hello, one answer", n)
		}
		req.Message.Text = "something else"
		_, err = e.support.SendMessage(e.as(t, "alice"), req)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})

	t.Run("the balance service down: the assistant says so, in its own words", func(t *testing.T) {
		c := e.create(t)
		e.balances.setFail(apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "secret bank text 42"))
		t.Cleanup(func() { e.balances.setFail(nil) })
		e.mustSend(t, c.GetName(), "balance")
		got := e.last(t, c.GetName()).GetText()
		if !strings.HasPrefix(got, "I couldn't reach your bank just now") || strings.Contains(got, "secret") {
			t.Errorf("reply = %q", got)
		}
	})

	t.Run("message texts never reach the logs", func(t *testing.T) {
		for _, text := range []string{"What's my balance?", "1234.56", "I lost my card", "Blue Door Coffee", "secret bank text"} {
			if strings.Contains(e.logs.String(), text) {
				t.Errorf("logs carry %q", text)
			}
		}
	})
}

// cardState is a card's state at the sandbox.
func (e *env) cardState(t *testing.T, cardID string) adapterv1.CardState {
	t.Helper()
	cards, err := e.sandbox.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: e.bankConsent})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cards.GetCards() {
		if c.GetBankCardId() == cardID {
			return c.GetState()
		}
	}
	t.Fatalf("no card %s", cardID)
	return 0
}

func TestCloseConversation(t *testing.T) {
	t.Parallel()
	e := start(t, options{noBankEvents: true})
	c := e.create(t)
	closed, err := e.support.CloseConversation(e.as(t, "alice"), &supportv1.CloseConversationRequest{Name: c.GetName()})
	if err != nil || closed.GetConversation().GetState() != supportv1.ConversationState_CONVERSATION_STATE_CLOSED {
		t.Fatalf("close = %v, %v", closed, err)
	}
	again, err := e.support.CloseConversation(e.as(t, "alice"), &supportv1.CloseConversationRequest{Name: c.GetName()})
	if err != nil || !again.GetConversation().GetUpdateTime().AsTime().Equal(closed.GetConversation().GetUpdateTime().AsTime()) {
		t.Errorf("closing again = %v, %v; want no change", again, err)
	}
	_, err = e.send(t, c.GetName(), "hello?")
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONVERSATION_CLOSED)
	_, err = e.support.HandoverConversation(e.as(t, "alice"), &supportv1.HandoverConversationRequest{Name: c.GetName()})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONVERSATION_CLOSED)
	if n := len(e.messages(t, c.GetName())); n != 1 {
		t.Errorf("a closed conversation's messages = %d, want them readable", n)
	}
	_, err = e.support.CloseConversation(e.as(t, "alice"), &supportv1.CloseConversationRequest{Name: "users/alice/conversations/sandbox~nope"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

func TestHandoverBankDown(t *testing.T) {
	t.Parallel()
	e := start(t, options{sandboxDown: true})
	c := e.create(t)

	t.Run("HandoverConversation fails UNAVAILABLE and control stays", func(t *testing.T) {
		_, err := e.support.HandoverConversation(e.as(t, "alice"), &supportv1.HandoverConversationRequest{Name: c.GetName()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("code = %v", status.Code(err))
		}
		if got := e.get(t, c.GetName()).GetController(); got != supportv1.Controller_CONTROLLER_ASSISTANT {
			t.Errorf("controller = %v", got)
		}
	})

	t.Run("asking the assistant for a person: it apologises, and keeps control", func(t *testing.T) {
		e.mustSend(t, c.GetName(), "I want to talk to a person")
		if got := e.last(t, c.GetName()).GetText(); !strings.HasPrefix(got, "Sorry, I couldn't reach a person at your bank") {
			t.Errorf("reply = %q", got)
		}
		if got := e.get(t, c.GetName()).GetController(); got != supportv1.Controller_CONTROLLER_ASSISTANT {
			t.Errorf("controller = %v", got)
		}
	})
}

// waitFor polls the conversation until cond holds.
func (e *env) waitFor(t *testing.T, conv string, what string, cond func(c *supportv1.Conversation, ms []*supportv1.Message) bool) {
	t.Helper()
	ok := testkit.Within(10*time.Second, func() bool { return cond(e.get(t, conv), e.messages(t, conv)) })
	if !ok {
		t.Fatalf("%s: not within 10s; conversation %v", what, e.get(t, conv))
	}
}

// hasText reports whether a message of role says text (a prefix).
func hasText(ms []*supportv1.Message, role supportv1.ParticipantRole, prefix string) bool {
	return slices.ContainsFunc(ms, func(m *supportv1.Message) bool {
		return m.GetSenderRole() == role && strings.HasPrefix(m.GetText(), prefix)
	})
}
