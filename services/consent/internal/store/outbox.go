package store

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// InsertExpiryWarning writes the event to the outbox as the contract's
// ConsentExpiryWarning in protojson, for a relay to publish.
func (t *tx) InsertExpiryWarning(ctx context.Context, w app.ExpiryWarning) error {
	msg := &consentv1.ConsentExpiryWarning{
		EventId:         w.EventID,
		Link:            names.Link{User: w.User, ID: w.LinkID}.String(),
		BankId:          w.BankID,
		BankDisplayName: w.BankDisplayName,
		Scopes:          w.Scopes,
		ExpireTime:      timestamppb.New(w.ExpireTime),
		EventTime:       timestamppb.New(w.EventTime),
	}
	payload, err := protojson.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode expiry warning: %w", err)
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO outbox (event_id, event_type, payload, create_time) VALUES ($1, $2, $3, $4)`,
		w.EventID, string(msg.ProtoReflect().Descriptor().FullName()), string(payload), storage.Micros(w.EventTime))
	if err != nil {
		return fmt.Errorf("insert expiry warning: %w", err)
	}
	return nil
}
