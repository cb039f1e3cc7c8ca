package app

import (
	"context"
	"errors"
	"strconv"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// listFraudReports is the list the fraud reports' page tokens name.
const listFraudReports = "bankbridge.support.v1.SupportService/ListFraudReports"

// FraudReportInput is a fraud report to file.
type FraudReportInput struct {
	// Account is the account concerned, the user's, at the grant's bank.
	Account names.Account
	// TransactionID is the bank's id of the transaction concerned, in
	// Account; "" for none (required for FraudUnrecognisedTransaction).
	TransactionID string
	Category      FraudCategory
	// Description is the user's account of what happened, at most 2000
	// characters (required for FraudOther). Never logged.
	Description string
	// BlockCard asks the bank to block CardID at once, or every card of
	// Account when CardID is "".
	BlockCard bool
	CardID    string
	// IdempotencyKey makes retries safe: the same key with the same
	// report returns the first report; with another, it fails.
	IdempotencyKey string
}

// requestHash fingerprints the report, for its idempotency key.
func (in FraudReportInput) requestHash() string {
	return idempotencyKey("fraud_report", in.Account.String(), in.TransactionID, string(in.Category), in.Description,
		strconv.FormatBool(in.BlockCard), in.CardID)
}

// errReportNotFound is the contract's NOT_FOUND for a fraud report.
func errReportNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such fraud report")
}

// CreateFraudReport files a fraud report on one of the user's accounts at
// the grant's bank: recorded SUBMITTING, with the work of delivering it to
// the bank written to the outbox in the same transaction, so a bank that
// is briefly down does not lose it (the fraud report worker delivers it,
// see RunFraudWorkers). A retry with the same idempotency key and report
// returns the report as it now is; with another report it fails with
// ALREADY_EXISTS (IDEMPOTENCY_KEY_REUSED).
//
// The assistant files its "not me" reports through it too (see
// reportUnrecognisedCharge), with the conversation's consent as the
// grant.
func (s *Service) CreateFraudReport(ctx context.Context, g Grant, in FraudReportInput) (FraudReport, error) {
	if err := checkReportInput(g, in); err != nil {
		return FraudReport{}, err
	}
	hash := in.requestHash()
	return retry(func() (FraudReport, error) {
		if r, ok, err := s.recallReport(ctx, g, in.IdempotencyKey, hash); ok || err != nil {
			return r, err
		}
		now := s.stamp()
		r := FraudReport{
			BankKey: BankKey{User: g.User, BankID: g.BankID, ID: newID()},
			Client:  g.Client, Link: g.Link, BankConsentID: g.BankConsentID,
			AccountID: in.Account.BankAccountID, TransactionID: in.TransactionID, Category: in.Category,
			Description: in.Description, BlockCard: in.BlockCard, Status: FraudSubmitting,
			CardBlockStatus: CardBlockNotRequested, CreateTime: now, UpdateTime: now,
		}
		if in.BlockCard {
			r.CardID, r.CardBlockStatus = in.CardID, CardBlockPending
		}
		// Keyed: a run after one that committed conflicts on the key and
		// rolls back, and the retry recalls the first report.
		err := s.store.IdempotentTx(ctx, func(tx Tx) error {
			if err := tx.InsertFraudReport(ctx, r); err != nil {
				return err
			}
			if err := tx.RememberFraudReport(ctx, FraudReportKey{
				User: g.User, Client: g.Client, Key: in.IdempotencyKey, RequestHash: hash, Report: r.BankKey, CreateTime: now,
			}); err != nil {
				return err
			}
			return tx.AddEvent(ctx, Event{
				ID: newEventID(), Type: TypeFraudReportFiled, User: r.User, Resource: r.Name(), Time: now,
				Payload: FraudReportFiled{Report: r.BankKey},
			})
		})
		return r, err
	})
}

