// Package store keeps the consent service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): links, partner opt-ins, user
// pseudonyms at banks, idempotency keys and each user's hash-chained access
// log. It implements app.Store, writing the service's events (expiry
// warnings, revocations, partner opt-ins) to the platform's outbox
// (events.Outbox) in the transaction of the change they report.
//
// Link and partner opt-in state changes are published to watchers once
// their transaction commits: on SQLite within the process (one process owns
// the file), on PostgreSQL through NOTIFY, so every replica's watchers see
// every replica's changes.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/events"
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
	db     *storage.DB
	outbox events.Outbox
	log    *slog.Logger
	feed   *feed
}

var _ app.Store = (*Store)(nil)

// New migrates db to the consent schema and returns the store, which
// writes events to outbox (in db: events.NewOutbox, after events.Migrate).
// Call Run for the life of the service so watchers get changes. A store
// without an outbox (nil) reads, and fails every write of an event.
func New(ctx context.Context, db *storage.DB, outbox events.Outbox, log *slog.Logger) (*Store, error) {
	if err := db.MigrateDir(ctx, migrationFiles, "migrations", migrationsTable); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{queries: queries{q: db.DB, db: db}, db: db, outbox: outbox, log: log, feed: newFeed()}
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
	return s.runTx(ctx, fn)
}

// IdempotentTx is Tx, run again also when the connection to the database
// was lost under it (storage.Idempotent), as app.Store allows.
func (s *Store) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn, storage.Idempotent())
}

