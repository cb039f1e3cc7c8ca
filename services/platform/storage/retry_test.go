package storage_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// TestAnIdempotentWriteSurvivesALostConnection terminates the PostgreSQL
// backend under a transaction, from another connection, as a restart or
// an administrator does: an idempotent write runs again on a fresh
// connection and is applied once; any other write fails, as it may not
// know whether it was applied.
func TestAnIdempotentWriteSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := storagetest.OpenPostgres(t, admin)
	killer, err := storage.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = killer.Close() })
	if _, err := db.ExecContext(ctx, `CREATE TABLE writes (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	// terminate ends the backend pid and waits until it is gone.
	terminate := func(pid int) {
		if _, err := killer.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		for {
			var n int
			if err := killer.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tests := []struct {
		name     string
		opts     []storage.TxOption
		wantRuns int
		wantRows int
	}{
		{"idempotent: run again, applied once", []storage.TxOption{storage.Idempotent()}, 2, 1},
		{"not idempotent: not run again", nil, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.name
			runs := 0
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				runs++
				var pid int
				if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
					return err
				}
				if runs == 1 {
					terminate(pid)
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO writes (k) VALUES ($1) ON CONFLICT (k) DO NOTHING`, key)
				return err
			}, tt.opts...)
			if tt.wantRows == 1 && err != nil {
				t.Fatalf("InTx = %v, want the write applied", err)
			}
			if tt.wantRows == 0 && !storage.IsConnectionError(err) {
				t.Fatalf("InTx = %v, want the lost connection", err)
			}
			// What the caller of a service that passes apierr errors on
			// hears: UNAVAILABLE with a retry hint, not INTERNAL.
			if tt.wantRows == 0 && (status.Code(err) != codes.Unavailable ||
				apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_STORAGE_UNAVAILABLE || apierr.RetryDelay(err) <= 0) {
				t.Fatalf("InTx = %v (code %v, reason %v), want UNAVAILABLE STORAGE_UNAVAILABLE with a retry hint",
					err, status.Code(err), apierr.Reason(err))
			}
			if runs != tt.wantRuns {
				t.Errorf("ran %d times, want %d", runs, tt.wantRuns)
			}
			var rows int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM writes WHERE k = $1`, key).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != tt.wantRows {
				t.Errorf("%d rows, want %d", rows, tt.wantRows)
			}
		})
	}
}

func TestIsConnectionError(t *testing.T) {
	t.Parallel()
	if storage.IsConnectionError(context.DeadlineExceeded) || storage.IsConnectionError(nil) || storage.IsConnectionError(sql.ErrNoRows) {
		t.Error("a deadline, no error or no rows read as a lost connection")
	}
	for _, err := range []error{nil, sql.ErrNoRows, context.DeadlineExceeded} {
		if got := storage.MarkUnavailable(err); got != err {
			t.Errorf("MarkUnavailable(%v) = %v, want it unchanged", err, got)
		}
	}
}
