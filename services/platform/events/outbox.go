package events

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
)

//go:embed migrations
var migrationFiles embed.FS

// MigrationsTable records which of the outbox's migrations ran: its own,
// beside each service's.
const MigrationsTable = "events_schema_migrations"

// Migrate adds the outbox table (events_outbox) to db, or brings it up to
// date. A service calls it before its first Add; bootstrap does for a
// service that needs Storage and Bus.
func Migrate(ctx context.Context, db *storage.DB) error {
	sub, err := fs.Sub(migrationFiles, "migrations/"+string(db.Dialect()))
	if err != nil {
		return fmt.Errorf("events migrations: %w", err)
	}
	return db.Migrate(ctx, sub, MigrationsTable)
}

// Advisory lock spaces (the first key of PostgreSQL's two-key advisory
// locks), so the outbox's locks meet nobody else's.
const (
	lockSpaceUser  int32 = 0x62626575 // "bbeu": one user's outbox writes
	lockSpaceRelay int32 = 0x62626572 // "bber": the relay's lease
)

// SQLOutbox is the Outbox in the service's own database (SQLite or
// PostgreSQL), migrated by Migrate. A Relay publishes what it holds.
type SQLOutbox struct {
	db  *storage.DB
	now func() time.Time
	// wake tells this process's relay that a row may be coming.
	wake chan struct{}
	// lease makes a SQLite database's relays in this process take turns
	// (on PostgreSQL an advisory lock does, across processes).
	lease chan struct{}
}

var _ Outbox = (*SQLOutbox)(nil)

// NewOutbox returns the outbox in db; Migrate must have run.
func NewOutbox(db *storage.DB) *SQLOutbox {
	return &SQLOutbox{db: db, now: time.Now, wake: make(chan struct{}, 1), lease: make(chan struct{}, 1)}
}

// Add writes e in tx, the transaction of the change it reports: the event
// is published if and only if tx commits. e.Time defaults to now. An event
// whose ID is in the outbox already fails with a unique violation
// (storage.IsUniqueViolation).
//
// Events of one user are published in the order their transactions
// commit. On PostgreSQL, Add makes the user's transactions take turns from
// here to their commit (an advisory lock), so call it last in the
// transaction. On SQLite, transactions take turns anyway.
func (o *SQLOutbox) Add(ctx context.Context, tx *sql.Tx, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	now := o.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	if o.db.Dialect() == storage.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`, lockSpaceUser, userLockKey(e.User)); err != nil {
			return fmt.Errorf("events: outbox lock: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO events_outbox
		(event_id, user_id, event_type, source, client_id, resource, event_time, data, audience, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.User, e.Type, e.Source, e.Client, e.Resource, storage.Micros(e.Time), string(e.Data),
		strings.Join(e.Audience, "\n"), storage.Micros(now))
	if err != nil {
		return fmt.Errorf("events: outbox insert %q: %w", e.ID, err)
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// userLockKey is the second key of a user's advisory lock. Two users may
// share one: their writes then take turns, which costs a little time and
// breaks nothing.
func userLockKey(user string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	return int32(h.Sum32())
}
