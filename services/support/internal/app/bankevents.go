package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// maxEventBatch is how many of a bank's events that have already arrived
// are applied in one transaction: a burst (a bank raising an alert for
// thousands of customers) commits once per batch, not once per event.
const maxEventBatch = 100

// streamOnce reads the bank's event stream from pos until it ends or
// fails, applying the events with the position of the last in one
// transaction, as many at a time as have arrived (up to maxEventBatch). It
// returns the position of the last event applied and how many were.
func (s *Service) streamOnce(ctx context.Context, bankID string, pos EventPosition) (EventPosition, int, error) {
	client, err := s.banks.Client(bankID)
	if err != nil {
		return pos, 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &adapterv1.StreamEventsRequest{ResumeCursor: pos.Cursor}
	if pos.Cursor == "" && !pos.Since.IsZero() {
		req.StartTime = timestamppb.New(pos.Since)
	}
	st, err := client.StreamEvents(ctx, req)
	if err != nil {
		return pos, 0, err
	}
	// The reader receives while the applier commits; its error comes after
	// every event it received.
	events := make(chan *adapterv1.StreamEventsResponse, maxEventBatch)
	var recvErr error
	go func() {
		defer close(events)
		for {
			ev, err := st.Recv()
			if err != nil {
				recvErr = err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				recvErr = ctx.Err()
				return
			}
		}
	}()
	n := 0
	for {
		ev, ok := <-events
		if !ok {
			return pos, n, recvErr
		}
		batch := []*adapterv1.StreamEventsResponse{ev}
	more:
		for len(batch) < maxEventBatch {
			select {
			case ev, ok := <-events:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			default:
				break more
			}
		}
		if err := s.applyBatch(ctx, bankID, batch); err != nil {
			return pos, n, err
		}
		pos = positionAfter(batch[len(batch)-1])
		n += len(batch)
	}
}

// ApplyBankEvent applies one of the bank's events and stores its cursor,
// in one transaction, when this replica holds the bank's lease (else
// ErrLeaseLost): a crash never loses an effect nor applies one twice.
func (s *Service) ApplyBankEvent(ctx context.Context, bankID string, ev *adapterv1.StreamEventsResponse) error {
	return s.applyBatch(ctx, bankID, []*adapterv1.StreamEventsResponse{ev})
}

// applyBatch applies events in order and stores the last one's cursor,
// all in one transaction (again on a conflict). What the events need from
// other services is asked first, so the transaction is short and never
// waits on another service.
func (s *Service) applyBatch(ctx context.Context, bankID string, events []*adapterv1.StreamEventsResponse) error {
	consents, err := s.resolveAlertConsents(ctx, bankID, events)
	if err != nil {
		return err
	}
	_, err = retry(func() (struct{}, error) { return struct{}{}, s.applyBankEvents(ctx, bankID, events, consents) })
	return err
}

// applyBankEvents is applyBatch's transaction.
func (s *Service) applyBankEvents(ctx context.Context, bankID string, events []*adapterv1.StreamEventsResponse, consents alertConsents) error {
	// Not run again after a lost connection: not every handler of the
	// batch is keyed; the stream resumes from the stored cursor instead.
	return s.store.Tx(ctx, func(tx Tx) error {
		if err := tx.SetCursor(ctx, bankID, s.cfg.Holder, positionAfter(events[len(events)-1])); err != nil {
			return err
		}
		for _, ev := range events {
			if err := s.dispatch(ctx, tx, bankID, ev, consents); err != nil {
				return err
			}
		}
		return nil
	})
}

// positionAfter is the stream's position right after ev.
func positionAfter(ev *adapterv1.StreamEventsResponse) EventPosition {
	return EventPosition{Cursor: ev.GetCursor(), Since: ev.GetEventTime().AsTime().UTC().Truncate(time.Microsecond)}
}

// dispatch hands an event to its handler, inside tx.
func (s *Service) dispatch(ctx context.Context, tx Tx, bankID string, ev *adapterv1.StreamEventsResponse, consents alertConsents) error {
	switch ev.GetEvent().(type) {
	case *adapterv1.StreamEventsResponse_FraudAlert:
		return s.handleFraudAlert(ctx, tx, bankID, ev, consents)
	case *adapterv1.StreamEventsResponse_FraudCaseUpdated:
		return s.handleFraudCaseUpdated(ctx, tx, bankID, ev)
	}
	caseID, kind, apply, ok := s.caseEvent(ctx, ev)
	if !ok {
		s.log.InfoContext(ctx, "bank event of an unknown kind skipped", slog.String(telemetry.AttrBankID, bankID))
		return nil
	}
	c, err := tx.ConversationByCase(ctx, bankID, caseID)
	if errors.Is(err, ErrNotFound) {
		return s.park(ctx, tx, bankID, caseID, kind, ev)
	}
	if err != nil {
		return err
	}
	if c.State == StateClosed {
		return nil
	}
	ch := begin(tx, c, s.stamp())
	switch err := apply(ch); {
	case errors.Is(err, errSkip):
		return nil
	case err != nil:
		return err
	}
	return ch.commit(ctx)
}

// errSkip is a handler's answer to an event that changes nothing: the
// conversation is not written.
var errSkip = errors.New("bank event changes nothing")

// caseEvent reads an agent's event on a support case: its case, its kind
// (for logs) and what it does to the case's conversation; ok is false for
// any other event.
func (s *Service) caseEvent(ctx context.Context, ev *adapterv1.StreamEventsResponse) (caseID, kind string, apply func(*change) error, ok bool) {
	switch e := ev.GetEvent().(type) {
	case *adapterv1.StreamEventsResponse_AgentJoined:
		return e.AgentJoined.GetCaseId(), "agent_joined", func(ch *change) error { return s.agentJoined(ctx, ch, e.AgentJoined) }, true
	case *adapterv1.StreamEventsResponse_AgentMessage:
		return e.AgentMessage.GetCaseId(), "agent_message", func(ch *change) error { return s.agentMessage(ctx, ch, e.AgentMessage) }, true
	case *adapterv1.StreamEventsResponse_AgentRequestedControl:
		return e.AgentRequestedControl.GetCaseId(), "agent_requested_control", func(ch *change) error {
			return s.agentRequestedControl(ctx, ch, e.AgentRequestedControl)
		}, true
	case *adapterv1.StreamEventsResponse_AgentPassedControl:
		return e.AgentPassedControl.GetCaseId(), "agent_passed_control", func(ch *change) error {
			return s.agentPassedControl(ctx, ch, e.AgentPassedControl)
		}, true
	case *adapterv1.StreamEventsResponse_SupportCaseClosed:
		return e.SupportCaseClosed.GetCaseId(), "support_case_closed", func(ch *change) error {
			ch.close(RoleBankAgent)
			return nil
		}, true
	}
	return "", "", nil, false
}

// park keeps an event of a case no conversation names: the bank may send
// a case's first events before the handoff that opened it has committed
// the case id, which then applies them (claimParked). Events no handoff
// claims are deleted by the sweep after parkedTTL. Logged with the bank
// and the kind only.
func (s *Service) park(ctx context.Context, tx Tx, bankID, caseID, kind string, ev *adapterv1.StreamEventsResponse) error {
	data, err := protojson.Marshal(ev)
	if err != nil {
		return fmt.Errorf("park %s: %w", kind, err)
	}
	s.log.InfoContext(ctx, "bank event for an unknown support case kept for a while, then skipped",
		slog.String(telemetry.AttrBankID, bankID), slog.String("bankbridge.event_kind", kind))
	return tx.ParkCaseEvent(ctx, bankID, caseID, data, s.stamp())
}

// claimParked applies, in order, the events the bank sent for the case
// of ch's conversation before the case id was stored. The transaction
// holds the bank's event lock (LockBankEvents), so no event of the case
// is being parked meanwhile.
func (s *Service) claimParked(ctx context.Context, ch *change) error {
	kept, err := ch.tx.TakeParkedCaseEvents(ctx, ch.c.BankID, ch.c.CaseID)
	if err != nil {
		return err
	}
	for _, data := range kept {
		var ev adapterv1.StreamEventsResponse
		if err := protojson.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("read parked case event: %w", err)
		}
		_, _, apply, ok := s.caseEvent(ctx, &ev)
		if !ok || ch.c.State == StateClosed {
			continue
		}
		if err := apply(ch); err != nil && !errors.Is(err, errSkip) {
			return err
		}
	}
	return nil
}

