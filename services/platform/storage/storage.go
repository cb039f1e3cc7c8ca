// Package storage opens a service's database and runs its migrations: an
// embedded SQLite file by default (the pure-Go modernc.org/sqlite driver, in
// WAL mode with a busy timeout and foreign keys on), or PostgreSQL through
// pgx when the URL says postgres://. One set of migrations serves both.
//
// Queries are written once for both dialects. Both drivers bind $1, $2, ...
// placeholders, and both speak ON CONFLICT, RETURNING and partial indexes.
// Times are stored as BIGINT microseconds since the Unix epoch (see
// [Micros]) and enums as TEXT, so no type differs between the two. What does
// differ has a helper here: row locks ([DB.ForUpdate]), constraint and
// conflict errors ([IsUniqueViolation], [IsRetryable], and
// [MarkRetryable], which turns a conflict into a service's own error).
// A write that may run twice ([Idempotent]) is run again when the
// connection to the database was lost under it ([IsConnectionError]), as
// in a PostgreSQL restart; a lost connection that remains is
// UNAVAILABLE (STORAGE_UNAVAILABLE) for gRPC ([MarkUnavailable]).
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the database engine behind a DB.
type Dialect string

// The supported dialects.
const (
	// SQLite is the embedded default: one file in the service's data dir.
	SQLite Dialect = "sqlite"
	// Postgres is PostgreSQL, for production and horizontal scaling.
	Postgres Dialect = "postgres"
)

// sqliteBusyTimeout is how long a SQLite statement waits for another
// connection's write lock before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 5 * time.Second

// DB is an open database and its dialect. The embedded *sql.DB is safe for
// concurrent use.
type DB struct {
	*sql.DB
	dialect Dialect
}

// Dialect reports which engine db talks to.
func (db *DB) Dialect() Dialect { return db.dialect }

// ForUpdate returns the clause that locks the rows a SELECT reads until the
// transaction ends: " FOR UPDATE" on PostgreSQL, "" on SQLite, where a
// write transaction already holds the database's single write lock from
// its BEGIN (see [Open]).
func (db *DB) ForUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// SQLiteURL is the URL of the SQLite database name in dir, the default a
// service offers for its --database-url.
func SQLiteURL(dir, name string) string {
	return "sqlite:" + filepath.Join(dir, name+".db")
}

// Open connects to the database rawURL names and checks that it answers:
//
//	sqlite:/var/lib/bankbridge/consent.db   (or sqlite:relative/path.db)
//	postgres://user:pass@host:5432/db?sslmode=verify-full   (or postgresql://)
//
// A SQLite file is created, with its directory (mode 0700), when missing.
// Every SQLite connection runs in WAL mode, synchronous FULL, with foreign
// keys on and a busy timeout, and begins transactions IMMEDIATE, so a transaction takes the
// write lock at BEGIN rather than failing to upgrade to it half-way.
// Errors never quote the URL's password.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database URL %q: not a URL", Redact(rawURL))
	}
	var db *DB
	switch u.Scheme {
	case "postgres", "postgresql":
		db, err = openPostgres(rawURL)
	case "sqlite":
		db, err = openSQLite(u)
	default:
		return nil, fmt.Errorf("database URL %q: scheme must be sqlite or postgres", Redact(rawURL))
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", Redact(rawURL), err)
	}
	return db, nil
}

func openPostgres(rawURL string) (*DB, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse errors can quote the URL; keep only our own words.
		return nil, fmt.Errorf("database URL %q: not a valid PostgreSQL URL", Redact(rawURL))
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(10)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	return &DB{DB: sqlDB, dialect: Postgres}, nil
}

func openSQLite(u *url.URL) (*DB, error) {
	path := u.Opaque
	if path == "" {
		path = u.Path
	}
	if u.Host != "" || u.User != nil || path == "" {
		return nil, fmt.Errorf("database URL %q: want sqlite:/path/to/file.db", u.Redacted())
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("database URL %q: SQLite takes no parameters; its settings are fixed", u.Redacted())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL, not WAL's common NORMAL: NORMAL may lose the last commits on a
	// power cut, and an access log entry must be durable before its data
	// is served. WAL keeps this cheap (one sync of the log per commit), and
	// group commit (the consent appender) shares it among many appends.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Readers run in parallel under WAL; writers queue on the busy timeout.
	sqlDB.SetMaxOpenConns(8)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{DB: sqlDB, dialect: SQLite}, nil
}

// Redact returns rawURL with its password replaced, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "[unparseable URL]"
	}
	return u.Redacted()
}

