package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// AcquireLease takes a bank's event lease with one conditional UPDATE:
// it succeeds for one replica only, whichever the database lets through
// first, when the lease is free or lapsed, or already the holder's. The
// same UPDATE records now as the position's time when none is stored yet.
func (s *Store) AcquireLease(ctx context.Context, bankID, holder string, now, until time.Time) (app.EventPosition, bool, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO bank_event_leases (bank_id, holder, lease_until, event_cursor, event_since)
		VALUES ($1, '', 0, '', 0) ON CONFLICT (bank_id) DO NOTHING`, bankID); err != nil {
		return app.EventPosition{}, false, fmt.Errorf("acquire lease: %w", err)
	}
	var pos app.EventPosition
	var since int64
	err := s.db.QueryRowContext(ctx, `UPDATE bank_event_leases SET holder = $1, lease_until = $2,
		event_since = CASE WHEN event_cursor = '' AND event_since = 0 THEN $4 ELSE event_since END
		WHERE bank_id = $3 AND (holder = $1 OR lease_until < $4) RETURNING event_cursor, event_since`,
		holder, storage.Micros(until), bankID, storage.Micros(now)).Scan(&pos.Cursor, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return app.EventPosition{}, false, nil
	}
	if err != nil {
		return app.EventPosition{}, false, fmt.Errorf("acquire lease: %w", err)
	}
	pos.Since = fromSince(since)
	return pos, true, nil
}

// sinceColumn is event_since for t: 0 for the zero time.
func sinceColumn(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return storage.Micros(t)
}

// fromSince reads event_since back: 0 is the zero time.
func fromSince(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return storage.FromMicros(us)
}

// RenewLease extends holder's lease; false when another holder took it.
func (s *Store) RenewLease(ctx context.Context, bankID, holder string, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE bank_event_leases SET lease_until = $1 WHERE bank_id = $2 AND holder = $3`,
		storage.Micros(until), bankID, holder)
	if err != nil {
		return false, fmt.Errorf("renew lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("renew lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseLease lets holder's lease lapse at once.
func (s *Store) ReleaseLease(ctx context.Context, bankID, holder string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE bank_event_leases SET lease_until = 0 WHERE bank_id = $1 AND holder = $2`,
		bankID, holder); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// SetCursor stores the bank's event position in this transaction, when
// holder still holds the lease. Call it first: on PostgreSQL it locks the
// lease row, so a replica taking the lease over waits for this transaction
// and then reads the position it wrote.
func (t *tx) SetCursor(ctx context.Context, bankID, holder string, pos app.EventPosition) error {
	res, err := t.q.ExecContext(ctx, `UPDATE bank_event_leases SET event_cursor = $1, event_since = $2 WHERE bank_id = $3 AND holder = $4`,
		pos.Cursor, sinceColumn(pos.Since), bankID, holder)
	if err != nil {
		return conflict("store cursor", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store cursor: %w", err)
	}
	if n == 0 {
		return app.ErrLeaseLost
	}
	return nil
}

// ParkCaseEvent keeps an event of a case no conversation names yet, after
// the case's others.
func (t *tx) ParkCaseEvent(ctx context.Context, bankID, caseID string, event []byte, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO parked_case_events (bank_id, case_id, n, event, receive_time)
		VALUES ($1, $2, (SELECT COALESCE(MAX(n), 0) + 1 FROM parked_case_events WHERE bank_id = $1 AND case_id = $2), $3, $4)`,
		bankID, caseID, string(event), storage.Micros(at))
	if err != nil {
		return conflict("park case event", err)
	}
	return nil
}

// TakeParkedCaseEvents reads and deletes the events kept for a case, in
// the order they arrived.
func (t *tx) TakeParkedCaseEvents(ctx context.Context, bankID, caseID string) ([][]byte, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT event FROM parked_case_events WHERE bank_id = $1 AND case_id = $2 ORDER BY n`, bankID, caseID)
	if err != nil {
		return nil, fmt.Errorf("read parked case events: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var ev string
		if err := rows.Scan(&ev); err != nil {
			return nil, fmt.Errorf("read parked case events: %w", err)
		}
		out = append(out, []byte(ev))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read parked case events: %w", err)
	}
	if len(out) > 0 {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM parked_case_events WHERE bank_id = $1 AND case_id = $2`, bankID, caseID); err != nil {
			return nil, fmt.Errorf("delete parked case events: %w", err)
		}
	}
	return out, nil
}

// DeleteParkedBefore deletes the kept case events received before t,
// which no handoff claimed.
func (s *Store) DeleteParkedBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM parked_case_events WHERE receive_time < $1`, storage.Micros(t))
	if err != nil {
		return 0, fmt.Errorf("delete parked case events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete parked case events: %w", err)
	}
	return int(n), nil
}

// LockBankEvents locks the bank's lease row until the transaction ends.
// The event consumer's transactions hold it from their first statement
// (SetCursor), so a transaction that takes it first runs wholly before or
// after any event's: on PostgreSQL a handoff's transaction then sees every
// event parked for its case, or the consumer sees the case. SQLite's write
// transactions take turns anyway.
func (t *tx) LockBankEvents(ctx context.Context, bankID string) error {
	rows, err := t.q.QueryContext(ctx, `SELECT bank_id FROM bank_event_leases WHERE bank_id = $1`+t.db.ForUpdate(), bankID)
	if err != nil {
		return conflict("lock bank events", err)
	}
	return rows.Close()
}
