package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

// conversationOf reads a conversation's name. Validation has checked its
// shape, and the kit that it names the caller; a name that still does
// not parse names nothing.
func conversationOf(name string) (app.ConversationKey, error) {
	r, err := names.ParseBankResource(name, names.Conversations)
	if err != nil {
		return app.ConversationKey{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such conversation")
	}
	return app.ConversationKey{User: r.User, BankID: r.BankID, ID: r.ID}, nil
}

// CreateConversation opens a conversation with the bank conversation.bank_id names.
func (s *Server) CreateConversation(ctx context.Context, req *supportv1.CreateConversationRequest) (*supportv1.CreateConversationResponse, error) {
	// The body is the parent and the bank: output-only fields are ignored,
	// so they do not make a retry a different request.
	sum := sha256.Sum256([]byte(req.GetParent() + "\x00" + req.GetConversation().GetBankId()))
	c, err := s.app.CreateConversation(ctx, grant(ctx), app.CreateInput{
		BankID: req.GetConversation().GetBankId(), IdempotencyKey: req.GetIdempotencyKey(), RequestHash: hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return nil, err
	}
	return &supportv1.CreateConversationResponse{Conversation: supportpb.ConversationProto(c)}, nil
}

// GetConversation returns one conversation.
func (s *Server) GetConversation(ctx context.Context, req *supportv1.GetConversationRequest) (*supportv1.GetConversationResponse, error) {
	k, err := conversationOf(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.app.GetConversation(ctx, grant(ctx), k)
	if err != nil {
		return nil, err
	}
	return &supportv1.GetConversationResponse{Conversation: supportpb.ConversationProto(c)}, nil
}

// ListConversations returns one page of the user's conversations.
func (s *Server) ListConversations(ctx context.Context, req *supportv1.ListConversationsRequest) (*supportv1.ListConversationsResponse, error) {
	var f app.ConversationFilter
	switch req.GetState() {
	case supportv1.ConversationState_CONVERSATION_STATE_OPEN:
		f.State = app.StateOpen
	case supportv1.ConversationState_CONVERSATION_STATE_CLOSED:
		f.State = app.StateClosed
	}
	cs, next, err := s.app.ListConversations(ctx, grant(ctx), f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &supportv1.ListConversationsResponse{NextPageToken: next}
	for _, c := range cs {
		out.Conversations = append(out.Conversations, supportpb.ConversationProto(c))
	}
	return out, nil
}

// SendMessage adds the user's message to a conversation.
func (s *Server) SendMessage(ctx context.Context, req *supportv1.SendMessageRequest) (*supportv1.SendMessageResponse, error) {
	k, err := conversationOf(req.GetParent())
	if err != nil {
		return nil, err
	}
	m := req.GetMessage()
	sent, err := s.app.SendMessage(ctx, grant(ctx), k, app.SendInput{
		ClientMessageID: m.GetClientMessageId(), Text: m.GetText(), Postback: m.GetPostback().GetPayload(),
	})
	if err != nil {
		return nil, err
	}
	return &supportv1.SendMessageResponse{Message: supportpb.MessageProto(sent)}, nil
}

// ListMessages returns one page of a conversation's messages, newest
// first.
func (s *Server) ListMessages(ctx context.Context, req *supportv1.ListMessagesRequest) (*supportv1.ListMessagesResponse, error) {
	k, err := conversationOf(req.GetParent())
	if err != nil {
		return nil, err
	}
	ms, next, err := s.app.ListMessages(ctx, grant(ctx), k, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &supportv1.ListMessagesResponse{NextPageToken: next}
	for _, m := range ms {
		out.Messages = append(out.Messages, supportpb.MessageProto(m))
	}
	return out, nil
}

// HandoverConversation hands the conversation to the target: the bank's
// agent (the default) or the assistant.
func (s *Server) HandoverConversation(ctx context.Context, req *supportv1.HandoverConversationRequest) (*supportv1.HandoverConversationResponse, error) {
	k, err := conversationOf(req.GetName())
	if err != nil {
		return nil, err
	}
	target := app.ControllerBankAgent
	if req.GetTarget() == supportv1.Controller_CONTROLLER_ASSISTANT {
		target = app.ControllerAssistant
	}
	c, err := s.app.Handover(ctx, grant(ctx), k, target, req.GetMetadata())
	if err != nil {
		return nil, err
	}
	return &supportv1.HandoverConversationResponse{Conversation: supportpb.ConversationProto(c)}, nil
}

// CloseConversation closes a conversation.
func (s *Server) CloseConversation(ctx context.Context, req *supportv1.CloseConversationRequest) (*supportv1.CloseConversationResponse, error) {
	k, err := conversationOf(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.app.CloseConversation(ctx, grant(ctx), k)
	if err != nil {
		return nil, err
	}
	return &supportv1.CloseConversationResponse{Conversation: supportpb.ConversationProto(c)}, nil
}
