package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// RecallCardKey reads a card operation's idempotency key.
func (s *Store) RecallCardKey(ctx context.Context, user, client, operation, key string) (app.CardKey, error) {
	k := app.CardKey{User: user, Client: client, Operation: operation, Key: key}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, create_time FROM card_keys
		WHERE user_id = $1 AND client_id = $2 AND operation = $3 AND idem_key = $4`, user, client, operation, key).
		Scan(&k.RequestHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return app.CardKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.CardKey{}, fmt.Errorf("read card key: %w", err)
	}
	k.CreateTime = storage.FromMicros(created)
	return k, nil
}

// RememberCardKey stores a card operation's idempotency key.
func (t *tx) RememberCardKey(ctx context.Context, k app.CardKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO card_keys (user_id, client_id, operation, idem_key, request_hash, create_time)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.User, k.Client, k.Operation, k.Key, k.RequestHash, storage.Micros(k.CreateTime))
	if err != nil {
		return conflict("insert card key", err)
	}
	return nil
}

const unblockColumns = `user_id, bank_id, card_id, challenge_id, method, challenge_text, expire_time, attempts_allowed, create_time`

func scanUnblock(row scanner) (app.CardUnblock, error) {
	var u app.CardUnblock
	var expire, created int64
	if err := row.Scan(&u.User, &u.BankID, &u.ID, &u.ChallengeID, &u.Method, &u.Text, &expire, &u.AttemptsAllowed, &created); err != nil {
		return app.CardUnblock{}, err
	}
	u.ExpireTime, u.CreateTime = storage.FromMicros(expire), storage.FromMicros(created)
	return u, nil
}

// CardUnblock reads the unblock challenge running for a card.
func (s *Store) CardUnblock(ctx context.Context, k app.BankKey) (app.CardUnblock, error) {
	u, err := scanUnblock(s.db.QueryRowContext(ctx, `SELECT `+unblockColumns+` FROM card_unblocks
		WHERE user_id = $1 AND bank_id = $2 AND card_id = $3`, k.User, k.BankID, k.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return app.CardUnblock{}, app.ErrNotFound
	}
	if err != nil {
		return app.CardUnblock{}, fmt.Errorf("read unblock challenge: %w", err)
	}
	return u, nil
}

// CardUnblocks reads the user's unblock challenges at a bank.
func (s *Store) CardUnblocks(ctx context.Context, user, bankID string) ([]app.CardUnblock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+unblockColumns+` FROM card_unblocks
		WHERE user_id = $1 AND bank_id = $2 ORDER BY card_id`, user, bankID)
	if err != nil {
		return nil, fmt.Errorf("read unblock challenges: %w", err)
	}
	defer rows.Close()
	var out []app.CardUnblock
	for rows.Next() {
		u, err := scanUnblock(rows)
		if err != nil {
			return nil, fmt.Errorf("read unblock challenges: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unblock challenges: %w", err)
	}
	return out, nil
}

// SaveCardUnblock stores the unblock challenge running for a card,
// replacing the one before.
func (t *tx) SaveCardUnblock(ctx context.Context, u app.CardUnblock) error {
	// An upsert, not a delete and an insert: on PostgreSQL two calls at
	// once (one idempotency key, so the bank's same challenge) would both
	// find no row to delete, and the second insert would fail on the
	// first's row.
	_, err := t.q.ExecContext(ctx, `INSERT INTO card_unblocks (`+unblockColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (user_id, bank_id, card_id) DO UPDATE SET challenge_id = excluded.challenge_id, method = excluded.method,
		challenge_text = excluded.challenge_text, expire_time = excluded.expire_time,
		attempts_allowed = excluded.attempts_allowed, create_time = excluded.create_time`,
		u.User, u.BankID, u.ID, u.ChallengeID, u.Method, u.Text, storage.Micros(u.ExpireTime), u.AttemptsAllowed, storage.Micros(u.CreateTime))
	if err != nil {
		return conflict("insert unblock challenge", err)
	}
	return nil
}

// DeleteCardUnblock forgets a card's unblock challenge.
func (t *tx) DeleteCardUnblock(ctx context.Context, k app.BankKey) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM card_unblocks WHERE user_id = $1 AND bank_id = $2 AND card_id = $3`, k.User, k.BankID, k.ID)
	if err != nil {
		return conflict("delete unblock challenge", err)
	}
	return nil
}
