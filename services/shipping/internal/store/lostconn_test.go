package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
)

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
	db, lose := storagetest.Losable(t)
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
