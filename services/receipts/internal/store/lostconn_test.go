package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// TestAKeyedIngestSurvivesALostConnection: PostgreSQL ends the
// connection under an ingest's transaction, as in a restart. The ingest
// (IdempotentTx) runs again on a fresh connection: lost before its
// commit, it is stored; lost after a run that committed, the second run
// conflicts on the partner's receipt id and the ingest answers from the
// key (app.Ingest's retry). Either way the caller gets the answer and the
// receipt, its key and its event are stored once.
func TestAKeyedIngestSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	db, lose := storagetest.Losable(t)
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
