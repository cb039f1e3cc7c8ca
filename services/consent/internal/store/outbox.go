package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// Source is the events.Event.Source of the consent service's events.
const Source = "consent"

// AddExpiryWarning writes consent.link.expiring to the outbox in this
// transaction, its payload the contract's ConsentExpiryWarning in protojson.
func (t *tx) AddExpiryWarning(ctx context.Context, w app.ExpiryWarning) error {
	link := names.Link{User: w.User, ID: w.LinkID}.String()
	return t.addEvent(ctx, app.EventLinkExpiring, w.EventID, w.User, w.Client, link, w.EventTime, &consentv1.ConsentExpiryWarning{
		EventId:    w.EventID,
		Link:       link,
		BankId:     w.BankID,
		Scopes:     w.Scopes,
		ExpireTime: timestamppb.New(w.ExpireTime),
		EventTime:  timestamppb.New(w.EventTime),
	})
}

// AddRevocation writes consent.link.revoked to the outbox in this
// transaction, its payload the contract's ConsentLinkRevoked in protojson.
func (t *tx) AddRevocation(ctx context.Context, r app.Revocation) error {
	link := names.Link{User: r.User, ID: r.LinkID}.String()
	return t.addEvent(ctx, app.EventLinkRevoked, r.EventID, r.User, r.Client, link, r.EventTime, &consentv1.ConsentLinkRevoked{
		EventId:       r.EventID,
		Link:          link,
		BankId:        r.BankID,
		RevokedByBank: r.RevokedByBank,
		RevokeTime:    timestamppb.New(r.RevokeTime),
		EventTime:     timestamppb.New(r.EventTime),
	})
}

// addEvent writes one event, at when it was written, with payload as its
// data. On PostgreSQL the outbox serialises the user's event writes from
// here to the commit, so callers add events after their other writes.
func (t *tx) addEvent(ctx context.Context, typ, id, user, client, resource string, at time.Time, payload proto.Message) error {
	if t.outbox == nil {
		return errors.New("write event " + typ + ": the store has no outbox")
	}
	data, err := protojson.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", typ, err)
	}
	return t.outbox.Add(ctx, t.sqlTx, events.Event{
		ID: id, Type: typ, Source: Source, User: user, Client: client, Resource: resource, Time: at, Data: data,
	})
}
