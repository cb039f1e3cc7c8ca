package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// AgentName is the sandbox's support agent, as events show her.
const AgentName = "Anna"

// Scripted cues: user texts that make Anna act, matched after trimming
// spaces and ignoring case.
const (
	// CloseCaseText makes Anna close the case: SupportCaseClosed, and
	// SendSupportMessage on the case fails from then on.
	CloseCaseText = "bye"
	// PassBackCue makes Anna answer and then pass thread control back to
	// bankbridge's assistant: AgentPassedControl with metadata
	// [PassBackMetadata]. The case stays open.
	PassBackCue = "that's all, thanks"
)

// Metadata Anna puts on her thread control events.
const (
	// PassBackMetadata is the metadata of the AgentPassedControl that
	// follows PassBackCue.
	PassBackMetadata = "resolved"
	// AssistantAskedMetadata is the metadata of the AgentPassedControl with
	// which Anna answers NotifyThreadControl REQUEST.
	AssistantAskedMetadata = "assistant asked"
	// RequestControlMetadata is the metadata of the AgentRequestedControl
	// that [Bank.RequestControl] makes her send.
	RequestControlMetadata = "Anna would like to follow up"
)

// Errors of RequestControl.
var (
	// ErrUnknownCase is RequestControl's error when the bank has no case
	// with the id.
	ErrUnknownCase = errors.New("sandbox: no support case with this id")
	// ErrCaseClosed is RequestControl's error when the case is closed.
	ErrCaseClosed = errors.New("sandbox: the support case is closed")
	// ErrAgentHoldsControl is RequestControl's error when Anna holds thread
	// control already, so there is nothing to ask for.
	ErrAgentHoldsControl = errors.New("sandbox: the agent holds thread control already")
	// ErrAgentLacksControl is PassControl's error when Anna does not hold
	// thread control, so there is nothing to hand back.
	ErrAgentLacksControl = errors.New("sandbox: the agent does not hold thread control")
)

// AgentDoneMetadata is the metadata of the AgentPassedControl that
// [Bank.PassControl] makes Anna send.
const AgentDoneMetadata = "agent done"

// supportCase is a case at the bank's support desk, guarded by Bank.mu.
type supportCase struct {
	id        string
	consentID string
	// opened is when the case opened, to find a customer's latest one.
	opened time.Time
	closed bool
	// agentControl says Anna holds thread control and so answers the
	// user; bankbridge's assistant holds it otherwise.
	agentControl bool
	// actions are the NotifyThreadControl actions the case received, in
	// order, each once however often it was retried.
	actions []adapterv1.ThreadControlAction
}

// cue reports whether text is the scripted cue.
func cue(text, cue string) bool {
	return strings.EqualFold(strings.TrimSpace(text), cue)
}

