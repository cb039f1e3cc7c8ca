package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// drain raises a fraud alert for login as a marker and returns every event
// the stream delivered before the marker arrived, the marker left out:
// everything that happened since the last read.
func drain(t *testing.T, bank *sandbox.Bank, login string, events <-chan *adapterv1.StreamEventsResponse) []*adapterv1.StreamEventsResponse {
	t.Helper()
	ids, err := bank.TriggerFraudAlert(login)
	if err != nil {
		t.Fatal(err)
	}
	var got []*adapterv1.StreamEventsResponse
	for len(ids) > 0 {
		ev := next(t, events)
		if i := slices.Index(ids, ev.GetFraudAlert().GetAlertId()); i >= 0 {
			ids = slices.Delete(ids, i, i+1)
			continue
		}
		got = append(got, ev)
	}
	return got
}

// describe names a support event as tests compare it: its kind and, for
// control events, its metadata.
func describe(ev *adapterv1.StreamEventsResponse) string {
	switch e := ev.GetEvent().(type) {
	case *adapterv1.StreamEventsResponse_AgentJoined:
		return "joined:" + e.AgentJoined.GetAgentDisplayName()
	case *adapterv1.StreamEventsResponse_AgentMessage:
		return "message"
	case *adapterv1.StreamEventsResponse_AgentPassedControl:
		return "passed:" + e.AgentPassedControl.GetMetadata()
	case *adapterv1.StreamEventsResponse_AgentRequestedControl:
		return "requested:" + e.AgentRequestedControl.GetMetadata()
	case *adapterv1.StreamEventsResponse_SupportCaseClosed:
		return "closed"
	case *adapterv1.StreamEventsResponse_FraudAlert:
		return "fraud_alert"
	case *adapterv1.StreamEventsResponse_FraudCaseUpdated:
		return "fraud_case:" + strings.TrimPrefix(e.FraudCaseUpdated.GetStatus().String(), "FRAUD_CASE_STATUS_")
	}
	return "none"
}

// caseOf is the support case an event is about; empty for other events.
func caseOf(ev *adapterv1.StreamEventsResponse) string {
	switch e := ev.GetEvent().(type) {
	case *adapterv1.StreamEventsResponse_AgentJoined:
		return e.AgentJoined.GetCaseId()
	case *adapterv1.StreamEventsResponse_AgentMessage:
		return e.AgentMessage.GetCaseId()
	case *adapterv1.StreamEventsResponse_AgentPassedControl:
		return e.AgentPassedControl.GetCaseId()
	case *adapterv1.StreamEventsResponse_AgentRequestedControl:
		return e.AgentRequestedControl.GetCaseId()
	case *adapterv1.StreamEventsResponse_SupportCaseClosed:
		return e.SupportCaseClosed.GetCaseId()
	}
	return ""
}

// supportCase is a case opened on a fresh sandbox for bob, with the event
// stream read past the handoff's events.
type supportCase struct {
	t       *testing.T
	bank    *sandbox.Bank
	c       adapterv1.BankAdapterServiceClient
	consent string
	id      string
	events  <-chan *adapterv1.StreamEventsResponse
	keys    int
}

func openCase(t *testing.T) *supportCase {
	t.Helper()
	bank := newBank(t, sandbox.Options{})
	c := inProcess(t, bank, nil)
	sc := &supportCase{t: t, bank: bank, c: c, consent: link(t, c, "bob")}
	_, sc.events = openEvents(t, c, bank, "bob")
	opened, err := c.StartSupportHandoff(t.Context(), &adapterv1.StartSupportHandoffRequest{
		BankConsentId: sc.consent, ConversationReference: "conv-1", Reason: "The user asked for an agent.", IdempotencyKey: "handoff-0001",
	})
	if err != nil {
		t.Fatal(err)
	}
	sc.id = opened.GetCaseId()
	if got, want := sc.read(), []string{"joined:" + sandbox.AgentName, "message"}; !slices.Equal(got, want) {
		t.Fatalf("after the handoff: events %v, want %v", got, want)
	}
	return sc
}

