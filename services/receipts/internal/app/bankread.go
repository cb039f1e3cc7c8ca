package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Reading an account's transactions syncs from an empty cursor, bounded so
// one job cannot hold a bank for long. Nothing read is kept beyond the job.
const (
	syncPageSize = 500
	maxSyncPages = 20 // 10,000 transactions per account
)

// bankTx is a transaction with the account it is on.
type bankTx struct {
	Account names.Account
	Transaction
}

// Name is the transaction's resource name.
func (t bankTx) Name() string { return t.Account.Transaction(t.ID).String() }

// errBankSkipped wraps a bank answer that means the bank holds nothing to
// read under this link (no such capability, or the bank no longer honours
// the consent): the link is passed over rather than retried.
var errBankSkipped = errors.New("bank passed over")

// readTransactions reads the user's transactions at the bank of link, in
// full (bounded), after recording the read in the user's access log. A
// pending transaction that a booked one replaced is left out, so one
// purchase is one transaction.
func (s *Service) readTransactions(ctx context.Context, user string, link CoveringLink, method string) ([]bankTx, error) {
	if err := s.record(ctx, user, s.cfg.ClientID, method, link.Link, commonv1.Scope_SCOPE_TRANSACTIONS); err != nil {
		return nil, fmt.Errorf("record the read of bank %s: %w", link.BankID, err)
	}
	at := BankAccess{BankID: link.BankID, BankConsentID: link.BankConsentID, Purpose: commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}
	accounts, err := s.banks.ListAccounts(ctx, at)
	if err != nil {
		return nil, bankError(err)
	}
	var out []bankTx
	for _, acct := range accounts {
		name := names.Account{User: user, BankID: link.BankID, BankAccountID: acct}
		byID := map[string]Transaction{}
		cursor := ""
		for range maxSyncPages {
			ch, err := s.banks.SyncTransactions(ctx, at, acct, cursor, syncPageSize)
			if err != nil {
				return nil, bankError(err)
			}
			for _, t := range append(ch.Added, ch.Modified...) {
				byID[t.ID] = t
			}
			for _, id := range ch.Removed {
				delete(byID, id)
			}
			cursor = ch.NextCursor
			if !ch.HasMore {
				break
			}
		}
		for _, t := range byID {
			if t.Booked && t.PendingID != "" {
				delete(byID, t.PendingID) // the booked one is the purchase now
			}
		}
		for _, t := range byID {
			out = append(out, bankTx{Account: name, Transaction: t})
		}
	}
	slices.SortFunc(out, func(a, b bankTx) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// bankError marks the bank answers that mean there is nothing to read at
// the bank under this link.
func bankError(err error) error {
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED,
		commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED:
		return fmt.Errorf("%w: %w", errBankSkipped, err)
	}
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %w", errBankSkipped, err)
	}
	return err
}

// unsupported reports an adapter that does not implement a capability.
func unsupported(err error) bool {
	return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED) || status.Code(err) == codes.Unimplemented
}

// logBankFailure logs a failed bank read with what on-call may see: the
// bank, the reason and the job. Never the user, amounts or names.
func (s *Service) logBankFailure(ctx context.Context, msg, bankID string, err error) {
	s.log.WarnContext(ctx, msg, slog.String(telemetry.AttrBankID, bankID),
		slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))), slog.String("error", err.Error()))
}