// Migrate applies every migration in fsys (goose SQL files at its root,
// such as 00001_init.sql) that the database has not seen. table records
// which were applied; give each service its own, so services can share one
// PostgreSQL database. On PostgreSQL an advisory lock keyed by table lets
// replicas that start together take turns.
func (db *DB) Migrate(ctx context.Context, fsys fs.FS, table string) error {
	if !isIdent(table) {
		return fmt.Errorf("migrate: table %q is not a lowercase SQL identifier", table)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(table),
		goose.WithDisableGlobalRegistry(true),
	}
	dialect := goose.DialectSQLite3
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
		h := fnv.New64a()
		_, _ = h.Write([]byte(table))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64() >> 1)))
		if err != nil {
			return fmt.Errorf("migrate %s: %w", table, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return nil
}

// MigrateDir is [DB.Migrate] for the migrations in directory dir of fsys:
// a service embeds its own and runs them at startup with
//
//	//go:embed migrations/*.sql
//	var migrationFiles embed.FS
//
//	err := db.MigrateDir(ctx, migrationFiles, "migrations", "receipts_schema_migrations")
func (db *DB) MigrateDir(ctx context.Context, fsys fs.FS, dir, table string) error {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return db.Migrate(ctx, sub, table)
}

// InTx runs fn in a transaction and commits it when fn returns nil; it rolls
// back when fn returns an error or panics. With [Idempotent], a transaction
// that lost its connection to the database is run again (retry.go). A
// transaction that lost its connection (for good) returns an error that
// is also UNAVAILABLE (STORAGE_UNAVAILABLE) with a retry hint for gRPC and
// apierr, its text and chain unchanged.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error, opts ...TxOption) error {
	var o txOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.idempotent {
		return MarkUnavailable(db.inTx(ctx, fn))
	}
	return MarkUnavailable(db.retryLostConnection(ctx, fn))
}

// inTx is one run of InTx.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint violation.
func IsUniqueViolation(err error) bool {
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pg.Code == "23505"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsRetryable reports whether a transaction failed only because another one
// got in its way, so that running it again may succeed: a unique violation
// on a key it computed from what it read, a PostgreSQL serialization
// failure or deadlock, or SQLite still busy after the busy timeout.
func IsRetryable(err error) bool {
	if IsUniqueViolation(err) {
		return true
	}
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pg.Code == "40001" || pg.Code == "40P01"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		primary := se.Code() & 0xff
		return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
	}
	return false
}

// MarkRetryable returns err marked as the caller's conflict error when
// [IsRetryable] says it lost to a concurrent write, so that
// errors.Is(result, conflict) holds and the caller can retry; the message
// reads "<conflict>: <err>" and err stays in the chain. Any other err,
// nil included, and one already marked, comes back as it is. A store
// wraps its writes' and its transactions' errors with it, turning the
// database's conflicts into the sentinel its own port documents:
//
//	return storage.MarkRetryable(s.db.InTx(ctx, fn), app.ErrConflict)
func MarkRetryable(err, conflict error) error {
	if err == nil || errors.Is(err, conflict) || !IsRetryable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", conflict, err)
}

// Micros converts t to the column form of a time: microseconds since the
// Unix epoch. PostgreSQL keeps no finer precision, so neither do we.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts a time column back, in UTC.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// NullMicros is Micros for a nullable column: the zero time is NULL.
func NullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: Micros(t), Valid: true}
}

// FromNullMicros is FromMicros for a nullable column: NULL is the zero time.
func FromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMicros(v.Int64)
}

// isIdent reports whether s is safe as an unquoted SQL identifier.
func isIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
	}) < 0
}

// Queryer is a *sql.DB or a *sql.Tx: what a store's queries run on, inside
// a transaction or not.
type Queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// NullString is s, or NULL when s is empty.
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Placeholders returns "$from, $from+1, ..." n times, for an IN (...) list;
// both dialects take $n.
func Placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(ps, ", ")
}
