package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// The fraud files' tables (migrations/00002_fraud.sql): fraud reports and
// their keys, early case updates (here); alerts (fraud_alerts.go); card
// keys and unblock challenges (fraud_cards.go).

const reportColumns = `user_id, bank_id, report_id, client_id, link, bank_consent_id, account_id, transaction_id,
	category, description, block_card, card_id, status, card_block_status, case_id, create_time, update_time`

func scanReport(row scanner) (app.FraudReport, error) {
	var r app.FraudReport
	var txID, cardID, caseID sql.NullString
	var category, status, blockStatus string
	var created, updated int64
	if err := row.Scan(&r.User, &r.BankID, &r.ID, &r.Client, &r.Link, &r.BankConsentID, &r.AccountID, &txID,
		&category, &r.Description, &r.BlockCard, &cardID, &status, &blockStatus, &caseID, &created, &updated); err != nil {
		return app.FraudReport{}, err
	}
	r.TransactionID, r.CardID, r.CaseID = txID.String, cardID.String, caseID.String
	r.Category, r.Status, r.CardBlockStatus = app.FraudCategory(category), app.FraudStatus(status), app.CardBlockStatus(blockStatus)
	r.CreateTime, r.UpdateTime = storage.FromMicros(created), storage.FromMicros(updated)
	return r, nil
}

func oneReport(row *sql.Row) (app.FraudReport, error) {
	r, err := scanReport(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.FraudReport{}, app.ErrNotFound
	}
	if err != nil {
		return app.FraudReport{}, fmt.Errorf("read fraud report: %w", err)
	}
	return r, nil
}

// FraudReport reads one fraud report.
func (s *Store) FraudReport(ctx context.Context, k app.BankKey) (app.FraudReport, error) {
	return oneReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM fraud_reports
		WHERE user_id = $1 AND bank_id = $2 AND report_id = $3`, k.User, k.BankID, k.ID))
}

// ListFraudReports reads one page of the user's fraud reports at banks,
// newest first: a keyset read backwards along fraud_reports_by_create. The
// position's ID is "<bank_id>~<id>".
func (s *Store) ListFraudReports(ctx context.Context, user string, banks []string, after *pagetoken.Position, limit int) ([]app.FraudReport, error) {
	q := newQuery(user)
	q.b.WriteString(`SELECT ` + reportColumns + ` FROM fraud_reports WHERE user_id = $1`)
	q.in("bank_id", banks)
	q.after("report_id", after)
	q.b.WriteString(` ORDER BY create_time DESC, bank_id DESC, report_id DESC LIMIT ` + strconv.Itoa(limit))
	rows, err := s.db.QueryContext(ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("read fraud reports: %w", err)
	}
	defer rows.Close()
	var out []app.FraudReport
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, fmt.Errorf("read fraud reports: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read fraud reports: %w", err)
	}
	return out, nil
}

// query builds a keyset read of a user's rows, its arguments numbered as
// they are added.
type query struct {
	b    strings.Builder
	args []any
}

func newQuery(user string) *query { return &query{args: []any{user}} }

// arg adds v and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// in restricts column to values.
func (q *query) in(column string, values []string) {
	ps := make([]string, len(values))
	for i, v := range values {
		ps[i] = q.arg(v)
	}
	q.b.WriteString(` AND ` + column + ` IN (` + strings.Join(ps, ", ") + `)`)
}

// after starts below the position of the last row served, in the order
// create_time, bank_id, idColumn, all descending.
func (q *query) after(idColumn string, p *pagetoken.Position) {
	if p == nil {
		return
	}
	bank, id, _ := strings.Cut(p.ID, "~")
	t := q.arg(storage.Micros(p.Time))
	bk := q.arg(bank)
	q.b.WriteString(` AND (create_time < ` + t + ` OR (create_time = ` + t + ` AND (bank_id < ` + bk +
		` OR (bank_id = ` + bk + ` AND ` + idColumn + ` < ` + q.arg(id) + `))))`)
}

// RecallFraudReport reads a CreateFraudReport idempotency key.
func (s *Store) RecallFraudReport(ctx context.Context, user, client, key string) (app.FraudReportKey, error) {
	k := app.FraudReportKey{User: user, Client: client, Key: key}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, bank_id, report_id, create_time FROM fraud_report_keys
		WHERE user_id = $1 AND client_id = $2 AND idem_key = $3`, user, client, key).
		Scan(&k.RequestHash, &k.Report.BankID, &k.Report.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return app.FraudReportKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.FraudReportKey{}, fmt.Errorf("read fraud report key: %w", err)
	}
	k.Report.User, k.CreateTime = user, storage.FromMicros(created)
	return k, nil
}

// DeleteExpiredFraud deletes old idempotency keys and old updates of
// unknown cases.
func (s *Store) DeleteExpiredFraud(ctx context.Context, keysBefore, updatesBefore time.Time) (int, error) {
	total := 0
	for _, d := range []struct{ what, query string }{
		{"fraud report keys", `DELETE FROM fraud_report_keys WHERE create_time < $1`},
		{"card keys", `DELETE FROM card_keys WHERE create_time < $1`},
		{"case updates", `DELETE FROM fraud_case_updates WHERE create_time < $1`},
	} {
		before := keysBefore
		if d.what == "case updates" {
			before = updatesBefore
		}
		res, err := s.db.ExecContext(ctx, d.query, storage.Micros(before))
		if err != nil {
			return total, fmt.Errorf("delete expired %s: %w", d.what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete expired %s: %w", d.what, err)
		}
		total += int(n)
	}
	return total, nil
}

// InsertFraudReport stores a new fraud report.
func (t *tx) InsertFraudReport(ctx context.Context, r app.FraudReport) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO fraud_reports (`+reportColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		r.User, r.BankID, r.ID, r.Client, r.Link, r.BankConsentID, r.AccountID, storage.NullString(r.TransactionID),
		string(r.Category), r.Description, r.BlockCard, storage.NullString(r.CardID), string(r.Status), string(r.CardBlockStatus),
		storage.NullString(r.CaseID), storage.Micros(r.CreateTime), storage.Micros(r.UpdateTime))
	if err != nil {
		return conflict("insert fraud report", err)
	}
	return nil
}

// LockFraudReport reads and locks a fraud report.
func (t *tx) LockFraudReport(ctx context.Context, k app.BankKey) (app.FraudReport, error) {
	return oneReport(t.q.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM fraud_reports
		WHERE user_id = $1 AND bank_id = $2 AND report_id = $3`+t.db.ForUpdate(), k.User, k.BankID, k.ID))
}

