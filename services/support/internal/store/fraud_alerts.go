package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

const alertColumns = `user_id, bank_id, alert_id, client_id, link, bank_consent_id, account_id, transaction_id, card_id,
	amount_currency, amount_units, amount_nanos, merchant_name, description, activity_time, severity, state, response,
	acknowledge_time, create_time`

func scanAlert(row scanner) (app.Alert, error) {
	var a app.Alert
	var txID, cardID, currency, response sql.NullString
	var units, nanos, acked sql.NullInt64
	var severity, state string
	var activity, created int64
	if err := row.Scan(&a.User, &a.BankID, &a.ID, &a.Client, &a.Link, &a.BankConsentID, &a.AccountID, &txID, &cardID,
		&currency, &units, &nanos, &a.MerchantName, &a.Description, &activity, &severity, &state, &response,
		&acked, &created); err != nil {
		return app.Alert{}, err
	}
	a.TransactionID, a.CardID = txID.String, cardID.String
	if currency.Valid {
		a.Amount = &app.Money{Currency: currency.String, Units: units.Int64, Nanos: int32(nanos.Int64)}
	}
	a.Severity, a.State, a.Response = app.AlertSeverity(severity), app.AlertState(state), app.AlertResponse(response.String)
	a.ActivityTime, a.AcknowledgeTime, a.CreateTime = storage.FromMicros(activity), storage.FromNullMicros(acked), storage.FromMicros(created)
	return a, nil
}

func oneAlert(row *sql.Row) (app.Alert, error) {
	a, err := scanAlert(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Alert{}, app.ErrNotFound
	}
	if err != nil {
		return app.Alert{}, fmt.Errorf("read alert: %w", err)
	}
	return a, nil
}

// Alert reads one alert.
func (s *Store) Alert(ctx context.Context, k app.BankKey) (app.Alert, error) {
	return oneAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM fraud_alerts
		WHERE user_id = $1 AND bank_id = $2 AND alert_id = $3`, k.User, k.BankID, k.ID))
}

// ListAlerts reads one page of the user's alerts, newest first: a keyset
// read backwards along fraud_alerts_by_create. The position's ID is
// "<bank_id>~<id>".
func (s *Store) ListAlerts(ctx context.Context, user string, f app.AlertFilter, after *pagetoken.Position, limit int) ([]app.Alert, error) {
	q := newQuery(user)
	q.b.WriteString(`SELECT ` + alertColumns + ` FROM fraud_alerts WHERE user_id = $1`)
	q.in("bank_id", f.Banks)
	if f.State != "" {
		q.b.WriteString(` AND state = ` + q.arg(string(f.State)))
	}
	q.after("alert_id", after)
	q.b.WriteString(` ORDER BY create_time DESC, bank_id DESC, alert_id DESC LIMIT ` + strconv.Itoa(limit))
	rows, err := s.db.QueryContext(ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	var out []app.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// InsertAlert stores a new alert unless the bank's alert id is stored
// already. It never fails on that: the transaction it runs in (the bank
// event consumer's) goes on.
func (t *tx) InsertAlert(ctx context.Context, a app.Alert) (bool, error) {
	var currency sql.NullString
	var units, nanos sql.NullInt64
	if m := a.Amount; m != nil {
		currency = sql.NullString{String: m.Currency, Valid: true}
		units, nanos = sql.NullInt64{Int64: m.Units, Valid: true}, sql.NullInt64{Int64: int64(m.Nanos), Valid: true}
	}
	res, err := t.q.ExecContext(ctx, `INSERT INTO fraud_alerts (`+alertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT DO NOTHING`,
		a.User, a.BankID, a.ID, a.Client, a.Link, a.BankConsentID, a.AccountID, storage.NullString(a.TransactionID),
		storage.NullString(a.CardID), currency, units, nanos, a.MerchantName, a.Description, storage.Micros(a.ActivityTime),
		string(a.Severity), string(a.State), storage.NullString(string(a.Response)), storage.NullMicros(a.AcknowledgeTime),
		storage.Micros(a.CreateTime))
	if err != nil {
		return false, conflict("insert alert", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert alert: %w", err)
	}
	return n == 1, nil
}

// LockAlert reads and locks an alert.
func (t *tx) LockAlert(ctx context.Context, k app.BankKey) (app.Alert, error) {
	return oneAlert(t.q.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM fraud_alerts
		WHERE user_id = $1 AND bank_id = $2 AND alert_id = $3`+t.db.ForUpdate(), k.User, k.BankID, k.ID))
}

// UpdateAlert writes a locked alert's answer.
func (t *tx) UpdateAlert(ctx context.Context, a app.Alert) error {
	_, err := t.q.ExecContext(ctx, `UPDATE fraud_alerts SET state = $1, response = $2, acknowledge_time = $3
		WHERE user_id = $4 AND bank_id = $5 AND alert_id = $6`,
		string(a.State), storage.NullString(string(a.Response)), storage.NullMicros(a.AcknowledgeTime), a.User, a.BankID, a.ID)
	if err != nil {
		return conflict("update alert", err)
	}
	return nil
}
