// Package supportpb is the one translation between the support domain
// (app) and the contract's messages (bankbridge.support.v1): transport
// speaks it on the wire, and the store writes the events' payloads with
// it. Enum values map by name: the domain's are the contract's without
// their prefix. The fraud files' payloads and messages are in fraud*.go.
package supportpb

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// ConversationProto is c as the contract's Conversation.
func ConversationProto(c app.Conversation) *supportv1.Conversation {
	out := &supportv1.Conversation{
		Name:             c.Name(),
		BankId:           c.BankID,
		State:            supportv1.ConversationState(supportv1.ConversationState_value["CONVERSATION_STATE_"+string(c.State)]),
		Controller:       Controller(c.Controller),
		AgentDisplayName: c.AgentDisplayName,
		CreateTime:       timestamppb.New(c.CreateTime),
		UpdateTime:       timestamppb.New(c.UpdateTime),
	}
	if p := c.Pending; p != nil {
		out.PendingControlRequest = &supportv1.PendingControlRequest{
			RequestedBy: Controller(p.RequestedBy), Metadata: p.Metadata, RequestTime: timestamppb.New(p.Time),
		}
	}
	return out
}

// Controller is c as the contract's Controller.
func Controller(c app.Controller) supportv1.Controller {
	return supportv1.Controller(supportv1.Controller_value["CONTROLLER_"+string(c)])
}

// Role is r as the contract's ParticipantRole.
func Role(r app.Role) supportv1.ParticipantRole {
	return supportv1.ParticipantRole(supportv1.ParticipantRole_value["PARTICIPANT_ROLE_"+string(r)])
}

// MessageProto is m as the contract's Message.
func MessageProto(m app.Message) *supportv1.Message {
	out := &supportv1.Message{
		Name:              m.Name(),
		SenderRole:        Role(m.Role),
		SenderDisplayName: m.SenderDisplayName,
		Text:              m.Text,
		ClientMessageId:   m.ClientMessageID,
		CreateTime:        timestamppb.New(m.CreateTime),
	}
	if m.Postback != nil {
		out.Postback = &supportv1.Postback{Payload: m.Postback.Payload, Title: m.Postback.Title}
	}
	for _, q := range m.QuickReplies {
		out.QuickReplies = append(out.QuickReplies, &supportv1.QuickReply{Title: q.Title, Payload: q.Payload})
	}
	return out
}

// EventProto is a conversation event as the stream sends it, without its
// cursor; ok is false for an event of another payload.
func EventProto(e app.Event) (*supportv1.StreamConversationResponse, bool) {
	out := &supportv1.StreamConversationResponse{EventTime: timestamppb.New(e.Time)}
	switch p := e.Payload.(type) {
	case app.MessageAdded:
		out.Event = &supportv1.StreamConversationResponse_MessageAdded{MessageAdded: MessageProto(p.Message)}
	case app.ControlChanged:
		out.Event = &supportv1.StreamConversationResponse_ControlChanged{ControlChanged: &supportv1.ControlChanged{
			Conversation: ConversationProto(p.Conversation),
			Action:       supportv1.ThreadControlAction(supportv1.ThreadControlAction_value["THREAD_CONTROL_ACTION_"+string(p.Action)]),
			Actor:        Role(p.Actor),
			Metadata:     p.Metadata,
		}}
	case app.ConversationClosed:
		out.Event = &supportv1.StreamConversationResponse_ConversationClosed{ConversationClosed: &supportv1.ConversationClosed{
			Conversation: ConversationProto(p.Conversation), ClosedBy: Role(p.ClosedBy),
		}}
	default:
		return nil, false
	}
	return out, true
}

// EventData encodes an event's payload for the bus: a conversation event
// as the protojson of the StreamConversationResponse it streams as (its
// cursor empty), the outbound work for the banks as JSON, and the fraud
// files' payloads as fraudEventData says.
func EventData(e app.Event) ([]byte, error) {
	if msg, ok := EventProto(e); ok {
		b, err := protojson.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		return b, nil
	}
	switch p := e.Payload.(type) {
	case app.BankMessage, app.BankThreadControl:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		return b, nil
	}
	if b, ok, err := fraudEventData(e); ok || err != nil {
		return b, err
	}
	return nil, fmt.Errorf("encode event %s: unknown payload %T", e.Type, e.Payload)
}

// StreamEvent decodes a conversation event's data.
func StreamEvent(data []byte) (*supportv1.StreamConversationResponse, error) {
	var out supportv1.StreamConversationResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