// read returns what happened on the case since the last read.
func (sc *supportCase) read() []string {
	sc.t.Helper()
	var got []string
	for _, ev := range drain(sc.t, sc.bank, "bob", sc.events) {
		if ev.GetFraudAlert() != nil {
			continue // one openEvents raised after the first
		}
		if caseOf(ev) != sc.id {
			sc.t.Errorf("event %v is not about case %s", ev, sc.id)
			continue
		}
		if m := ev.GetAgentMessage(); m != nil && (m.GetAgentDisplayName() != sandbox.AgentName || m.GetMessageId() == "") {
			sc.t.Errorf("agent message %v", m)
		}
		got = append(got, describe(ev))
	}
	return got
}

func (sc *supportCase) key() string {
	sc.keys++
	return fmt.Sprintf("key-%08d", sc.keys)
}

func (sc *supportCase) send(text string) error {
	_, err := sc.c.SendSupportMessage(sc.t.Context(), &adapterv1.SendSupportMessageRequest{
		BankConsentId: sc.consent, CaseId: sc.id, Text: text, ClientMessageId: sc.key(),
	})
	return err
}

func (sc *supportCase) notify(action adapterv1.ThreadControlAction) error {
	_, err := sc.c.NotifyThreadControl(sc.t.Context(), &adapterv1.NotifyThreadControlRequest{
		BankConsentId: sc.consent, CaseId: sc.id, Action: action, IdempotencyKey: sc.key(),
	})
	return err
}

// TestSupportScript follows Anna through the scripted cues and the
// assistant's thread control actions, as bankbridge sees them on the
// event stream.
func TestSupportScript(t *testing.T) {
	t.Parallel()
	const (
		request = adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST
		take    = adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE
		pass    = adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_PASS
		closeIt = adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_CLOSE
	)
	// A step is a user message, or else an action of the assistant's.
	type step struct {
		send   string
		notify adapterv1.ThreadControlAction
	}
	tests := []struct {
		name        string
		steps       []step
		want        []string
		wantActions []adapterv1.ThreadControlAction
		wantClosed  bool
	}{
		{
			name:  "Anna answers every message",
			steps: []step{{send: "My card was charged twice."}, {send: "It was on Monday."}},
			want:  []string{"message", "message"},
		},
		{
			name:  "the pass-back cue: she answers and passes control back; the case stays open",
			steps: []step{{send: "  That's all, THANKS "}, {send: "Hello?"}},
			want:  []string{"message", "passed:" + sandbox.PassBackMetadata},
		},
		{
			name:       "bye closes the case",
			steps:      []step{{send: "Bye"}},
			want:       []string{"closed"},
			wantClosed: true,
		},
		{
			name:        "REQUEST: she passes control back at once",
			steps:       []step{{notify: request}, {send: "Are you there?"}},
			want:        []string{"passed:" + sandbox.AssistantAskedMetadata},
			wantActions: []adapterv1.ThreadControlAction{request},
		},
		{
			name:        "TAKE: she stops answering until PASS, then greets again",
			steps:       []step{{notify: take}, {send: "Anyone?"}, {notify: pass}, {send: "My card was charged twice."}},
			want:        []string{"message", "message"},
			wantActions: []adapterv1.ThreadControlAction{take, pass},
		},
		{
			name:        "PASS after the pass-back: she greets again",
			steps:       []step{{send: sandbox.PassBackCue}, {notify: pass}},
			want:        []string{"message", "passed:" + sandbox.PassBackMetadata, "message"},
			wantActions: []adapterv1.ThreadControlAction{pass},
		},
		{
			name:        "REQUEST while the assistant holds control changes nothing",
			steps:       []step{{notify: take}, {notify: request}},
			wantActions: []adapterv1.ThreadControlAction{take, request},
		},
		{
			name:        "CLOSE closes the case, with no event",
			steps:       []step{{notify: closeIt}},
			wantActions: []adapterv1.ThreadControlAction{closeIt},
			wantClosed:  true,
		},
		{
			name:        "actions on a closed case are recorded and do nothing",
			steps:       []step{{send: sandbox.CloseCaseText}, {notify: pass}, {notify: closeIt}},
			want:        []string{"closed"},
			wantActions: []adapterv1.ThreadControlAction{pass, closeIt},
			wantClosed:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := openCase(t)
			for _, s := range tt.steps {
				var err error
				if s.send != "" {
					err = sc.send(s.send)
				} else {
					err = sc.notify(s.notify)
				}
				if err != nil {
					t.Fatalf("step %+v: %v", s, err)
				}
			}
			if got := sc.read(); !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			if got := sc.bank.CaseActions(sc.id); !slices.Equal(got, tt.wantActions) {
				t.Errorf("CaseActions %v, want %v", got, tt.wantActions)
			}
			err := sc.send("One more thing.")
			if tt.wantClosed {
				wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
			} else if err != nil {
				t.Errorf("a message on the open case: %v", err)
			}
		})
	}
}

