package transport

import (
	"context"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

// reportOf reads a fraud report's name; one that does not parse names
// nothing.
func reportOf(name string) (app.BankKey, error) {
	r, err := names.ParseBankResource(name, names.FraudReports)
	if err != nil {
		return app.BankKey{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such fraud report")
	}
	return app.BankKey{User: r.User, BankID: r.BankID, ID: r.ID}, nil
}

// invalid is INVALID_ARGUMENT with one field violation.
func invalid(field, desc, rule string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: desc, Reason: rule}))
}

// CreateFraudReport files a fraud report on one of the user's accounts.
// Validation has checked the names' shapes and that the account is the
// user's; the kit, that the account's bank is configured and its consent.
func (s *Server) CreateFraudReport(ctx context.Context, req *supportv1.CreateFraudReportRequest) (*supportv1.CreateFraudReportResponse, error) {
	fr := req.GetFraudReport()
	account, err := names.ParseAccount(fr.GetAccount())
	if err != nil {
		return nil, invalid("fraud_report.account", "not an account name", "fraud_report.account")
	}
	in := app.FraudReportInput{
		Account: account, Category: supportpb.AppFraudCategory(fr.GetCategory()), Description: fr.GetDescription(),
		BlockCard: fr.GetBlockCard(), IdempotencyKey: req.GetIdempotencyKey(),
	}
	if t := fr.GetTransaction(); t != "" {
		tx, err := names.ParseTransaction(t)
		if err != nil || tx.Account != account {
			return nil, invalid("fraud_report.transaction", "must belong to account", "fraud_report.transaction_in_account")
		}
		in.TransactionID = tx.ID
	}
	if c := fr.GetCard(); c != "" {
		card, err := names.ParseBankResource(c, names.Cards)
		switch {
		case err != nil || card.User != account.User:
			return nil, invalid("fraud_report.card", "must be a card of the user", "fraud_report.card_same_user")
		case card.BankID != account.BankID:
			return nil, invalid("fraud_report.card", "must be at the account's bank", "fraud_report.card_same_bank")
		case !fr.GetBlockCard():
			return nil, invalid("fraud_report.card", "set only with block_card", "fraud_report.card_needs_block_card")
		}
		in.CardID = card.ID
	}
	r, err := s.app.CreateFraudReport(ctx, grant(ctx), in)
	if err != nil {
		return nil, err
	}
	return &supportv1.CreateFraudReportResponse{FraudReport: supportpb.FraudReportProto(r)}, nil
}

// GetFraudReport returns one fraud report.
func (s *Server) GetFraudReport(ctx context.Context, req *supportv1.GetFraudReportRequest) (*supportv1.GetFraudReportResponse, error) {
	k, err := reportOf(req.GetName())
	if err != nil {
		return nil, err
	}
	r, err := s.app.GetFraudReport(ctx, grant(ctx), k)
	if err != nil {
		return nil, err
	}
	return &supportv1.GetFraudReportResponse{FraudReport: supportpb.FraudReportProto(r)}, nil
}

// ListFraudReports returns one page of the user's fraud reports.
func (s *Server) ListFraudReports(ctx context.Context, req *supportv1.ListFraudReportsRequest) (*supportv1.ListFraudReportsResponse, error) {
	rs, next, err := s.app.ListFraudReports(ctx, grant(ctx), access.GrantFrom(ctx).Purpose, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &supportv1.ListFraudReportsResponse{NextPageToken: next}
	for _, r := range rs {
		out.FraudReports = append(out.FraudReports, supportpb.FraudReportProto(r))
	}
	return out, nil
}
