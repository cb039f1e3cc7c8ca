package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// HoldKey takes the hold of h's key in one statement: inserted when there
// is none, taken over when the one there lapsed at now. Two calls at once
// cannot both take it: on PostgreSQL the second insert waits for the
// first's to commit and then finds the key held; on SQLite writes are
// serialised. A statement of its own, outside any transaction, so that it
// is visible to the other calls at once.
func (s *Store) HoldKey(ctx context.Context, h app.KeyHold, now time.Time) (app.KeyHold, bool, error) {
	var holder string
	err := s.db.QueryRowContext(ctx, `INSERT INTO idempotency_holds (user_id, operation, idempotency_key, request_hash, holder, expire_time)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id, operation, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash,
			holder = excluded.holder, expire_time = excluded.expire_time
		WHERE idempotency_holds.expire_time <= $7
		RETURNING holder`,
		h.User, h.Operation, h.Key, h.RequestHash, h.Holder, storage.Micros(h.ExpireTime), storage.Micros(now)).Scan(&holder)
	switch {
	case err == nil:
		return h, holder == h.Holder, nil
	case !errors.Is(err, sql.ErrNoRows):
		return app.KeyHold{}, false, fmt.Errorf("hold idempotency key: %w", err)
	}
	held := app.KeyHold{User: h.User, Operation: h.Operation, Key: h.Key}
	var expire int64
	err = s.db.QueryRowContext(ctx, `SELECT request_hash, holder, expire_time FROM idempotency_holds
		WHERE user_id = $1 AND operation = $2 AND idempotency_key = $3`, h.User, h.Operation, h.Key).
		Scan(&held.RequestHash, &held.Holder, &expire)
	if errors.Is(err, sql.ErrNoRows) {
		// Released since: the caller looks again.
		return app.KeyHold{}, false, nil
	}
	if err != nil {
		return app.KeyHold{}, false, fmt.Errorf("read idempotency key hold: %w", err)
	}
	held.ExpireTime = storage.FromMicros(expire)
	return held, false, nil
}

// ReleaseKey deletes h's hold, if h still holds it.
func (s *Store) ReleaseKey(ctx context.Context, h app.KeyHold) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_holds WHERE user_id = $1 AND operation = $2 AND idempotency_key = $3 AND holder = $4`,
		h.User, h.Operation, h.Key, h.Holder)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
