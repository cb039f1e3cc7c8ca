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

// The store's part against linking abuse (app.AbuseTx, app.AbuseStore):
// places under the pending-link cap, wrong codes per user, bank and login,
// and the shape of each bank's challenge that decoy links imitate.

// PendingLinks locks the user's reference at the bank (made by
// UserReference before any CreateLink asks the bank), which serialises the
// CreateLinks of one user at one bank on PostgreSQL as SQLite's write lock
// does, then counts what waits for verification at now.
func (t *tx) PendingLinks(ctx context.Context, user, bankID, exceptKey string, now time.Time) (app.PendingLinks, error) {
	var ref string
	err := t.q.QueryRowContext(ctx, `SELECT reference FROM user_references WHERE user_id = $1 AND bank_id = $2`+t.db.ForUpdate(),
		user, bankID).Scan(&ref)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return app.PendingLinks{}, fmt.Errorf("lock user reference: %w", err)
	}
	at := storage.Micros(now)
	// The places of calls that died lapse.
	if _, err := t.q.ExecContext(ctx, `DELETE FROM link_starts WHERE user_id = $1 AND bank_id = $2 AND expire_time <= $3`,
		user, bankID, at); err != nil {
		return app.PendingLinks{}, fmt.Errorf("delete lapsed link starts: %w", err)
	}
	var (
		p     app.PendingLinks
		first sql.NullInt64
	)
	// A RECEIVED link's challenge that has no expiry never stops counting
	// by itself; MIN leaves it out.
	err = t.q.QueryRowContext(ctx, `SELECT COUNT(*), MIN(NULLIF(end_time, 0)) FROM (
			SELECT sca_expire_time AS end_time FROM links
			WHERE user_id = $1 AND bank_id = $2 AND state = 'RECEIVED' AND (sca_expire_time = 0 OR sca_expire_time > $3)
			UNION ALL
			SELECT expire_time AS end_time FROM link_starts WHERE user_id = $1 AND bank_id = $2 AND start_key <> $4
		) AS pending`, user, bankID, at, exceptKey).Scan(&p.Count, &first)
	if err != nil {
		return app.PendingLinks{}, fmt.Errorf("count pending links: %w", err)
	}
	p.FirstEnd = storage.FromNullMicros(first)
	return p, nil
}

// PutLinkStart stores a CreateLink's place, renewing it on a retry.
func (t *tx) PutLinkStart(ctx context.Context, s app.LinkStart) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO link_starts (user_id, bank_id, start_key, expire_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, bank_id, start_key) DO UPDATE SET expire_time = excluded.expire_time`,
		s.User, s.BankID, s.Key, storage.Micros(s.ExpireTime))
	if err != nil {
		return fmt.Errorf("insert link start: %w", err)
	}
	return nil
}

// DeleteLinkStart frees a CreateLink's place.
func (t *tx) DeleteLinkStart(ctx context.Context, user, bankID, key string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM link_starts WHERE user_id = $1 AND bank_id = $2 AND start_key = $3`, user, bankID, key)
	if err != nil {
		return fmt.Errorf("delete link start: %w", err)
	}
	return nil
}

const scaFailureColumns = `window_start, failures, cooldown_until`

func scanScaFailures(row interface{ Scan(...any) error }, f *app.ScaFailures) error {
	var start, cooldown int64
	if err := row.Scan(&start, &f.Failures, &cooldown); err != nil {
		return err
	}
	f.WindowStart, f.CooldownUntil = fromZeroMicros(start), fromZeroMicros(cooldown)
	return nil
}

// ScaFailures reads a count without locking it.
func (t *tx) ScaFailures(ctx context.Context, user, bankID, loginHash string) (app.ScaFailures, error) {
	f := app.ScaFailures{User: user, BankID: bankID, LoginHash: loginHash}
	err := scanScaFailures(t.q.QueryRowContext(ctx, `SELECT `+scaFailureColumns+` FROM sca_failures
		WHERE user_id = $1 AND bank_id = $2 AND login_hash = $3`, user, bankID, loginHash), &f)
	if errors.Is(err, sql.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return app.ScaFailures{}, fmt.Errorf("select sca failures: %w", err)
	}
	return f, nil
}

// LockScaFailures reads a count and locks it, making a zero count when
// there is none: an upsert whose no-op update locks an existing row as
// SELECT ... FOR UPDATE would, and whose insert leaves two first codes
// nothing to race for.
func (t *tx) LockScaFailures(ctx context.Context, user, bankID, loginHash string) (app.ScaFailures, error) {
	f := app.ScaFailures{User: user, BankID: bankID, LoginHash: loginHash}
	err := scanScaFailures(t.q.QueryRowContext(ctx, `INSERT INTO sca_failures (user_id, bank_id, login_hash, window_start, failures, cooldown_until)
		VALUES ($1, $2, $3, 0, 0, 0)
		ON CONFLICT (user_id, bank_id, login_hash) DO UPDATE SET failures = sca_failures.failures
		RETURNING `+scaFailureColumns, user, bankID, loginHash), &f)
	if err != nil {
		return app.ScaFailures{}, fmt.Errorf("lock sca failures: %w", err)
	}
	return f, nil
}

// SaveScaFailures stores a count LockScaFailures locked.
func (t *tx) SaveScaFailures(ctx context.Context, f app.ScaFailures) error {
	_, err := t.q.ExecContext(ctx, `UPDATE sca_failures SET window_start = $4, failures = $5, cooldown_until = $6
		WHERE user_id = $1 AND bank_id = $2 AND login_hash = $3`,
		f.User, f.BankID, f.LoginHash, zeroMicros(f.WindowStart), f.Failures, zeroMicros(f.CooldownUntil))
	if err != nil {
		return fmt.Errorf("save sca failures: %w", err)
	}
	return nil
}

