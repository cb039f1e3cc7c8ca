// Package store keeps the support service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): conversations and their messages,
// CreateConversation's idempotency keys, and the bank event leases with
// their cursors (conversations.go, messages.go, leases.go); the fraud
// files keep fraud reports, cards and alerts beside them (fraud*.go,
// migrations/00002_fraud.sql). Events go to the platform's outbox in the
// transaction of the change they report. It implements app.Store.
//
// Deletions are real DELETEs: a deleted conversation's messages and keys
// go with it (ON DELETE CASCADE).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/supportpb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records which migrations ran; the support service's
// own, so services can share a PostgreSQL database.
const migrationsTable = "support_schema_migrations"

// Source is the events.Event.Source of the support service's events.
const Source = "support"

// Store is the SQL implementation of app.Store. It is safe for concurrent
// use.
type Store struct {
	db     *storage.DB
	outbox events.Outbox
}

var _ app.Store = (*Store)(nil)

// New migrates db to the support schema and returns the store, writing
// events to outbox (whose table must be migrated too: events.Migrate).
func New(ctx context.Context, db *storage.DB, outbox events.Outbox) (*Store, error) {
	if outbox == nil {
		return nil, errors.New("support store: an outbox is required")
	}
	if err := db.MigrateDir(ctx, migrationFiles, "migrations", migrationsTable); err != nil {
		return nil, err
	}
	return &Store{db: db, outbox: outbox}, nil
}

// conflict wraps a failed write's error with what it was writing, and
// marks a write that lost to a concurrent one as app.ErrConflict.
func conflict(what string, err error) error {
	return fmt.Errorf("%s: %w", what, storage.MarkRetryable(err, app.ErrConflict))
}

// Tx runs fn in one transaction. fn's own errors come back as they are; a
// transaction the database failed for a concurrent one is ErrConflict.
func (s *Store) Tx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn)
}

// IdempotentTx is Tx, run again when the connection to the database was
// lost under it (storage.Idempotent), as app.Store allows.
func (s *Store) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn, storage.Idempotent())
}

func (s *Store) runTx(ctx context.Context, fn func(app.Tx) error, opts ...storage.TxOption) error {
	err := s.db.InTx(ctx, func(t *sql.Tx) error { return fn(&tx{q: t, sqlTx: t, outbox: s.outbox, db: s.db}) }, opts...)
	return storage.MarkRetryable(err, app.ErrConflict)
}

// tx is one transaction of the support logic. The fraud files add their
// methods to it in fraud*.go.
type tx struct {
	q      storage.Queryer
	sqlTx  *sql.Tx
	outbox events.Outbox
	db     *storage.DB
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// AddEvent writes an event to the outbox, its payload as
// internal/supportpb encodes it. On PostgreSQL the outbox serialises the
// user's event writes from here to the commit, so callers add events
// after their other writes.
func (t *tx) AddEvent(ctx context.Context, e app.Event) error {
	data, err := supportpb.EventData(e)
	if err != nil {
		return err
	}
	return t.outbox.Add(ctx, t.sqlTx, events.Event{
		ID: e.ID, Type: e.Type, Source: Source, User: e.User, Client: e.Client, Resource: e.Resource, Time: e.Time, Data: data,
	})
}
