// Package store keeps the consent service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): links, user pseudonyms at banks,
// idempotency keys, each user's hash-chained access log, and the outbox of
// expiry warnings. It implements app.Store.
//
// Link state changes are published to watchers once their transaction
// commits: on SQLite within the process (one process owns the file), on
// PostgreSQL through NOTIFY, so every replica's watchers see every
// replica's changes.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records which migrations ran; the consent service's own,
// so services can share a PostgreSQL database.
const migrationsTable = "consent_schema_migrations"

// maxTxAttempts bounds how often a transaction that lost a race is run.
const maxTxAttempts = 5

// Store is the SQL implementation of app.Store. It is safe for concurrent
// use.
type Store struct {
	queries
	db   *storage.DB
	log  *slog.Logger
	feed *feed
}

var _ app.Store = (*Store)(nil)

// New migrates db to the consent schema and returns the store. Call Run
// for the life of the service so watchers get changes.
func New(ctx context.Context, db *storage.DB, log *slog.Logger) (*Store, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("consent migrations: %w", err)
	}
	if err := db.Migrate(ctx, sub, migrationsTable); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{queries: queries{q: db.DB, db: db}, db: db, log: log, feed: newFeed()}
	if db.Dialect() == storage.SQLite {
		// Every change is made through this process, so the feed is live
		// from the start.
		s.feed.setLive(true)
	}
	return s, nil
}

// Tx runs fn in a transaction, again (up to a few times) when it conflicts
// with another, and publishes the state changes it made once it commits.
func (s *Store) Tx(ctx context.Context, fn func(app.Tx) error) error {
	var changes []app.Change
	err := s.retry(ctx, func() error {
		return s.db.InTx(ctx, func(sqlTx *sql.Tx) error {
			t := &tx{queries: queries{q: sqlTx, db: s.db}, locked: map[linkKey]app.State{}}
			if err := fn(t); err != nil {
				return err
			}
			changes = t.changes
			return s.notify(ctx, sqlTx, changes)
		})
	})
	if err != nil {
		return err
	}
	s.publishLocal(changes)
	return nil
}

// retry runs fn until it succeeds, fails for a reason other than a lost
// race, or has run maxTxAttempts times.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxTxAttempts || !storage.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// UserReference returns the user's pseudonym at the bank, storing
// newRef() the first time.
func (s *Store) UserReference(ctx context.Context, user, bankID string, newRef func() string) (string, error) {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO user_references (user_id, bank_id, reference) VALUES ($1, $2, $3) ON CONFLICT (user_id, bank_id) DO NOTHING`,
		user, bankID, newRef())
	if err != nil {
		return "", fmt.Errorf("insert user reference: %w", err)
	}
	var ref string
	err = s.db.QueryRowContext(ctx, `SELECT reference FROM user_references WHERE user_id = $1 AND bank_id = $2`, user, bankID).Scan(&ref)
	if err != nil {
		return "", fmt.Errorf("read user reference: %w", err)
	}
	return ref, nil
}

// AppendAccess appends one entry to the user's chain. It locks the user's
// chain head row first, so appends for one user run one at a time (on
// SQLite the transaction's write lock does the same); the primary key
// (user, sequence) would refuse a forked chain anyway, and such a conflict
// is retried.
func (s *Store) AppendAccess(ctx context.Context, user string, build func(app.ChainHead) (app.AccessEntry, error)) (app.AccessEntry, error) {
	var out app.AccessEntry
	err := s.retry(ctx, func() error {
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO access_log_heads (user_id, sequence, hash) VALUES ($1, 0, '') ON CONFLICT (user_id) DO NOTHING`, user)
			if err != nil {
				return fmt.Errorf("create chain head: %w", err)
			}
			var head app.ChainHead
			err = tx.QueryRowContext(ctx,
				`SELECT sequence, hash FROM access_log_heads WHERE user_id = $1`+s.db.ForUpdate(), user).
				Scan(&head.Sequence, &head.Hash)
			if err != nil {
				return fmt.Errorf("lock chain head: %w", err)
			}
			e, err := build(head)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO access_log (user_id, sequence, access_time, client_id, method,
				resource, purpose, scope, outcome, reason, trace_id, previous_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				user, e.Sequence, storage.Micros(e.AccessTime), e.ClientID, e.Method,
				e.Resource, e.Purpose.String(), e.Scope.String(), e.Outcome.String(), e.Reason, e.TraceID, e.PreviousHash, e.Hash)
			if err != nil {
				return fmt.Errorf("insert access log entry: %w", err)
			}
			_, err = tx.ExecContext(ctx, `UPDATE access_log_heads SET sequence = $2, hash = $3 WHERE user_id = $1`,
				user, e.Sequence, e.Hash)
			if err != nil {
				return fmt.Errorf("move chain head: %w", err)
			}
			e.User = user
			out = e
			return nil
		})
	})
	return out, err
}