// checkReportInput holds a report to what the grant allows: the user's
// own account, at the bank whose consent the kit checked.
func checkReportInput(g Grant, in FraudReportInput) error {
	switch {
	case in.Account.User != g.User:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: the account must be the user's own",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "fraud_report.account", Description: "must be the user's own", Reason: "fraud_report.account_same_user"}))
	case g.BankConsentID == "" || in.Account.BankID != g.BankID:
		// The kit decides consent at the bank the account names; never
		// file a report under another bank's consent.
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent at the account's bank covers support")
	case !in.Category.defined():
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: the category is not one of the contract's",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "fraud_report.category", Description: "not a fraud category", Reason: "enum.defined_only"}))
	case in.Category == FraudUnrecognisedTransaction && in.TransactionID == "":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: an unrecognised transaction report names the transaction",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "fraud_report.transaction", Description: "required for FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION", Reason: "fraud_report.transaction_required_for_unrecognised"}))
	case in.CardID != "" && !in.BlockCard:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: a card is named only to block it",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "fraud_report.card", Description: "set only with block_card", Reason: "fraud_report.card_needs_block_card"}))
	}
	return nil
}

// defined tells whether c is one of the contract's categories.
func (c FraudCategory) defined() bool {
	switch c {
	case FraudUnrecognisedTransaction, FraudCardLost, FraudCardStolen, FraudAccountTakeover, FraudScam, FraudPhishing, FraudOther:
		return true
	}
	return false
}

// recallReport answers a retried CreateFraudReport from its key: ok is
// true when the key was used.
func (s *Service) recallReport(ctx context.Context, g Grant, key, hash string) (FraudReport, bool, error) {
	k, err := s.store.RecallFraudReport(ctx, g.User, g.Client, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return FraudReport{}, false, nil
	case err != nil:
		return FraudReport{}, false, err
	case k.RequestHash != hash:
		return FraudReport{}, true, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
			"idempotency_key was used before with a different request")
	}
	r, err := s.store.FraudReport(ctx, k.Report)
	if errors.Is(err, ErrNotFound) {
		return FraudReport{}, true, errReportNotFound()
	}
	return r, true, err
}

// GetFraudReport reads one of the user's fraud reports.
func (s *Service) GetFraudReport(ctx context.Context, g Grant, k BankKey) (FraudReport, error) {
	if k.User != g.User {
		return FraudReport{}, errReportNotFound()
	}
	r, err := s.store.FraudReport(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return FraudReport{}, errReportNotFound()
	}
	return r, err
}

// ListFraudReports reads one page of the user's fraud reports, newest
// first, at the banks where a consent of the user still covers support for
// purpose (the call's).
func (s *Service) ListFraudReports(ctx context.Context, g Grant, purpose commonv1.Purpose, pageSize int, token string) ([]FraudReport, string, error) {
	banks, err := s.coveredBanks(ctx, g.User, commonv1.Scope_SCOPE_SUPPORT, purpose)
	if err != nil {
		return nil, "", err
	}
	list := pagetoken.List{Method: listFraudReports, Parent: names.User(g.User)}
	return pagetoken.ReadPage(s.pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]FraudReport, error) {
			if len(banks) == 0 {
				return nil, nil
			}
			return s.store.ListFraudReports(ctx, g.User, banks, after, limit)
		},
		func(r FraudReport) pagetoken.Position {
			return pagetoken.Position{Time: r.CreateTime, ID: r.BankID + names.BankSeparator + r.ID}
		})
}

// coveredBanks lists the banks where a VALID link of the user covers scope
// for purpose.
func (s *Service) coveredBanks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]string, error) {
	links, err := s.consent.CoveringLinks(ctx, user, scope, purpose)
	if err != nil {
		return nil, err
	}
	banks := make([]string, 0, len(links))
	for _, l := range links {
		banks = append(banks, l.BankID)
	}
	return banks, nil
}

// reportUnrecognisedCharge files the report the assistant's "unrecognised
// charge" flow ends with (assistant.go): an unrecognised transaction at
// the conversation's bank, under the consent the conversation was opened
// under, without a card block, idempotent by key.
func (s *Service) reportUnrecognisedCharge(ctx context.Context, c Conversation, t names.Transaction, idempotencyKey string) error {
	_, err := s.CreateFraudReport(ctx, Grant{User: c.User, Client: c.Client, BankID: c.BankID, Link: c.Link, BankConsentID: c.BankConsentID},
		FraudReportInput{Account: t.Account, TransactionID: t.ID, Category: FraudUnrecognisedTransaction, IdempotencyKey: idempotencyKey})
	return err
}
