package storagetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// Losable opens a fresh PostgreSQL database and returns it with lose,
// which ends every connection the database's pool holds, from another
// connection, as a PostgreSQL restart does, and waits until they are
// gone. It skips the test when no PostgreSQL is given.
func Losable(t *testing.T) (*storage.DB, func()) {
	t.Helper()
	admin := os.Getenv(PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", PostgresURLEnv)
	}
	url := PostgresDatabase(t, admin)
	db, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	killer, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the database is dropped (cleanups run last first).
	t.Cleanup(func() { _, _ = db.Close(), killer.Close() })
	killer.SetMaxOpenConns(1) // its own connection is the one spared
	return db, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var pids []int64
		rows, err := killer.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var pid int64
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		// Waiting for those only: a pool may already be connecting again.
		for _, pid := range pids {
			if _, err := killer.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			for {
				var n int
				if err := killer.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}
