package storage_test

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// embedded holds the test migrations the way a service embeds its own.
//
//go:embed testdata/migrations/*.sql
var embedded embed.FS

func migrations(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(os.DirFS("testdata"), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// migrated returns db with the test schema and one owner, "o".
func migrated(t *testing.T, db *storage.DB) *storage.DB {
	t.Helper()
	ctx := t.Context()
	if err := db.Migrate(ctx, migrations(t), "storagetest_migrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO owners (name) VALUES ($1)", "o"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestContract(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)

		t.Run("migrate twice is a no-op", func(t *testing.T) {
			if err := db.Migrate(t.Context(), migrations(t), "storagetest_migrations"); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("dollar placeholders and micros round-trip", func(t *testing.T) {
			ctx := t.Context()
			at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
			if _, err := db.ExecContext(ctx, "INSERT INTO items (id, owner, n, at) VALUES ($1, $2, $3, $4)",
				"a", "o", 7, storage.NullMicros(at)); err != nil {
				t.Fatal(err)
			}
			var n int64
			var got sql.NullInt64
			// $2 before $1 and used twice: binding is by number, not by order.
			err := db.QueryRowContext(ctx, "SELECT n, at FROM items WHERE n = $2 AND id = $1 AND n >= $2", "a", 7).Scan(&n, &got)
			if err != nil {
				t.Fatal(err)
			}
			if want := at.Truncate(time.Microsecond); !storage.FromNullMicros(got).Equal(want) {
				t.Errorf("at = %v, want %v", storage.FromNullMicros(got), want)
			}
			if !storage.FromNullMicros(sql.NullInt64{}).IsZero() || storage.NullMicros(time.Time{}).Valid {
				t.Error("NULL does not map to the zero time")
			}
		})

		t.Run("unique violation is recognised", func(t *testing.T) {
			ctx := t.Context()
			insert := "INSERT INTO items (id, owner, n) VALUES ($1, 'o', 1)"
			if _, err := db.ExecContext(ctx, insert, "dup"); err != nil {
				t.Fatal(err)
			}
			_, err := db.ExecContext(ctx, insert, "dup")
			if !storage.IsUniqueViolation(err) || !storage.IsRetryable(err) {
				t.Fatalf("second insert: %v; want a unique violation", err)
			}
		})

		t.Run("foreign keys are enforced", func(t *testing.T) {
			_, err := db.ExecContext(t.Context(), "INSERT INTO items (id, owner, n) VALUES ('fk', 'nobody', 1)")
			if err == nil {
				t.Fatal("insert with an unknown owner succeeded")
			}
			if storage.IsUniqueViolation(err) {
				t.Fatalf("foreign key error %v taken for a unique violation", err)
			}
		})

		t.Run("InTx rolls back on error", func(t *testing.T) {
			ctx := t.Context()
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO items (id, owner, n) VALUES ('rb', 'o', 1)"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx = %v, want %v", err, boom)
			}
			var count int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items WHERE id = 'rb'").Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != 0 {
				t.Error("the failed transaction's insert was kept")
			}
		})

		t.Run("concurrent read-modify-write under ForUpdate loses no update", func(t *testing.T) {
			ctx := t.Context()
			if _, err := db.ExecContext(ctx, "INSERT INTO items (id, owner, n) VALUES ('counter', 'o', 0)"); err != nil {
				t.Fatal(err)
			}
			const writers, each = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for range writers {
				wg.Go(func() {
					for range each {
						errs <- db.InTx(ctx, func(tx *sql.Tx) error {
							var n int64
							q := "SELECT n FROM items WHERE id = 'counter'" + db.ForUpdate()
							if err := tx.QueryRowContext(ctx, q).Scan(&n); err != nil {
								return err
							}
							_, err := tx.ExecContext(ctx, "UPDATE items SET n = $1 WHERE id = 'counter'", n+1)
							return err
						})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			if err := db.QueryRowContext(ctx, "SELECT n FROM items WHERE id = 'counter'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != writers*each {
				t.Errorf("counter = %d, want %d", n, writers*each)
			}
		})
	})
}

func TestDialect(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	if db.Dialect() != storage.SQLite || db.ForUpdate() != "" {
		t.Errorf("SQLite: dialect %q, ForUpdate %q", db.Dialect(), db.ForUpdate())
	}
	var mode string
	if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	// A commit is on disk when it returns, power cut or not (audit before
	// data): 2 is FULL.
	var sync int
	if err := db.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 {
		t.Errorf("synchronous = %d, want 2 (FULL)", sync)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, want string
	}{
		{"unknown scheme", "mysql://u:hunter2@db/x", "scheme must be sqlite or postgres"},
		{"sqlite with host", "sqlite://host/x.db", "want sqlite:/path/to/file.db"},
		{"sqlite with parameters", "sqlite:/tmp/x.db?_pragma=foo", "SQLite takes no parameters"},
		{"sqlite without path", "sqlite:", "want sqlite:/path/to/file.db"},
		{"unreachable postgres", "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=2", "connect to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := storage.Open(t.Context(), tt.url)
			if err == nil {
				_ = db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	db, err := storage.Open(t.Context(), storage.SQLiteURL(dir, "svc"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, "svc.db")); err != nil {
		t.Error(err)
	}
}

func TestMigrateRefusesBadTable(t *testing.T) {
	t.Parallel()
	db := storagetest.OpenSQLite(t)
	err := db.Migrate(context.Background(), fstest.MapFS{}, "x; DROP TABLE y")
	if err == nil {
		t.Fatal("Migrate accepted a table name that is not an identifier")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := storage.Redact("postgres://app:s3cret@db:5432/consent")
	if strings.Contains(got, "s3cret") {
		t.Errorf("Redact kept the password: %s", got)
	}
}

func TestMigrateDir(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		tests := []struct {
			name, dir, table string
			// wantErr is what the error says, "" when Migrate succeeds.
			wantErr string
		}{
			{"a directory of migrations runs", "testdata/migrations", "dir_migrations", ""},
			{"running it again is a no-op", "testdata/migrations", "dir_migrations", ""},
			{"a directory without migrations", "testdata/none", "dir_none", "migrate dir_none: "},
			{"a directory name that is not a path", "../migrations", "dir_invalid", "migrate dir_invalid: "},
			{"a table that is not an identifier", "testdata/migrations", "x; DROP TABLE y", "is not a lowercase SQL identifier"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := db.MigrateDir(t.Context(), embedded, tt.dir, tt.table)
				if tt.wantErr == "" {
					if err != nil {
						t.Fatalf("MigrateDir = %v, want nil", err)
					}
					// The directory's migrations made the tables.
					if _, err := db.ExecContext(t.Context(), "SELECT COUNT(*) FROM items"); err != nil {
						t.Fatalf("after MigrateDir: %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("MigrateDir = %v, want an error saying %q", err, tt.wantErr)
				}
			})
		}
	})
}

func TestMarkRetryable(t *testing.T) {
	t.Parallel()
	errConflict := errors.New("conflicting write")
	boom := errors.New("boom")
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)
		ctx := t.Context()
		if _, err := db.ExecContext(ctx, "INSERT INTO items (id, owner, n) VALUES ('taken', 'o', 1)"); err != nil {
			t.Fatal(err)
		}
		duplicate := func(q storage.Queryer) error {
			_, err := q.ExecContext(ctx, "INSERT INTO items (id, owner, n) VALUES ('taken', 'o', 2)")
			return err
		}
		unknownOwner := func(q storage.Queryer) error {
			_, err := q.ExecContext(ctx, "INSERT INTO items (id, owner, n) VALUES ('orphan', 'nobody', 1)")
			return err
		}
		tests := []struct {
			name string
			// err is the error given to MarkRetryable.
			err func() error
			// wantMarked: the result is errConflict wrapping err, rather
			// than err itself.
			wantMarked bool
			// wantConflict: errors.Is(result, errConflict).
			wantConflict bool
		}{
			{"nil", func() error { return nil }, false, false},
			{"a write that lost to a concurrent one", func() error { return duplicate(db) }, true, true},
			{"a write that broke another constraint", func() error { return unknownOwner(db) }, false, false},
			{"the caller's own error", func() error { return boom }, false, false},
			{"a conflict already marked", func() error {
				return fmt.Errorf("insert item: %w: %w", errConflict, duplicate(db))
			}, false, true},
			{"a transaction that lost to a concurrent one", func() error {
				return db.InTx(ctx, func(tx *sql.Tx) error { return duplicate(tx) })
			}, true, true},
			{"a transaction whose fn failed", func() error {
				return db.InTx(ctx, func(*sql.Tx) error { return boom })
			}, false, false},
			{"a transaction that broke another constraint", func() error {
				return db.InTx(ctx, func(tx *sql.Tx) error { return unknownOwner(tx) })
			}, false, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := tt.err()
				got := storage.MarkRetryable(in, errConflict)
				if errors.Is(got, errConflict) != tt.wantConflict {
					t.Errorf("errors.Is(MarkRetryable(%v), errConflict) = %t, want %t", in, !tt.wantConflict, tt.wantConflict)
				}
				if !tt.wantMarked {
					if got != in {
						t.Errorf("MarkRetryable(%v) = %v, want it back as it is", in, got)
					}
					return
				}
				if !errors.Is(got, in) || !storage.IsUniqueViolation(got) {
					t.Errorf("MarkRetryable(%v) = %v, lost the database's error", in, got)
				}
				if want := errConflict.Error() + ": " + in.Error(); got.Error() != want {
					t.Errorf("MarkRetryable says %q, want %q", got, want)
				}
			})
		}
	})
}
