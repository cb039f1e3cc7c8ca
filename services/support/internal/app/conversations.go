package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// The lists the page tokens name.
const (
	listConversations = "bankbridge.support.v1.SupportService/ListConversations"
	listMessages      = "bankbridge.support.v1.SupportService/ListMessages"
)

// CreateInput is a CreateConversation request.
type CreateInput struct {
	BankID         string
	IdempotencyKey string
	// RequestHash identifies the request's content: a retry with the same
	// key must have the same.
	RequestHash string
}

// errNotFound is the contract's NOT_FOUND for a conversation.
func errNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such conversation")
}

// errClosed is the contract's FAILED_PRECONDITION for a closed
// conversation.
func errClosed() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONVERSATION_CLOSED, "the conversation is closed")
}

// notFound maps the store's ErrNotFound to the contract's NOT_FOUND.
func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return errNotFound()
	}
	return err
}

// idempotencyKey derives a key for a bank call from what identifies the
// operation, so a retry of the operation sends the same key.
func idempotencyKey(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:20])
}

// CreateConversation opens a conversation with the grant's bank: OPEN,
// the assistant in control, its greeting the first message.
func (s *Service) CreateConversation(ctx context.Context, g Grant, in CreateInput) (Conversation, error) {
	if _, ok := s.banks.Bank(in.BankID); !ok {
		return Conversation{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank with this bank_id is configured")
	}
	if g.BankID != in.BankID || g.BankConsentID == "" {
		// The kit decides consent at the bank the request names; never
		// open a conversation under another bank's consent.
		return Conversation{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent at this bank covers support")
	}
	return retry(func() (Conversation, error) {
		if c, ok, err := s.recallCreate(ctx, g, in); ok || err != nil {
			return c, err
		}
		now := s.stamp()
		c := Conversation{
			ConversationKey: ConversationKey{User: g.User, BankID: in.BankID, ID: newID()},
			Client:          g.Client, Link: g.Link, BankConsentID: g.BankConsentID,
			State: StateOpen, Controller: ControllerAssistant,
			CreateTime: now, UpdateTime: now,
		}
		// Keyed: a run after one that committed conflicts on the key and
		// rolls back, and the retry recalls the first conversation.
		err := s.store.IdempotentTx(ctx, func(tx Tx) error {
			if err := tx.InsertConversation(ctx, c); err != nil {
				return err
			}
			ch := begin(tx, c, now)
			if _, err := ch.say(ctx, assistant.Greeting()); err != nil {
				return err
			}
			if err := tx.Remember(ctx, IdempotencyKey{
				User: g.User, Client: g.Client, Key: in.IdempotencyKey, RequestHash: in.RequestHash,
				Conversation: c.ConversationKey, CreateTime: now,
			}); err != nil {
				return err
			}
			c = ch.c
			return ch.commit(ctx)
		})
		return c, err
	})
}

// recallCreate answers a retried CreateConversation from its key: ok is
// true when the key was used.
func (s *Service) recallCreate(ctx context.Context, g Grant, in CreateInput) (Conversation, bool, error) {
	k, err := s.store.Recall(ctx, g.User, g.Client, in.IdempotencyKey)
	switch {
	case errors.Is(err, ErrNotFound):
		return Conversation{}, false, nil
	case err != nil:
		return Conversation{}, false, err
	case k.RequestHash != in.RequestHash:
		return Conversation{}, true, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
			"idempotency_key was used before with a different request")
	}
	c, err := s.store.Conversation(ctx, k.Conversation)
	return c, true, notFound(err)
}

// GetConversation reads one of the user's conversations.
func (s *Service) GetConversation(ctx context.Context, g Grant, k ConversationKey) (Conversation, error) {
	if k.User != g.User {
		return Conversation{}, errNotFound()
	}
	c, err := s.store.Conversation(ctx, k)
	return c, notFound(err)
}

// ListConversations reads one page of the user's conversations, most
// recently updated first, leaving out those at banks where no consent of
// the user covers support any longer.
func (s *Service) ListConversations(ctx context.Context, g Grant, f ConversationFilter, pageSize int, token string) ([]Conversation, string, error) {
	links, err := s.consent.CoveringLinks(ctx, g.User, commonv1.Scope_SCOPE_SUPPORT, commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT)
	if err != nil {
		return nil, "", err
	}
	covered := map[string]bool{}
	for _, l := range links {
		covered[l.BankID] = true
	}
	list := pagetoken.List{Method: listConversations, Parent: names.User(g.User), Filters: []string{string(f.State)}}
	page, next, err := pagetoken.ReadPage(s.pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]Conversation, error) {
			return s.store.ListConversations(ctx, g.User, f, after, limit)
		},
		func(c Conversation) pagetoken.Position {
			return pagetoken.Position{Time: c.UpdateTime, ID: c.BankID + names.BankSeparator + c.ID}
		})
	if err != nil {
		return nil, "", err
	}
	out := page[:0]
	for _, c := range page {
		if covered[c.BankID] {
			out = append(out, c)
		}
	}
	return out, next, nil
}

// ListMessages reads one page of a conversation's messages, newest first.
func (s *Service) ListMessages(ctx context.Context, g Grant, k ConversationKey, pageSize int, token string) ([]Message, string, error) {
	if _, err := s.GetConversation(ctx, g, k); err != nil {
		return nil, "", err
	}
	list := pagetoken.List{Method: listMessages, Parent: k.Name()}
	return pagetoken.ReadPage(s.pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]Message, error) {
			return s.store.ListMessages(ctx, k, after, limit)
		},
		func(m Message) pagetoken.Position { return pagetoken.Position{Seq: m.Seq} })
}

// CloseConversation closes a conversation for the user: a pending control
// request is dropped, the bank's case (if any) is told to close through
// the outbox, and the stream gets conversation_closed. Closing a closed
// conversation changes nothing.
func (s *Service) CloseConversation(ctx context.Context, g Grant, k ConversationKey) (Conversation, error) {
	if k.User != g.User {
		return Conversation{}, errNotFound()
	}
	return retry(func() (Conversation, error) {
		var out Conversation
		// A run after one that committed finds it closed.
		err := s.store.IdempotentTx(ctx, func(tx Tx) error {
			c, err := tx.LockConversation(ctx, k)
			if err != nil {
				return notFound(err)
			}
			if c.State == StateClosed {
				out = c
				return nil
			}
			ch := begin(tx, c, s.stamp())
			ch.close(RoleUser)
			out = ch.c
			return ch.commit(ctx)
		})
		return out, err
	})
}

// close closes the conversation in ch, closed by by. The bank's case is
// told to close unless the bank closed it.
func (ch *change) close(by Role) {
	ch.c.State = StateClosed
	ch.c.Pending = nil
	ch.c.AwaitingAgentSince = time.Time{}
	ch.c.Assistant = assistant.State{}
	if by != RoleBankAgent {
		ch.notify(ActionClose, "")
	}
	ch.closed(by)
}
