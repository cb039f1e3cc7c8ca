package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// idleBatch is how many idle conversations one sweep takes back at most.
const idleBatch = 100

// parkedTTL is how long a bank's event for a case no conversation names
// is kept for the handoff that opened the case: far longer than a
// handoff's transaction takes.
const parkedTTL = 10 * time.Minute

// Sweep is the periodic work: the assistant takes control back from
// agents who left a user message unanswered longer than the idle timeout
// (TAKE), and messages past their retention are deleted, with old
// CreateConversation keys, and the bank's events of cases no handoff
// claimed. It returns how many things it did.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	taken, err := s.TakeIdle(ctx)
	if err != nil {
		return taken, err
	}
	now := s.now()
	deleted, err := s.store.DeleteExpired(ctx, now.Add(-s.cfg.MessageRetention), now.Add(-s.cfg.IdempotencyTTL))
	if err != nil {
		return taken, err
	}
	parked, err := s.store.DeleteParkedBefore(ctx, now.Add(-parkedTTL))
	return taken + deleted + parked, err
}

// TakeIdle takes control back from idle agents: controller ASSISTANT,
// ControlChanged(TAKE), NotifyThreadControl(TAKE) through the outbox, and
// the assistant's message.
func (s *Service) TakeIdle(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.cfg.AgentIdleTimeout)
	keys, err := s.store.IdleConversations(ctx, cutoff, idleBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		took, err := retry(func() (bool, error) { return s.take(ctx, k, cutoff) })
		if err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			s.log.WarnContext(ctx, "idle agent's conversation not taken back; next sweep", slog.String(telemetry.AttrBankID, k.BankID), slog.String("error", err.Error()))
			continue
		}
		if took {
			n++
		}
	}
	return n, nil
}

// take takes one conversation back, when it is still the agent's and
// still idle.
func (s *Service) take(ctx context.Context, k ConversationKey, cutoff time.Time) (bool, error) {
	took := false
	// A run after one that committed finds it the assistant's already.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		c, err := tx.LockConversation(ctx, k)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.State != StateOpen || c.Controller != ControllerBankAgent || c.AwaitingAgentSince.IsZero() || !c.AwaitingAgentSince.Before(cutoff) {
			return nil
		}
		ch := begin(tx, c, s.stamp())
		ch.c.Controller = ControllerAssistant
		ch.c.Pending = nil
		ch.c.AgentDisplayName = ""
		ch.c.AwaitingAgentSince = time.Time{}
		ch.c.Assistant = assistant.State{}
		ch.control(ActionTake, RoleAssistant, reasonIdle)
		ch.notify(ActionTake, reasonIdle)
		if _, err := ch.say(ctx, assistant.TookOver()); err != nil {
			return err
		}
		took = true
		return ch.commit(ctx)
	})
	return took, err
}