// TestNotifyThreadControlRefusals: a retry acts once, a key reused for
// another action, a case the consent does not have and a consent without
// SCOPE_SUPPORT are refused.
func TestNotifyThreadControlRefusals(t *testing.T) {
	t.Parallel()
	sc := openCase(t)
	request := &adapterv1.NotifyThreadControlRequest{
		BankConsentId: sc.consent, CaseId: sc.id, Action: adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST,
		Metadata: "the user asked the assistant", IdempotencyKey: "control-0001",
	}
	for range 2 {
		if _, err := sc.c.NotifyThreadControl(t.Context(), request); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sc.read(), []string{"passed:" + sandbox.AssistantAskedMetadata}; !slices.Equal(got, want) {
		t.Errorf("a retried REQUEST: events %v, want %v", got, want)
	}
	if got := sc.bank.CaseActions(sc.id); len(got) != 1 {
		t.Errorf("a retried REQUEST: CaseActions %v, want it once", got)
	}
	if got := sc.bank.CaseActions("case-unknown"); got != nil {
		t.Errorf("CaseActions of an unknown case: %v", got)
	}

	otherConsent := link(t, sc.c, "bob")
	supportless := linkFor(t, sc.c, "bob", commonv1.Scope_SCOPE_ACCOUNTS)
	tests := []struct {
		name   string
		change func(*adapterv1.NotifyThreadControlRequest)
		want   commonv1.ErrorReason
	}{
		{name: "same key, another action", want: commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
			change: func(r *adapterv1.NotifyThreadControlRequest) {
				r.Action = adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_PASS
			}},
		{name: "unknown case", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			change: func(r *adapterv1.NotifyThreadControlRequest) {
				r.CaseId, r.IdempotencyKey = "case-unknown", "control-0002"
			}},
		{name: "another consent's case", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			change: func(r *adapterv1.NotifyThreadControlRequest) {
				r.BankConsentId, r.IdempotencyKey = otherConsent, "control-0003"
			}},
		{name: "consent without support", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED,
			change: func(r *adapterv1.NotifyThreadControlRequest) {
				r.BankConsentId, r.IdempotencyKey = supportless, "control-0004"
			}},
		{name: "unknown consent", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
			change: func(r *adapterv1.NotifyThreadControlRequest) {
				r.BankConsentId, r.IdempotencyKey = "cns-unknown", "control-0005"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := proto.CloneOf(request)
			tt.change(req)
			_, err := sc.c.NotifyThreadControl(t.Context(), req)
			wantReason(t, err, tt.want)
		})
	}
	if got := sc.bank.CaseActions(sc.id); len(got) != 1 {
		t.Errorf("after the refusals: CaseActions %v, want the one REQUEST", got)
	}
}

// TestAdminRequestControl: the admin endpoint makes Anna ask for control,
// only while the assistant holds it and the case is open.
func TestAdminRequestControl(t *testing.T) {
	t.Parallel()
	sc := openCase(t)
	srv := httptest.NewServer(sc.bank.AdminHandler())
	defer srv.Close()
	post := func(caseID string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+"/admin/support/request-control?case="+url.QueryEscape(caseID), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		if resp.StatusCode == http.StatusOK && body["case_id"] != caseID {
			t.Errorf("body %v", body)
		}
		return resp.StatusCode
	}

	tests := []struct {
		name   string
		before func()
		caseID string
		want   int
		events []string
	}{
		{name: "no case", caseID: "", want: http.StatusBadRequest},
		{name: "unknown case", caseID: "case-unknown", want: http.StatusNotFound},
		{name: "Anna holds control", caseID: sc.id, want: http.StatusConflict},
		{
			name:   "after she passed control back",
			before: func() { _ = sc.send(sandbox.PassBackCue) },
			caseID: sc.id,
			want:   http.StatusOK,
			events: []string{"message", "passed:" + sandbox.PassBackMetadata, "requested:" + sandbox.RequestControlMetadata},
		},
		{
			name:   "closed case",
			before: func() { _ = sc.send(sandbox.CloseCaseText) },
			caseID: sc.id,
			want:   http.StatusConflict,
			events: []string{"closed"},
		},
	}
	for _, tt := range tests { // in order: each builds on the case's state
		if tt.before != nil {
			tt.before()
		}
		if got := post(tt.caseID); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
		if got := sc.read(); !slices.Equal(got, tt.events) {
			t.Errorf("%s: events %v, want %v", tt.name, got, tt.events)
		}
	}
}

// TestAdminPassControlByUser: the agent hands control back on her own, and
// the support admin endpoints find the customer's open case by login.
func TestAdminPassControlByUser(t *testing.T) {
	t.Parallel()
	sc := openCase(t)
	srv := httptest.NewServer(sc.bank.AdminHandler())
	defer srv.Close()
	post := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		return resp.StatusCode, body["case_id"]
	}

	tests := []struct {
		name   string
		path   string
		want   int
		events []string
	}{
		{name: "neither case nor user", path: "/admin/support/pass-control", want: http.StatusBadRequest},
		{name: "both case and user", path: "/admin/support/pass-control?case=" + url.QueryEscape(sc.id) + "&user=bob", want: http.StatusBadRequest},
		{name: "unknown customer", path: "/admin/support/pass-control?user=nobody", want: http.StatusNotFound},
		{name: "a customer without a case", path: "/admin/support/pass-control?user=alice", want: http.StatusNotFound},
		{name: "Anna hands back", path: "/admin/support/pass-control?user=bob", want: http.StatusOK,
			events: []string{"message", "passed:" + sandbox.AgentDoneMetadata}},
		{name: "the assistant holds control", path: "/admin/support/pass-control?case=" + url.QueryEscape(sc.id), want: http.StatusConflict},
		{name: "Anna asks for control again", path: "/admin/support/request-control?user=bob", want: http.StatusOK,
			events: []string{"requested:" + sandbox.RequestControlMetadata}},
	}
	for _, tt := range tests { // in order: each builds on the case's state
		code, id := post(tt.path)
		if code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.want)
		}
		if code == http.StatusOK && id != sc.id {
			t.Errorf("%s: case %q, want %q", tt.name, id, sc.id)
		}
		if got := sc.read(); !slices.Equal(got, tt.events) {
			t.Errorf("%s: events %v, want %v", tt.name, got, tt.events)
		}
	}
	if err := sc.send(sandbox.CloseCaseText); err != nil {
		t.Fatal(err)
	}
	_ = sc.read()
	if code, _ := post("/admin/support/pass-control?user=bob"); code != http.StatusNotFound {
		t.Errorf("after the case closed, by user: %d, want 404 (no open case)", code)
	}
}
