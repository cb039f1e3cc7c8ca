package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// watch is an event stream the kit holds open while it makes its calls,
// and everything it delivered, in order. Its reader only records: the
// checks run on the test's goroutine.
type watch struct {
	mu      sync.Mutex
	events  []*adapterv1.StreamEventsResponse
	err     error
	changed chan struct{}
}

func newWatch() *watch { return &watch{changed: make(chan struct{})} }

// read records stream's events until it fails or ctx ends. A stream the
// bank ends cleanly (io.EOF), as it may at any time, is resumed after the
// last event, as bankbridge resumes it.
func (w *watch) read(ctx context.Context, client adapterv1.BankAdapterServiceClient, stream grpc.ServerStreamingClient[adapterv1.StreamEventsResponse]) {
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) && ctx.Err() == nil {
			cursor := ""
			w.mu.Lock()
			if n := len(w.events); n > 0 {
				cursor = w.events[n-1].GetCursor()
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond): // a bank that keeps ending it is not hammered
			}
			if stream, err = client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{ResumeCursor: cursor}); err == nil {
				continue
			}
		}
		w.mu.Lock()
		if err != nil {
			w.err = err
		} else {
			w.events = append(w.events, ev)
		}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// len is how many events arrived so far.
func (w *watch) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// snapshot returns the events so far and the error that ended the stream,
// if it ended.
func (w *watch) snapshot() ([]*adapterv1.StreamEventsResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*adapterv1.StreamEventsResponse(nil), w.events...), w.err
}

// await waits up to d for an event at index from or later that matches,
// and returns it; nil when none came in time, and the stream's error when
// it ended without one.
func (w *watch) await(from int, d time.Duration, match func(*adapterv1.StreamEventsResponse) bool) (*adapterv1.StreamEventsResponse, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		w.mu.Lock()
		for _, ev := range w.events[min(from, len(w.events)):] {
			if match(ev) {
				w.mu.Unlock()
				return ev, nil
			}
		}
		from = len(w.events)
		err, changed := w.err, w.changed
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, nil
		}
	}
}

// openWatch opens the stream on which the kit watches the events its calls
// cause, from now on, and with TriggerEvent waits until it is live at the
// bank (an empty cursor starts when the bank sees the stream). ctx ends
// the stream.
func (k *kit) openWatch(ctx context.Context, c *C) {
	k.needConsent(c)
	ctx = k.streamCtx(ctx)
	stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
	if !ok(c, "StreamEvents (the kit's watch)", err) {
		return
	}
	w := newWatch()
	go w.read(ctx, k.client, stream)
	k.watch = w
	if k.fx.TriggerEvent == nil {
		if k.fx.PromptEvents {
			c.Error("Fixtures.PromptEvents needs Fixtures.TriggerEvent, to know when the watch is live at the bank")
		}
		c.Log("StreamEvents: no trigger_event in the fixtures; the watch may miss the first events the kit causes")
		return
	}
	for attempt := 0; attempt < 50 && w.len() == 0; attempt++ {
		if err := k.fx.TriggerEvent(k.ctx(c)); err != nil {
			c.Fatalf("Fixtures.TriggerEvent: %v", err)
		}
		if _, err := w.await(0, 100*time.Millisecond, func(*adapterv1.StreamEventsResponse) bool { return true }); err != nil {
			ok(c, "StreamEvents (the kit's watch)", err)
			return
		}
	}
	if w.len() == 0 {
		c.Error("StreamEvents: no event arrived after TriggerEvent")
	}
}

// awaitPrompt wants, with Fixtures.PromptEvents, an event that matches on
// the watch within eventWait; without it, it checks nothing.
func (k *kit) awaitPrompt(c *C, what string, match func(*adapterv1.StreamEventsResponse) bool) {
	c.Helper()
	if !k.fx.PromptEvents || k.watch == nil {
		return
	}
	ev, err := k.watch.await(0, eventWait, match)
	switch {
	case err != nil:
		c.Errorf("StreamEvents: the stream ended before %s arrived: %s", what, describe(err))
		checkErrorInfo(c, "StreamEvents", err)
	case ev == nil:
		c.Errorf("StreamEvents: no %s within %s (Fixtures.PromptEvents)", what, eventWait)
	}
}

// eventKind names the event an event carries, e.g. "agent_passed_control".
func eventKind(ev *adapterv1.StreamEventsResponse) string {
	m := ev.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("event"))
	if fd == nil {
		return "no event"
	}
	return string(fd.Name())
}