// StartSupportHandoff implements adapters.SupportAdapter: the case opens
// at once with Anna in control, and she joins and greets the user on the
// event stream. It needs SCOPE_SUPPORT.
func (b *Bank) StartSupportHandoff(ctx context.Context, req *adapterv1.StartSupportHandoffRequest) (*adapterv1.StartSupportHandoffResponse, error) {
	var resp *adapterv1.StartSupportHandoffResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, _ *customer) error {
		var err error
		resp, err = idempotent(b.idem, "StartSupportHandoff", req.GetIdempotencyKey(), req, func() (*adapterv1.StartSupportHandoffResponse, error) {
			sc := &supportCase{id: randomID("case-"), consentID: c.id, opened: b.opts.Now(), agentControl: true}
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

// SendSupportMessage implements adapters.SupportAdapter. While Anna holds
// thread control she answers every message on the event stream; after
// [PassBackCue] she answers and passes control back to the assistant; on
// [CloseCaseText] she closes the case (whoever holds control). While the
// assistant holds control she stays silent. A closed case refuses
// messages with FAILED_PRECONDITION.
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
			switch {
			case cue(req.GetText(), CloseCaseText):
				b.closeCase(sc)
			case !sc.agentControl:
				// The assistant holds control: Anna does not write.
			case cue(req.GetText(), PassBackCue):
				b.agentSays(sc.id, "You're welcome! I'm handing you back to the assistant; ask for me again any time.")
				b.passControl(sc, PassBackMetadata)
			default:
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

// NotifyThreadControl implements adapters.SupportAdapter. The case records
// each action (see [Bank.CaseActions]) and Anna acts on it:
//   - REQUEST: she passes control back at once (AgentPassedControl with
//     metadata [AssistantAskedMetadata]), if she holds it;
//   - TAKE: she stops answering until control is passed to her again;
//   - PASS: she takes control and greets the user again;
//   - CLOSE: the case closes, with no event.
//
// On a closed case every action is recorded and does nothing. A retry with
// the same idempotency key acts once. It needs SCOPE_SUPPORT.
func (b *Bank) NotifyThreadControl(ctx context.Context, req *adapterv1.NotifyThreadControlRequest) (*adapterv1.NotifyThreadControlResponse, error) {
	var resp *adapterv1.NotifyThreadControlResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, _ *customer) error {
		sc := b.cases[req.GetCaseId()]
		if sc == nil || sc.consentID != c.id {
			return notFound("case under this consent")
		}
		var err error
		resp, err = idempotent(b.idem, "NotifyThreadControl", req.GetIdempotencyKey(), req, func() (*adapterv1.NotifyThreadControlResponse, error) {
			sc.actions = append(sc.actions, req.GetAction())
			if sc.closed {
				return &adapterv1.NotifyThreadControlResponse{}, nil
			}
			switch req.GetAction() {
			case adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST:
				if sc.agentControl {
					b.passControl(sc, AssistantAskedMetadata)
				}
			case adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE:
				sc.agentControl = false
			case adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_PASS:
				sc.agentControl = true
				b.agentSays(sc.id, "Hello again, this is "+AgentName+". How can I help?")
			case adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_CLOSE:
				sc.closed, sc.agentControl = true, false
			}
			return &adapterv1.NotifyThreadControlResponse{}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// CaseActions returns the thread control actions the case with caseID
// received through NotifyThreadControl, in order, each once however often
// it was retried; nil for an unknown case.
func (b *Bank) CaseActions(caseID string) []adapterv1.ThreadControlAction {
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := b.cases[caseID]
	if sc == nil {
		return nil
	}
	return slices.Clone(sc.actions)
}

// RequestControl makes Anna ask bankbridge's assistant for thread control
// of the case with caseID (AgentRequestedControl with metadata
// [RequestControlMetadata]), as an agent who wants to follow up would:
// ErrUnknownCase, ErrCaseClosed, or ErrAgentHoldsControl when she holds it
// already. Control stays the assistant's until it answers with
// NotifyThreadControl PASS. The admin endpoint
// POST /admin/support/request-control?case=<id> calls it.
func (b *Bank) RequestControl(caseID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := b.cases[caseID]
	switch {
	case sc == nil:
		return ErrUnknownCase
	case sc.closed:
		return ErrCaseClosed
	case sc.agentControl:
		return ErrAgentHoldsControl
	}
	b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_AgentRequestedControl{
		AgentRequestedControl: &adapterv1.AgentRequestedControl{CaseId: sc.id, Metadata: RequestControlMetadata},
	}})
	return nil
}

// PassControl makes Anna hand thread control of the case with caseID
// back to bankbridge's assistant on her own, as an agent done with a case
// would: she says so, then AgentPassedControl with metadata
// [AgentDoneMetadata]. ErrUnknownCase, ErrCaseClosed, or
// ErrAgentLacksControl when the assistant holds control. The case stays
// open. The admin endpoint POST /admin/support/pass-control calls it.
func (b *Bank) PassControl(caseID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := b.cases[caseID]
	switch {
	case sc == nil:
		return ErrUnknownCase
	case sc.closed:
		return ErrCaseClosed
	case !sc.agentControl:
		return ErrAgentLacksControl
	}
	b.agentSays(sc.id, "I'm handing you back to the assistant now; ask for me again any time.")
	b.passControl(sc, AgentDoneMetadata)
	return nil
}

// CustomerCase returns the id of the customer's latest open support case
// under a consent that is not revoked: ErrUnknownCustomer, or
// ErrUnknownCase when they have none. The admin endpoints take it as
// ?user=<login>, for callers that do not know case ids (the demo chat).
func (b *Bank) CustomerCase(login string) (string, error) {
	if b.customers[login] == nil {
		return "", ErrUnknownCustomer
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var latest *supportCase
	for _, sc := range b.cases {
		c := b.consents[sc.consentID]
		if sc.closed || c == nil || c.revoked || c.login != login {
			continue
		}
		if latest == nil || sc.opened.After(latest.opened) || (sc.opened.Equal(latest.opened) && sc.id > latest.id) {
			latest = sc
		}
	}
	if latest == nil {
		return "", ErrUnknownCase
	}
	return latest.id, nil
}

// passControl hands the case's thread back to the assistant. The caller
// holds Bank.mu.
func (b *Bank) passControl(sc *supportCase, metadata string) {
	sc.agentControl = false
	b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_AgentPassedControl{
		AgentPassedControl: &adapterv1.AgentPassedControl{CaseId: sc.id, Metadata: metadata},
	}})
}

// closeCase closes the case at the bank's side: SupportCaseClosed. The
// caller holds Bank.mu.
func (b *Bank) closeCase(sc *supportCase) {
	sc.closed, sc.agentControl = true, false
	b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_SupportCaseClosed{
		SupportCaseClosed: &adapterv1.SupportCaseClosed{CaseId: sc.id},
	}})
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