// ExpireLinks ends the links whose time is up, as of now.
func (s *Store) ExpireLinks(ctx context.Context, now time.Time) (int, error) {
	var changes []app.Change
	err := s.retry(ctx, func() error {
		changes = nil
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			at := storage.Micros(now)
			for _, u := range []struct {
				query string
				state app.State
			}{
				{`UPDATE links SET state = 'EXPIRED', update_time = $1
					WHERE state = 'VALID' AND expire_time <= $1 RETURNING user_id, link_id`, app.StateExpired},
				{`UPDATE links SET state = 'REJECTED', sca_status = 'EXPIRED', sca_attempts_remaining = 0, update_time = $1
					WHERE state = 'RECEIVED' AND sca_expire_time <> 0 AND sca_expire_time <= $1 RETURNING user_id, link_id`, app.StateRejected},
			} {
				rows, err := tx.QueryContext(ctx, u.query, at)
				if err != nil {
					return fmt.Errorf("end links: %w", err)
				}
				for rows.Next() {
					c := app.Change{State: u.state}
					if err := rows.Scan(&c.User, &c.LinkID); err != nil {
						_ = rows.Close()
						return fmt.Errorf("end links: %w", err)
					}
					changes = append(changes, c)
				}
				if err := rows.Close(); err != nil {
					return fmt.Errorf("end links: %w", err)
				}
				if err := rows.Err(); err != nil {
					return fmt.Errorf("end links: %w", err)
				}
			}
			return s.notify(ctx, tx, changes)
		})
	})
	if err != nil {
		return 0, err
	}
	s.publishLocal(changes)
	return len(changes), nil
}

// DeleteIdempotency forgets the keys recorded before cutoff.
func (s *Store) DeleteIdempotency(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE create_time < $1`, storage.Micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// linkKey names a link within a transaction.
type linkKey struct{ user, id string }

// tx is app.Tx over one SQL transaction. It remembers the state of each
// link it locked, to tell which saves change a state.
type tx struct {
	queries
	locked  map[linkKey]app.State
	changes []app.Change
}

// LockLink reads a link and locks its row until the transaction ends.
func (t *tx) LockLink(ctx context.Context, user, id string) (app.Link, error) {
	l, err := t.link(ctx, user, id, true)
	if err == nil {
		t.locked[linkKey{user, id}] = l.State
	}
	return l, err
}

// LockValidLinks reads and locks the user's VALID links at a bank.
func (t *tx) LockValidLinks(ctx context.Context, user, bankID string) ([]app.Link, error) {
	links, err := t.selectLinks(ctx, `WHERE user_id = $1 AND bank_id = $2 AND state = 'VALID'`+t.db.ForUpdate(), user, bankID)
	for _, l := range links {
		t.locked[linkKey{l.User, l.ID}] = l.State
	}
	return links, err
}

// InsertLink stores a new link.
func (t *tx) InsertLink(ctx context.Context, l app.Link) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO links (`+linkColumns+`) VALUES (
		$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`, linkValues(l)...)
	if err != nil {
		return fmt.Errorf("insert link: %w", err)
	}
	return nil
}

// SaveLink writes a locked link back and notes a change of its state.
func (t *tx) SaveLink(ctx context.Context, l app.Link) error {
	k := linkKey{l.User, l.ID}
	old, ok := t.locked[k]
	if !ok {
		return errors.New("save link: the link was not locked in this transaction")
	}
	v := linkValues(l)
	_, err := t.q.ExecContext(ctx, `UPDATE links SET bank_id = $3, bank_display_name = $4, state = $5, scopes = $6,
		purposes = $7, expire_time = $8, create_time = $9, update_time = $10, verify_time = $11, revoke_time = $12,
		bank_consent_id = $13, sca_method = $14, sca_status = $15, sca_attempts_remaining = $16,
		sca_failed_attempts = $17, sca_expire_time = $18, sca_redirect_uri = $19, sca_instruction = $20,
		expiry_warn_time = $21
		WHERE user_id = $1 AND link_id = $2`, v...)
	if err != nil {
		return fmt.Errorf("save link: %w", err)
	}
	if old != l.State {
		t.locked[k] = l.State
		t.changes = append(t.changes, app.Change{User: l.User, LinkID: l.ID, State: l.State})
	}
	return nil
}

// InsertIdempotency records a key, or reports app.ErrIdempotencyKeyTaken
// when it is recorded already (waiting, on PostgreSQL, for a transaction
// that is recording it right now).
func (t *tx) InsertIdempotency(ctx context.Context, r app.Idempotency) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO idempotency_keys (user_id, operation, idempotency_key, request_hash,
		link_id, error_reason, attempts_remaining, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (user_id, operation, idempotency_key) DO NOTHING`,
		r.User, r.Operation, r.Key, r.RequestHash, r.LinkID, r.ErrReason, r.AttemptsRemaining, storage.Micros(r.CreateTime))
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	} else if n == 0 {
		return app.ErrIdempotencyKeyTaken
	}
	return nil
}

// joinNames and splitNames store enum lists as comma-separated names.
func joinNames[E interface{ String() string }](values []E) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = v.String()
	}
	return strings.Join(names, ",")
}

func splitNames[E ~int32](s string, values map[string]int32) ([]E, error) {
	if s == "" {
		return nil, nil
	}
	var out []E
	for name := range strings.SplitSeq(s, ",") {
		v, ok := values[name]
		if !ok {
			return nil, fmt.Errorf("unknown enum value %q", name)
		}
		out = append(out, E(v))
	}
	return out, nil
}