// fraudCaseOrder ranks a fraud case's statuses: a case never moves back.
var fraudCaseOrder = map[adapterv1.FraudCaseStatus]int{
	adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED:  1,
	adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW: 2,
	adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED:  3,
}

// testWatched checks every event the watch delivered while the kit made
// its calls: each keeps the protocol's rules and the masking rule; an
// event re-delivered keeps its cursor and content; no agent acts on a case
// after the bank closed it; the kit's fraud case names the kit's consent
// and never moves back (RESOLVED is final); an alert under the kit's
// consent names an account and card that consent covers.
func (k *kit) testWatched(c *C) {
	if k.watch == nil {
		c.Skip("no watch (events/watch did not pass)")
	}
	evs, err := k.watch.snapshot()
	if err != nil && status.Code(err) != codes.Canceled {
		ok(c, "StreamEvents (the kit's watch)", err)
	}
	if len(evs) == 0 {
		c.Skip("no event arrived while the kit made its calls")
	}
	kinds := map[string]int{}
	byCursor := map[string]*adapterv1.StreamEventsResponse{}
	closed := map[string]bool{}
	var fraudStatus adapterv1.FraudCaseStatus
	for i, ev := range evs {
		kind := eventKind(ev)
		what := fmt.Sprintf("StreamEvents event %d (%s)", i, kind)
		if prev, seen := byCursor[ev.GetCursor()]; seen {
			if !proto.Equal(prev, ev) {
				c.Errorf("%s: carries the cursor of an earlier, different event", what)
			}
			continue // delivered again
		}
		byCursor[ev.GetCursor()] = ev
		kinds[kind]++
		k.check(c, what, ev)
		caseID := ""
		switch e := ev.GetEvent().(type) {
		case *adapterv1.StreamEventsResponse_AgentMessage:
			caseID = e.AgentMessage.GetCaseId()
		case *adapterv1.StreamEventsResponse_AgentJoined:
			caseID = e.AgentJoined.GetCaseId()
		case *adapterv1.StreamEventsResponse_AgentRequestedControl:
			caseID = e.AgentRequestedControl.GetCaseId()
		case *adapterv1.StreamEventsResponse_AgentPassedControl:
			caseID = e.AgentPassedControl.GetCaseId()
		case *adapterv1.StreamEventsResponse_SupportCaseClosed:
			closed[e.SupportCaseClosed.GetCaseId()] = true
		case *adapterv1.StreamEventsResponse_FraudCaseUpdated:
			u := e.FraudCaseUpdated
			if u.GetCaseId() != k.fraudCase || k.fraudCase == "" {
				break
			}
			if u.GetBankConsentId() != k.consentID {
				c.Errorf("%s: the kit's fraud case %q comes under consent %q, not the one ReportFraud filed it under", what, u.GetCaseId(), u.GetBankConsentId())
			}
			if fraudStatus == adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED && u.GetStatus() != fraudStatus {
				c.Errorf("%s: the kit's fraud case moved to %s after RESOLVED, which is final", what, u.GetStatus())
			} else if fraudCaseOrder[u.GetStatus()] < fraudCaseOrder[fraudStatus] {
				c.Errorf("%s: the kit's fraud case moved back from %s to %s", what, fraudStatus, u.GetStatus())
			}
			fraudStatus = u.GetStatus()
		case *adapterv1.StreamEventsResponse_FraudAlert:
			k.checkAlert(c, what, e.FraudAlert)
		}
		if caseID != "" && closed[caseID] {
			c.Errorf("%s: the agent acts on case %q after SupportCaseClosed", what, caseID)
		}
	}
	c.Logf("StreamEvents: checked %d events the kit's calls caused: %v", len(byCursor), kinds)
}

// checkAlert wants an alert under the kit's consent to name an account
// ListAccounts showed and a card ListCards showed.
func (k *kit) checkAlert(c *C, what string, a *adapterv1.FraudAlert) {
	c.Helper()
	if a.GetBankConsentId() != k.consentID {
		return
	}
	if len(k.accounts) > 0 && !slices.ContainsFunc(k.accounts, func(acc *adapterv1.Account) bool { return acc.GetBankAccountId() == a.GetBankAccountId() }) {
		c.Errorf("%s: alert names account %q, which ListAccounts did not show under the consent", what, a.GetBankAccountId())
	}
	if id := a.GetBankCardId(); id != "" && len(k.cards) > 0 && !slices.ContainsFunc(k.cards, func(c *adapterv1.Card) bool { return c.GetBankCardId() == id }) {
		c.Errorf("%s: alert names card %q, which ListCards did not show under the consent", what, id)
	}
}