// agentJoined: an agent picked the case up while holding control.
func (s *Service) agentJoined(ctx context.Context, ch *change, e *adapterv1.AgentJoined) error {
	if ch.c.Controller != ControllerBankAgent {
		return errSkip
	}
	ch.c.AgentDisplayName = e.GetAgentDisplayName()
	ch.control(ActionAgentJoined, RoleBankAgent, "")
	return ch.system(ctx, e.GetAgentDisplayName()+" from "+s.bankName(ch.c.BankID)+" joined the conversation.")
}

// agentMessage: the agent wrote, once per bank message id, while holding
// control.
func (s *Service) agentMessage(ctx context.Context, ch *change, e *adapterv1.AgentMessage) error {
	if ch.c.Controller != ControllerBankAgent {
		return errSkip
	}
	seen, err := ch.tx.HasBankMessage(ctx, ch.c.ConversationKey, e.GetMessageId())
	if err != nil {
		return err
	}
	if seen {
		return errSkip
	}
	if ch.c.AgentDisplayName == "" {
		ch.c.AgentDisplayName = e.GetAgentDisplayName()
	}
	ch.c.AwaitingAgentSince = time.Time{}
	_, err = ch.add(ctx, Message{Role: RoleBankAgent, SenderDisplayName: e.GetAgentDisplayName(), Text: e.GetText(), BankMessageID: e.GetMessageId()})
	return err
}

// agentRequestedControl: the agent asks for control while the assistant
// holds it; the assistant passes it at once, and tells the bank.
func (s *Service) agentRequestedControl(ctx context.Context, ch *change, e *adapterv1.AgentRequestedControl) error {
	if ch.c.Controller != ControllerAssistant {
		return errSkip
	}
	ch.c.Pending = &ControlRequest{RequestedBy: ControllerBankAgent, Metadata: e.GetMetadata(), Time: ch.now}
	ch.control(ActionRequest, RoleBankAgent, e.GetMetadata())
	ch.c.Controller = ControllerBankAgent
	ch.c.Pending = nil
	ch.c.Assistant = assistant.State{}
	ch.c.AwaitingAgentSince = time.Time{}
	ch.control(ActionPass, RoleAssistant, "")
	ch.notify(ActionPass, "")
	return ch.system(ctx, "A person at "+s.bankName(ch.c.BankID)+" is taking over the conversation.")
}

// agentPassedControl: the agent hands control back to the assistant,
// which says it is back.
func (s *Service) agentPassedControl(ctx context.Context, ch *change, e *adapterv1.AgentPassedControl) error {
	if ch.c.Controller != ControllerBankAgent {
		return errSkip
	}
	ch.c.Controller = ControllerAssistant
	ch.c.Pending = nil
	ch.c.AgentDisplayName = ""
	ch.c.AwaitingAgentSince = time.Time{}
	ch.c.Assistant = assistant.State{}
	ch.control(ActionPass, RoleBankAgent, e.GetMetadata())
	_, err := ch.say(ctx, assistant.Back())
	return err
}