const challengeColumns = `method, instruction, redirect_uri, lifetime_us, expire_unit_us, attempts_allowed, user_reference, shared`

// BankChallenge records a challenge the bank started, or (seen nil) reads
// the bank's under the same lock, each in one upsert. A challenge is
// shared once the one before, for another user, had the same instruction
// and redirect URI.
func (t *tx) BankChallenge(ctx context.Context, bankID string, seen *app.ChallengeShape) (app.ChallengeShape, bool, error) {
	var (
		query string
		args  []any
	)
	if seen != nil {
		query = `INSERT INTO bank_challenges (bank_id, ` + challengeColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE)
			ON CONFLICT (bank_id) DO UPDATE SET
				shared = (bank_challenges.instruction = excluded.instruction AND bank_challenges.redirect_uri = excluded.redirect_uri
					AND (bank_challenges.shared OR bank_challenges.user_reference <> excluded.user_reference)),
				method = excluded.method, instruction = excluded.instruction, redirect_uri = excluded.redirect_uri,
				lifetime_us = excluded.lifetime_us, expire_unit_us = excluded.expire_unit_us,
				attempts_allowed = excluded.attempts_allowed, user_reference = excluded.user_reference
			RETURNING ` + challengeColumns
		args = []any{bankID, seen.Method.String(), seen.Instruction, seen.RedirectURI, seen.Lifetime.Microseconds(),
			seen.ExpireUnit.Microseconds(), seen.AttemptsAllowed, seen.UserReference}
	} else {
		query = `INSERT INTO bank_challenges (bank_id, ` + challengeColumns + `) VALUES ($1, $2, '', '', 0, 0, 0, '', FALSE)
			ON CONFLICT (bank_id) DO UPDATE SET shared = bank_challenges.shared
			RETURNING ` + challengeColumns
		args = []any{bankID, app.ScaMethodUnspecified.String()}
	}
	var (
		c              app.ChallengeShape
		method         string
		lifetime, unit int64
	)
	err := t.q.QueryRowContext(ctx, query, args...).Scan(&method, &c.Instruction, &c.RedirectURI, &lifetime, &unit,
		&c.AttemptsAllowed, &c.UserReference, &c.Shared)
	if err != nil {
		return app.ChallengeShape{}, false, fmt.Errorf("bank challenge: %w", err)
	}
	c.Method = app.ParseScaMethod(method)
	c.Lifetime, c.ExpireUnit = time.Duration(lifetime)*time.Microsecond, time.Duration(unit)*time.Microsecond
	return c, c.Method != app.ScaMethodUnspecified, nil
}

// ForgetScaFailures deletes counts whose window and cooldown are over,
// lapsed claims and lapsed places.
func (s *Store) ForgetScaFailures(ctx context.Context, windowCutoff, claimCutoff, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sca_failures WHERE window_start < $1 AND cooldown_until < $2`,
		storage.Micros(windowCutoff), storage.Micros(now))
	if err != nil {
		return 0, fmt.Errorf("delete sca failures: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete sca failures: %w", err)
	}
	for _, d := range []struct {
		what, query string
		at          time.Time
	}{
		{"link starts", `DELETE FROM link_starts WHERE expire_time <= $1`, now},
		{"sca claims", `DELETE FROM sca_claims WHERE claim_time < $1`, claimCutoff},
	} {
		res, err := s.db.ExecContext(ctx, d.query, storage.Micros(d.at))
		if err != nil {
			return 0, fmt.Errorf("delete lapsed %s: %w", d.what, err)
		}
		m, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("delete lapsed %s: %w", d.what, err)
		}
		n += m
	}
	return int(n), nil
}

// ClaimCode records a code being checked, unless the same key's is.
func (t *tx) ClaimCode(ctx context.Context, user, linkID, key string, now, lapseBefore time.Time) (bool, error) {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM sca_claims WHERE user_id = $1 AND link_id = $2 AND claim_time < $3`,
		user, linkID, storage.Micros(lapseBefore)); err != nil {
		return false, fmt.Errorf("delete lapsed sca claims: %w", err)
	}
	res, err := t.q.ExecContext(ctx, `INSERT INTO sca_claims (user_id, link_id, idempotency_key, claim_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, link_id, idempotency_key) DO NOTHING`, user, linkID, key, storage.Micros(now))
	if err != nil {
		return false, fmt.Errorf("insert sca claim: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert sca claim: %w", err)
	}
	return n == 1, nil
}

// CodeClaimed reports whether key's claim on the link is recorded.
func (t *tx) CodeClaimed(ctx context.Context, user, linkID, key string) (bool, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sca_claims WHERE user_id = $1 AND link_id = $2 AND idempotency_key = $3`,
		user, linkID, key).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read sca claim: %w", err)
	}
	return n > 0, nil
}

// ReleaseCode forgets a claim and counts the link's live ones.
func (t *tx) ReleaseCode(ctx context.Context, user, linkID, key string, lapseBefore time.Time) (int, error) {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM sca_claims WHERE user_id = $1 AND link_id = $2 AND idempotency_key = $3`,
		user, linkID, key); err != nil {
		return 0, fmt.Errorf("delete sca claim: %w", err)
	}
	var n int
	if err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sca_claims WHERE user_id = $1 AND link_id = $2 AND claim_time >= $3`,
		user, linkID, storage.Micros(lapseBefore)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sca claims: %w", err)
	}
	return n, nil
}
