package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// AgentName is the sandbox's support agent, as events show her.
const AgentName = "Anna"

// CloseCaseText is the user message that makes the agent close the case.
const CloseCaseText = "bye"

// supportCase is a case at the bank's support desk, guarded by Bank.mu.
type supportCase struct {
	id        string
	consentID string
	closed    bool
}

// StartSupportHandoff implements adapters.SupportAdapter: the case opens
// at once and the agent joins and greets the user on the event stream.
func (b *Bank) StartSupportHandoff(ctx context.Context, req *adapterv1.StartSupportHandoffRequest) (*adapterv1.StartSupportHandoffResponse, error) {
	var resp *adapterv1.StartSupportHandoffResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, _ *customer) error {
		var err error
		resp, err = idempotent(b.idem, "StartSupportHandoff", req.GetIdempotencyKey(), req, func() (*adapterv1.StartSupportHandoffResponse, error) {
			sc := &supportCase{id: randomID("case-"), consentID: c.id}
			b.cases[sc.id] = sc
			b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_AgentJoined{
				AgentJoined: &adapterv1.AgentJoined{CaseId: sc.id, AgentDisplayName: AgentName},
			}})
			b.agentSays(sc.id, "Hello, this is "+AgentName+" from Sandbox Bank. I have read your conversation; how can I help?")
			return &adapterv1.StartSupportHandoffResponse{CaseId: sc.id, EstimatedWait: durationpb.New(time.Minute)}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// SendSupportMessage implements adapters.SupportAdapter: the agent answers
// every message on the event stream, and leaves, closing the case, when the
// user writes CloseCaseText.
func (b *Bank) SendSupportMessage(ctx context.Context, req *adapterv1.SendSupportMessageRequest) (*adapterv1.SendSupportMessageResponse, error) {
	var resp *adapterv1.SendSupportMessageResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, _ *customer) error {
		sc := b.cases[req.GetCaseId()]
		if sc == nil || sc.consentID != c.id {
			return notFound("case under this consent")
		}
		var err error
		resp, err = idempotent(b.idem, "SendSupportMessage", req.GetClientMessageId(), req, func() (*adapterv1.SendSupportMessageResponse, error) {
			if sc.closed {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "the case is closed")
			}
			if strings.EqualFold(strings.TrimSpace(req.GetText()), CloseCaseText) {
				sc.closed = true
				b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_AgentLeft{
					AgentLeft: &adapterv1.AgentLeft{CaseId: sc.id, CaseClosed: true},
				}})
			} else {
				b.agentSays(sc.id, "Thank you, I have noted that. Is there anything else?")
			}
			return &adapterv1.SendSupportMessageResponse{MessageId: randomID("msg-")}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// agentSays puts an agent message on the event stream. The caller holds
// Bank.mu.
func (b *Bank) agentSays(caseID, text string) {
	b.agentMsgID++
	b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_AgentMessage{
		AgentMessage: &adapterv1.AgentMessage{
			CaseId:           caseID,
			MessageId:        fmt.Sprintf("agent-msg-%d", b.agentMsgID),
			AgentDisplayName: AgentName,
			Text:             text,
		},
	}})
}