func (s *Store) runTx(ctx context.Context, fn func(app.Tx) error, opts ...storage.TxOption) error {
	var changes []app.Change
	err := s.retry(ctx, func() error {
		return s.db.InTx(ctx, func(sqlTx *sql.Tx) error {
			t := &tx{queries: queries{q: sqlTx, db: s.db}, sqlTx: sqlTx, outbox: s.outbox,
				locked: map[linkKey]app.State{}, lockedOptIns: map[linkKey]app.OptInState{}}
			if err := fn(t); err != nil {
				return err
			}
			changes = t.changes
			return s.notify(ctx, sqlTx, changes)
		}, opts...)
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

// AppendAccess appends a batch of entries to their users' chains in one
// transaction. It locks every chain head of users, creating the missing
// ones, in user order, so that batches running at once (on other replicas)
// queue rather than deadlock; hands them to build; checks that each entry
// build returns follows its user's head; inserts them and moves each head
// to its user's last entry, with the signature build made of it (keeping
// the head's signature otherwise). On SQLite the transaction's write lock
// already serialises batches. The primary key (user, sequence) refuses a
// forked chain whatever happens, and such a conflict is retried.
func (s *Store) AppendAccess(ctx context.Context, users []string, build func(map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error)) error {
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	if len(users) == 0 {
		return nil
	}
	// appended is each user's last entry as the previous run of the
	// transaction appended it. A run after a lost connection (which may
	// have come at COMMIT) first looks for those entries: found, that run
	// committed and this one adds nothing, so a retried append is applied
	// once and the chain gets no copy of the batch.
	var appended map[string]app.ChainHead
	return s.retry(ctx, func() error {
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			heads, err := lockHeads(ctx, tx, users)
			if err != nil {
				return err
			}
			if appended != nil {
				if done, err := hasEntries(ctx, tx, appended); err != nil || done {
					return err
				}
				appended = nil
			}
			entries, sigs, err := build(maps.Clone(heads))
			if err != nil {
				return err
			}
			moved := map[string]app.ChainHead{}
			for _, e := range entries {
				h, ok := moved[e.User]
				if !ok {
					if h, ok = heads[e.User]; !ok {
						return fmt.Errorf("append access: entry of user %q, whose chain head is not locked", e.User)
					}
				}
				prev := h.Hash
				if h.Sequence == 0 {
					prev = app.GenesisHash
				}
				if e.Sequence != h.Sequence+1 || e.PreviousHash != prev {
					return fmt.Errorf("append access: entry %d of user %q does not follow its chain head %d", e.Sequence, e.User, h.Sequence)
				}
				moved[e.User] = app.ChainHead{Sequence: e.Sequence, Hash: e.Hash, Signed: h.Signed}
			}
			if err := signMoved(moved, sigs); err != nil {
				return err
			}
			appended = moved
			if err := insertEntries(ctx, tx, s.db.Dialect(), entries); err != nil {
				return err
			}
			return moveHeads(ctx, tx, s.db.Dialect(), moved)
		}, storage.Idempotent())
	})
}

// hasEntries reports whether the log holds every entry of last, each
// user's at its sequence with its hash: a batch that committed. None of
// them is a batch that did not; some but not all cannot happen, as a batch
// is one transaction.
func hasEntries(ctx context.Context, tx *sql.Tx, last map[string]app.ChainHead) (bool, error) {
	found := 0
	for u, h := range last {
		var hash string
		err := tx.QueryRowContext(ctx, `SELECT hash FROM access_log WHERE user_id = $1 AND sequence = $2`, u, h.Sequence).Scan(&hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return false, fmt.Errorf("look for appended entries: %w", err)
		case hash == h.Hash:
			found++
		}
	}
	if found != 0 && found != len(last) {
		return false, fmt.Errorf("look for appended entries: %d of %d found", found, len(last))
	}
	return found == len(last), nil
}

// rowsPerStatement bounds the rows of one multi-row statement, well under
// both engines' limit on bound parameters.
const rowsPerStatement = 100

// lockHeads locks the chain heads of users (sorted, distinct), inserting
// a zero head for those without one, and returns them. Each row is locked
// as the statement reaches it, so in the order of users: an upsert whose
// no-op update locks an existing row like SELECT ... FOR UPDATE would.
func lockHeads(ctx context.Context, tx *sql.Tx, users []string) (map[string]app.ChainHead, error) {
	heads := make(map[string]app.ChainHead, len(users))
	for chunk := range slices.Chunk(users, rowsPerStatement) {
		var a args
		rows := make([]string, len(chunk))
		for i, u := range chunk {
			rows[i] = "(" + a.add(u) + ", 0, '')"
		}
		r, err := tx.QueryContext(ctx, `INSERT INTO access_log_heads (user_id, sequence, hash) VALUES `+strings.Join(rows, ", ")+`
			ON CONFLICT (user_id) DO UPDATE SET sequence = access_log_heads.sequence
			RETURNING user_id, sequence, hash, `+signatureColumns, a...)
		if err != nil {
			return nil, fmt.Errorf("lock chain heads: %w", err)
		}
		for r.Next() {
			var (
				u string
				h app.ChainHead
			)
			if err := r.Scan(&u, &h.Sequence, &h.Hash, &h.Signed.Sequence, &h.Signed.KeyVersion, &h.Signed.Value); err != nil {
				_ = r.Close()
				return nil, fmt.Errorf("lock chain heads: %w", err)
			}
			heads[u] = h
		}
		if err := r.Close(); err != nil {
			return nil, fmt.Errorf("lock chain heads: %w", err)
		}
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("lock chain heads: %w", err)
		}
	}
	if len(heads) != len(users) {
		return nil, fmt.Errorf("lock chain heads: %d of %d heads returned", len(heads), len(users))
	}
	return heads, nil
}

