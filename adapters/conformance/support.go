package conformance

import (
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testSupportHandoff is support/handoff: the kit opens a case, which the
// other support/ checks use.
func (k *kit) testSupportHandoff(c *C) {
	k.needConsent(c)
	start := &adapterv1.StartSupportHandoffRequest{
		BankConsentId:         k.consentID,
		ConversationReference: "conformance-" + k.run,
		Transcript: []*adapterv1.TranscriptMessage{
			{Sender: adapterv1.TranscriptSender_TRANSCRIPT_SENDER_USER, Text: "I have a question about a payment.", SendTime: timestamppb.New(time.Now().Add(-time.Minute))},
			{Sender: adapterv1.TranscriptSender_TRANSCRIPT_SENDER_ASSISTANT, Text: "Let me get you to an agent.", SendTime: timestamppb.Now()},
		},
		Reason:         "The user asked for a human agent.",
		LanguageCode:   "en",
		IdempotencyKey: k.key("handoff"),
	}
	opened, err := k.client.StartSupportHandoff(k.ctx(c), start)
	if !ok(c, "StartSupportHandoff", err) {
		c.FailNow()
	}
	k.check(c, "StartSupportHandoff", opened)
	k.supportCase = opened.GetCaseId()
	retry, err := k.client.StartSupportHandoff(k.ctx(c), start)
	if ok(c, "StartSupportHandoff retried with the same key", err) && retry.GetCaseId() != opened.GetCaseId() {
		c.Error("StartSupportHandoff retried with the same key: opened another case")
	}
	other := proto.CloneOf(start)
	other.Reason = "Another reason."
	_, err = k.client.StartSupportHandoff(k.ctx(c), other)
	wantError(c, "StartSupportHandoff with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	k.awaitPrompt(c, "AgentJoined for the case StartSupportHandoff opened", func(ev *adapterv1.StreamEventsResponse) bool {
		return ev.GetAgentJoined().GetCaseId() == opened.GetCaseId()
	})
}

// needCase skips the check without the case support/handoff opened.
func (k *kit) needCase(c *C) {
	c.Helper()
	k.needConsent(c)
	if k.supportCase == "" {
		c.Skip("no support case (support/handoff did not pass)")
	}
}

// testSupportMessage is support/message.
func (k *kit) testSupportMessage(c *C) {
	k.needCase(c)
	msg := &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: k.supportCase, Text: "Here is more detail.", ClientMessageId: k.key("message"),
	}
	sent, err := k.client.SendSupportMessage(k.ctx(c), msg)
	if ok(c, "SendSupportMessage", err) {
		k.check(c, "SendSupportMessage", sent)
		again, err := k.client.SendSupportMessage(k.ctx(c), msg)
		if ok(c, "SendSupportMessage retried with the same id", err) && again.GetMessageId() != sent.GetMessageId() {
			c.Error("SendSupportMessage retried with the same client_message_id: delivered twice")
		}
		changed := proto.CloneOf(msg)
		changed.Text = "Something else."
		_, err = k.client.SendSupportMessage(k.ctx(c), changed)
		wantError(c, "SendSupportMessage with a used id and another text", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	}

	_, err = k.client.SendSupportMessage(k.ctx(c), &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: unknownID, Text: "Hello?", ClientMessageId: k.key("message-unknown-case"),
	})
	wantError(c, "SendSupportMessage on an unknown case", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// testThreadControl (support/thread-control) tells the bank, on the case the kit opened, each thing
// bankbridge's assistant does to a thread, in an order a conversation can
// take: REQUEST (the agent holds control after the handoff), PASS, TAKE,
// and CLOSE last. Each succeeds, and each is idempotent on its key; an
// unknown case is NOT_FOUND.
func (k *kit) testThreadControl(c *C) {
	k.needCase(c)
	caseID := k.supportCase
	notify := func(action adapterv1.ThreadControlAction, key string) *adapterv1.NotifyThreadControlRequest {
		return &adapterv1.NotifyThreadControlRequest{
			BankConsentId: k.consentID, CaseId: caseID, Action: action,
			Metadata: "conformance check", IdempotencyKey: k.key(key),
		}
	}
	_, err := k.client.NotifyThreadControl(k.ctx(c), &adapterv1.NotifyThreadControlRequest{
		BankConsentId: k.consentID, CaseId: unknownID, Action: adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
		IdempotencyKey: k.key("control-unknown-case"),
	})
	wantError(c, "NotifyThreadControl on an unknown case", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

	for _, action := range []adapterv1.ThreadControlAction{
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_PASS,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_CLOSE,
	} {
		name := strings.TrimPrefix(action.String(), "THREAD_CONTROL_ACTION_")
		what := "NotifyThreadControl " + name
		req := notify(action, "control-"+strings.ToLower(name))
		resp, err := k.client.NotifyThreadControl(k.ctx(c), req)
		if !ok(c, what, err) {
			continue
		}
		k.check(c, what, resp)
		retry, err := k.client.NotifyThreadControl(k.ctx(c), req)
		if ok(c, what+" retried with the same key", err) {
			k.check(c, what+" retried with the same key", retry)
		}
		other := proto.CloneOf(req)
		other.Metadata = "another note"
		_, err = k.client.NotifyThreadControl(k.ctx(c), other)
		wantError(c, what+" with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		if action == adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST {
			k.awaitPrompt(c, "AgentPassedControl after NotifyThreadControl REQUEST", func(ev *adapterv1.StreamEventsResponse) bool {
				return ev.GetAgentPassedControl().GetCaseId() == caseID
			})
		}
	}

	// The bank should close the case on CLOSE; it may take its time, but
	// a message it refuses must be refused as one on a closed case.
	_, err = k.client.SendSupportMessage(k.ctx(c), &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: caseID, Text: "Are you still there?", ClientMessageId: k.key("message-after-close"),
	})
	if err != nil {
		wantError(c, "SendSupportMessage after NotifyThreadControl CLOSE", err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
	}
}