// FraudReportByCase reads and locks the fraud report of a bank's case.
func (t *tx) FraudReportByCase(ctx context.Context, bankID, caseID string) (app.FraudReport, error) {
	return oneReport(t.q.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM fraud_reports
		WHERE bank_id = $1 AND case_id = $2`+t.db.ForUpdate(), bankID, caseID))
}

// UpdateFraudReport writes a locked report's mutable fields.
func (t *tx) UpdateFraudReport(ctx context.Context, r app.FraudReport) error {
	_, err := t.q.ExecContext(ctx, `UPDATE fraud_reports SET status = $1, card_block_status = $2, case_id = $3, update_time = $4
		WHERE user_id = $5 AND bank_id = $6 AND report_id = $7`,
		string(r.Status), string(r.CardBlockStatus), storage.NullString(r.CaseID), storage.Micros(r.UpdateTime), r.User, r.BankID, r.ID)
	if err != nil {
		return conflict("update fraud report", err)
	}
	return nil
}

// RememberFraudReport stores a CreateFraudReport idempotency key.
func (t *tx) RememberFraudReport(ctx context.Context, k app.FraudReportKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO fraud_report_keys (user_id, client_id, idem_key, request_hash, bank_id, report_id, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.User, k.Client, k.Key, k.RequestHash, k.Report.BankID, k.Report.ID, storage.Micros(k.CreateTime))
	if err != nil {
		return conflict("insert fraud report key", err)
	}
	return nil
}

// KeepCaseUpdate keeps an update of a case no report names yet, raising
// the kept status, never lowering it.
func (t *tx) KeepCaseUpdate(ctx context.Context, u app.CaseUpdate) error {
	kept, ok, err := t.caseUpdate(ctx, u.BankID, u.CaseID)
	switch {
	case err != nil:
		return err
	case !ok:
		_, err = t.q.ExecContext(ctx, `INSERT INTO fraud_case_updates (bank_id, case_id, bank_consent_id, status, create_time)
			VALUES ($1, $2, $3, $4, $5)`, u.BankID, u.CaseID, u.BankConsentID, string(u.Status), storage.Micros(u.Time))
	case kept.Status.Advance(u.Status) != kept.Status:
		_, err = t.q.ExecContext(ctx, `UPDATE fraud_case_updates SET status = $1 WHERE bank_id = $2 AND case_id = $3`,
			string(u.Status), u.BankID, u.CaseID)
	}
	if err != nil {
		return conflict("keep case update", err)
	}
	return nil
}

// caseUpdate reads and locks the update kept for a case.
func (t *tx) caseUpdate(ctx context.Context, bankID, caseID string) (app.CaseUpdate, bool, error) {
	u := app.CaseUpdate{BankID: bankID, CaseID: caseID}
	var status string
	var created int64
	err := t.q.QueryRowContext(ctx, `SELECT bank_consent_id, status, create_time FROM fraud_case_updates
		WHERE bank_id = $1 AND case_id = $2`+t.db.ForUpdate(), bankID, caseID).Scan(&u.BankConsentID, &status, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return app.CaseUpdate{}, false, nil
	}
	if err != nil {
		return app.CaseUpdate{}, false, fmt.Errorf("read case update: %w", err)
	}
	u.Status, u.Time = app.FraudStatus(status), storage.FromMicros(created)
	return u, true, nil
}

// TakeCaseUpdate reads and deletes the update kept for a case.
func (t *tx) TakeCaseUpdate(ctx context.Context, bankID, caseID string) (app.CaseUpdate, bool, error) {
	u, ok, err := t.caseUpdate(ctx, bankID, caseID)
	if err != nil || !ok {
		return u, ok, err
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM fraud_case_updates WHERE bank_id = $1 AND case_id = $2`, bankID, caseID); err != nil {
		return app.CaseUpdate{}, false, conflict("delete case update", err)
	}
	return u, true, nil
}

// DeleteLinkFraud deletes the user's fraud reports and alerts held under
// link (their keys go with the reports: ON DELETE CASCADE), and the user's
// unblock challenges at bankID.
func (t *tx) DeleteLinkFraud(ctx context.Context, user, bankID, link string) error {
	for _, d := range []struct{ what, query string }{
		{"fraud reports", `DELETE FROM fraud_reports WHERE user_id = $1 AND link = $2`},
		{"alerts", `DELETE FROM fraud_alerts WHERE user_id = $1 AND link = $2`},
	} {
		if _, err := t.q.ExecContext(ctx, d.query, user, link); err != nil {
			return conflict("delete the link's "+d.what, err)
		}
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM card_unblocks WHERE user_id = $1 AND bank_id = $2`, user, bankID); err != nil {
		return conflict("delete unblock challenges", err)
	}
	return nil
}