// insertEntries inserts access log entries, many to a statement.
func insertEntries(ctx context.Context, tx *sql.Tx, dialect storage.Dialect, entries []app.AccessEntry) error {
	row := func(a *args, e app.AccessEntry) string {
		return "(" + strings.Join([]string{
			a.add(e.User), a.add(e.Sequence), a.add(storage.Micros(e.AccessTime)), a.add(e.ClientID), a.add(e.SubjectID),
			a.add(e.Method), a.add(e.Resource), a.add(e.Purpose.String()), a.add(e.Scope.String()), a.add(e.Outcome.String()),
			a.add(e.Reason), a.add(e.TraceID), a.add(e.PreviousHash), a.add(e.Hash),
		}, ", ") + ")"
	}
	if dialect == storage.SQLite {
		return execEach(ctx, tx, "insert access log entries", len(entries), `INSERT INTO access_log (`+accessColumns+`) VALUES `, "", func(a *args, i int) string {
			return row(a, entries[i])
		})
	}
	for chunk := range slices.Chunk(entries, rowsPerStatement) {
		var a args
		rows := make([]string, len(chunk))
		for i, e := range chunk {
			rows[i] = row(&a, e)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_log (`+accessColumns+`) VALUES `+strings.Join(rows, ", "), a...)
		if err != nil {
			return fmt.Errorf("insert access log entries: %w", err)
		}
	}
	return nil
}

// execEach runs, on SQLite, the statement prefix+row+suffix once per row
// i of n, prepared once; what names it in errors. SQLite's parser takes time quadratic in a statement's
// count of $N parameters: a batch of a hundred entries in one statement
// (1,400 parameters) spent more in the parser than in the insert (issue
// 15's profile). Within one transaction the rows cost no more syncs; on
// PostgreSQL, where each statement is a round trip, one statement per
// chunk of rows stays the cheaper way.
func execEach(ctx context.Context, tx *sql.Tx, what string, n int, prefix, suffix string, row func(a *args, i int) string) error {
	if n == 0 {
		return nil
	}
	var first args
	stmt, err := tx.PrepareContext(ctx, prefix+row(&first, 0)+suffix)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer stmt.Close()
	for i := range n {
		var a args
		row(&a, i)
		if _, err := stmt.ExecContext(ctx, a...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// moveHeads sets the chain heads and their signatures, all of them locked
// in this transaction.
func moveHeads(ctx context.Context, tx *sql.Tx, dialect storage.Dialect, heads map[string]app.ChainHead) error {
	users := slices.Sorted(maps.Keys(heads))
	row := func(a *args, u string) string {
		h := heads[u]
		return "(" + strings.Join([]string{a.add(u), a.add(h.Sequence), a.add(h.Hash),
			a.add(h.Signed.Sequence), a.add(h.Signed.KeyVersion), a.add(h.Signed.Value)}, ", ") + ")"
	}
	const (
		insert = `INSERT INTO access_log_heads (user_id, sequence, hash, ` + signatureColumns + `) VALUES `
		upsert = `
			ON CONFLICT (user_id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash,
			signed_sequence = excluded.signed_sequence, key_version = excluded.key_version, signature = excluded.signature`
	)
	if dialect == storage.SQLite {
		return execEach(ctx, tx, "move chain heads", len(users), insert, upsert, func(a *args, i int) string { return row(a, users[i]) })
	}
	for chunk := range slices.Chunk(users, rowsPerStatement) {
		var a args
		rows := make([]string, len(chunk))
		for i, u := range chunk {
			rows[i] = row(&a, u)
		}
		if _, err := tx.ExecContext(ctx, insert+strings.Join(rows, ", ")+upsert, a...); err != nil {
			return fmt.Errorf("move chain heads: %w", err)
		}
	}
	return nil
}

// ExpireLinks ends the links whose time is up, as of now.
func (s *Store) ExpireLinks(ctx context.Context, now time.Time) (int, error) {
	var changes []app.Change
	err := s.retry(ctx, func() error {
		changes = nil
		// Its UPDATEs pick only the links still to end: a run after one
		// that committed ends nothing more.
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			at := storage.Micros(now)
			for _, u := range []struct {
				query string
				state app.State
			}{
				// A reconfirmation's challenge still running ends with its link.
				{`UPDATE links SET state = 'EXPIRED', update_time = $1,
					sca_attempts_remaining = CASE WHEN sca_status = 'STARTED' THEN 0 ELSE sca_attempts_remaining END,
					sca_status = CASE WHEN sca_status = 'STARTED' THEN 'EXPIRED' ELSE sca_status END
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
		}, storage.Idempotent())
	})
	if err != nil {
		return 0, err
	}
	s.publishLocal(changes)
	return len(changes), nil
}

// DeleteIdempotency forgets the keys recorded before cutoff, and the
// holds of calls that died and lapsed before it.
func (s *Store) DeleteIdempotency(ctx context.Context, cutoff time.Time) (int, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_holds WHERE expire_time < $1`, storage.Micros(cutoff)); err != nil {
		return 0, fmt.Errorf("delete idempotency key holds: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE create_time < $1`, storage.Micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// linkKey names a link, or a partner opt-in, within a transaction.
type linkKey struct{ user, id string }

// tx is app.Tx over one SQL transaction. It remembers the state of each
// link and partner opt-in it locked, to tell which saves change a state.
type tx struct {
	queries
	sqlTx        *sql.Tx
	outbox       events.Outbox
	locked       map[linkKey]app.State
	lockedOptIns map[linkKey]app.OptInState
	changes      []app.Change
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
		$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
		$24, $25)`, linkValues(l)...)
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
		expiry_warn_time = $21, revoked_by_bank = $22, client_id = $23, login_hash = $24, decoy = $25
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
