package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
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

// TestAKeyedRegistrationSurvivesALostConnection: PostgreSQL ends the
// connection under a partner's keyed registration, as in a restart. The
// registration (IdempotentTx) runs again on a fresh connection: lost
// before its commit, it is stored; lost after a run that committed, the
// second run finds the shipment (as track does, under the parcel's lock)
// and conflicts on the key, from which the registration answers
// (app.RegisterForUser's retry). Either way the caller gets the answer,
// and the shipment, its key and its event are stored once.
func TestAKeyedRegistrationSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	db, lose := losable(t)
	st := open(t, db)
	tests := []struct {
		name string
		// committed commits the registration elsewhere before the
		// connection is lost: the first run's COMMIT went through, its
		// answer not.
		committed bool
		wantErr   error
	}{
		{name: "lost before the commit", wantErr: nil},
		{name: "lost after a run that committed", committed: true, wantErr: app.ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := shipment("alice", "sh-lost-"+string(rune('a'+i)), "1Z999AA1012345678"+string(rune('0'+i)), "ups")
			k := app.IdempotencyKey{Client: "carrier-partner", Key: "key-lost-" + string(rune('a'+i)), User: sh.User,
				RequestHash: "rh", ShipmentID: sh.ID, TrackingNumber: sh.TrackingNumber, Time: t0}
			runs := 0
			err := st.IdempotentTx(t.Context(), func(tx app.Tx) error {
				runs++
				if runs == 1 && tt.committed {
					if err := st.Tx(t.Context(), func(other app.Tx) error { return writeRegistration(t.Context(), other, sh, k, 0) }); err != nil {
						t.Fatal(err)
					}
					lose()
					return nil
				}
				if err := writeRegistration(t.Context(), tx, sh, k, runs); err != nil {
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
			got, err := st.Recall(t.Context(), k.Client, "", k.Key)
			if err != nil {
				t.Fatalf("Recall = %v, want the key stored", err)
			}
			if got.ShipmentID != sh.ID {
				t.Errorf("key answers shipment %q, want %q", got.ShipmentID, sh.ID)
			}
			if n := count(t, db, "shipments", "tracking_number = $1", sh.TrackingNumber); n != 1 {
				t.Errorf("%d shipments stored, want 1", n)
			}
			if n := count(t, db, "events_outbox", "resource = $1 AND event_type = $2", sh.Name(), app.EventCreated); n != 1 {
				t.Errorf("%d created events, want 1", n)
			}
		})
	}
}

// writeRegistration is a registration's transaction as RegisterForUser
// runs it: the user's shipment of the parcel, read under the parcel's
// lock, or a new one with its created event (an id of its own each run,
// as the service makes); and the key.
func writeRegistration(ctx context.Context, tx app.Tx, sh app.Shipment, k app.IdempotencyKey, run int) error {
	if err := tx.LockParcel(ctx, sh.TrackingNumber); err != nil {
		return err
	}
	mine, err := tx.UserShipments(ctx, sh.User, sh.TrackingNumber)
	if err != nil {
		return err
	}
	if len(mine) == 0 {
		if err := tx.InsertShipment(ctx, sh); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, app.Event{ID: fmt.Sprintf("ev-%s-%d", sh.ID, run), Type: app.EventCreated, User: sh.User, Client: sh.Client, Shipment: sh, Time: t0}); err != nil {
			return err
		}
	}
	return tx.Remember(ctx, k)
}
