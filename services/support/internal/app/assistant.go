package app

import (
	"cmp"
	"context"
	"log/slog"
	"slices"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/support/internal/assistant"
)

// How much the assistant reads for one answer.
const (
	// maxAccounts is the most accounts whose balances or transactions
	// one answer reads.
	maxAccounts = 5
	// maxTransactions is the most transactions one answer lists.
	maxTransactions = 5
)

// bankContext is ctx for a call to the conversation's bank: the purpose
// the call serves, and a deadline.
func (s *Service) bankContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, DefaultBankTimeout)
	return adapters.WithPurpose(ctx, commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT), cancel
}

// failure is the assistant's answer to a failed call, logged with the
// bank and the reason only (never a text).
func (s *Service) failure(ctx context.Context, c Conversation, what string, err error) assistant.Reply {
	reason := apierr.Reason(err)
	s.log.WarnContext(ctx, "assistant: "+what+" failed", slog.String(telemetry.AttrBankID, c.BankID),
		slog.String(telemetry.AttrReason, apierr.ReasonString(reason)))
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED:
		return assistant.NotSupported()
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED:
		return assistant.NotShared()
	}
	return assistant.BankUnavailable()
}

// accounts reads up to maxAccounts of the user's accounts at the
// conversation's bank.
func (s *Service) accounts(ctx context.Context, c Conversation) ([]Account, error) {
	accts, err := s.balances.Accounts(ctx, c.User, c.BankID)
	if err != nil {
		return nil, err
	}
	return accts[:min(len(accts), maxAccounts)], nil
}

// balancesReply answers "what's my balance" from the balance service.
func (s *Service) balancesReply(ctx context.Context, c Conversation) assistant.Reply {
	accts, err := s.accounts(ctx, c)
	if err != nil {
		return s.failure(ctx, c, "balances", err)
	}
	out := make([]assistant.AccountBalances, len(accts))
	failed := 0
	for i, a := range accts {
		out[i] = assistant.AccountBalances{DisplayName: a.DisplayName, Last4: a.Last4}
		bals, err := s.balances.Balances(ctx, a.Name)
		if err != nil {
			out[i].Failed = true
			failed++
			continue
		}
		for _, b := range bals {
			out[i].Balances = append(out[i].Balances, assistant.BalanceLine{Type: b.Type, Amount: b.Amount, Display: b.Display})
		}
	}
	if failed > 0 && failed == len(accts) {
		return assistant.BankUnavailable()
	}
	return assistant.Balances(out)
}

// recentTransactions reads the newest transactions of the user's accounts
// at the bank: the first page of each, newest first, at most
// maxTransactions in all.
func (s *Service) recentTransactions(ctx context.Context, c Conversation) ([]Transaction, error) {
	accts, err := s.accounts(ctx, c)
	if err != nil {
		return nil, err
	}
	var all []Transaction
	var firstErr error
	for _, a := range accts {
		txs, err := s.balances.Transactions(ctx, a.Name, maxTransactions)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		all = append(all, txs...)
	}
	if len(all) == 0 && firstErr != nil {
		return nil, firstErr
	}
	slices.SortStableFunc(all, func(a, b Transaction) int { return b.Time.Compare(a.Time) })
	return all[:min(len(all), maxTransactions)], nil
}

// activeCards lists the user's ACTIVE cards at the bank.
func (s *Service) activeCards(ctx context.Context, c Conversation) ([]assistant.Card, error) {
	client, err := s.banks.Client(c.BankID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.bankContext(ctx)
	defer cancel()
	resp, err := client.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: c.BankConsentID})
	if err != nil {
		return nil, err
	}
	var out []assistant.Card
	for _, card := range resp.GetCards() {
		if card.GetState() == adapterv1.CardState_CARD_STATE_ACTIVE {
			out = append(out, assistant.Card{ID: card.GetBankCardId(), AccountID: card.GetBankAccountId(), Last4: card.GetMaskedNumber().GetLast4()})
		}
	}
	return out, nil
}

// blockCard blocks a card as lost, with a key derived from the message
// that confirmed it, so a resend blocks it once.
func (s *Service) blockCard(ctx context.Context, c Conversation, card assistant.Card, clientMessageID string) (assistant.BlockOutcome, error) {
	client, err := s.banks.Client(c.BankID)
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.bankContext(ctx)
	defer cancel()
	resp, err := client.BlockCard(ctx, &adapterv1.BlockCardRequest{
		BankConsentId: c.BankConsentID, BankAccountId: card.AccountID, BankCardId: card.ID,
		Reason:         adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST,
		IdempotencyKey: idempotencyKey("block", c.BankID, c.ID, card.ID, clientMessageID),
	})
	if err != nil {
		return 0, err
	}
	switch resp.GetStatus() {
	case adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED:
		return assistant.BlockDone, nil
	case adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING:
		return assistant.BlockPending, nil
	}
	return assistant.BlockFailed, nil
}

// reportCharge files the fraud report on the charge (category
// UNRECOGNISED_TRANSACTION) through the fraud files' reporter.
func (s *Service) reportCharge(ctx context.Context, c Conversation, charge assistant.Charge, clientMessageID string) error {
	t, err := names.ParseTransaction(charge.Transaction)
	if err != nil || t.Account.User != c.User || t.Account.BankID != c.BankID {
		// The state is the service's own; a name that does not parse is a
		// bug, never the user's doing.
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the offered transaction is not the conversation's")
	}
	return s.reportUnrecognisedCharge(ctx, c, t, idempotencyKey("report", c.BankID, c.ID, charge.Transaction, clientMessageID))
}
