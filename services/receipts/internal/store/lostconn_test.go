package store_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// losable opens a fresh PostgreSQL database and returns it with lose,
// which ends every connection the database's pool holds, from another
// connection, as a PostgreSQL restart does, and waits until they are
// gone. It skips the test when no PostgreSQL is given.
func losable(t *testing.T) (*storage.DB, func()) {
	t.Helper()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	url := storagetest.PostgresDatabase(t, admin)
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

// TestAKeyedIngestSurvivesALostConnection: PostgreSQL ends the
// connection under an ingest's transaction, as in a restart. The ingest
// (IdempotentTx) runs again on a fresh connection: lost before its
// commit, it is stored; lost after a run that committed, the second run
// conflicts on the partner's receipt id and the ingest answers from the
// key (app.Ingest's retry). Either way the caller gets the answer and the
// receipt, its key and its event are stored once.
func TestAKeyedIngestSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	db, lose := losable(t)
	st := open(t, db)
	tests := []struct {
		name string
		// committed commits the ingest elsewhere before the connection
		// is lost: the first run's COMMIT went through, its answer not.
		committed bool
		wantErr   error
	}{
		{name: "lost before the commit", wantErr: nil},
		{name: "lost after a run that committed", committed: true, wantErr: app.ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := partnerReceipt("alice", "r-lost-"+string(rune('a'+i)), "shop", "pr-lost-"+string(rune('a'+i)), content("Shop", t0, 1999))
			key := "key-lost-" + string(rune('a'+i))
			runs := 0
			err := st.IdempotentTx(t.Context(), func(tx app.Tx) error {
				runs++
				if runs == 1 && tt.committed {
					mustIngest(t, st, r, key)
					lose()
					return nil
				}
				if err := writeIngest(t.Context(), tx, r, key); err != nil {
					return err
				}
				if runs == 1 {
					lose()
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("IdempotentTx = %v, want %v", err, tt.wantErr)
			}
			if runs != 2 {
				t.Errorf("ran %d times, want 2", runs)
			}
			k, err := st.Recall(t.Context(), r.Partner, key)
			if err != nil {
				t.Fatalf("Recall = %v, want the key stored", err)
			}
			if k.Answer.ReceiptID != r.PartnerReceiptID || k.Answer.Version != 1 {
				t.Errorf("key answers %+v, want version 1 of %s", k.Answer, r.PartnerReceiptID)
			}
			if n := count(t, db, "receipts", "partner_receipt_id = $1", r.PartnerReceiptID); n != 1 {
				t.Errorf("%d receipts stored, want 1", n)
			}
			if got := outboxTypes(t, db, r.Name()); len(got) != 1 {
				t.Errorf("events %v, want the created event once", got)
			}
		})
	}
}

// writeIngest is ingest's transaction: the row, its job, its key and its
// created event.
func writeIngest(ctx context.Context, tx app.Tx, r app.Receipt, key string) error {
	if err := tx.Insert(ctx, r); err != nil {
		return err
	}
	if err := tx.QueueMatch(ctx, app.MatchJob{User: r.User, ReceiptID: r.ID, Due: t0, Deadline: t0.Add(14 * 24 * time.Hour)}); err != nil {
		return err
	}
	k := app.IdempotencyKey{Partner: r.Partner, Key: key, User: r.User, PartnerUserID: r.PartnerUserID, RequestHash: "rh-" + key,
		Answer: app.IngestResult{ReceiptID: r.PartnerReceiptID, Version: r.Version, CreateTime: r.CreateTime}, Time: t0}
	if err := tx.Remember(ctx, k); err != nil {
		return err
	}
	return tx.AddEvent(ctx, app.Event{ID: "ev-" + r.ID, Type: app.EventCreated, User: r.User, Client: r.Client, Receipt: r.Name(), Time: t0})
}
