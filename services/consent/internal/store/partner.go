package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

const optInColumns = `user_id, opt_in_id, partner, client_id, scopes, partner_user_id, state,
	create_time, revoke_time`

func scanOptIn(rows interface{ Scan(...any) error }) (app.PartnerOptIn, error) {
	var (
		o             app.PartnerOptIn
		scopes, state string
		create        int64
		revoke        sql.NullInt64
	)
	err := rows.Scan(&o.User, &o.ID, &o.Partner, &o.Client, &scopes, &o.PartnerUserID, &state, &create, &revoke)
	if err != nil {
		return app.PartnerOptIn{}, err
	}
	if o.Scopes, err = splitNames[commonv1.Scope](scopes, commonv1.Scope_value); err != nil {
		return app.PartnerOptIn{}, fmt.Errorf("partner opt-in scopes: %w", err)
	}
	o.State = app.ParseOptInState(state)
	o.CreateTime, o.RevokeTime = storage.FromMicros(create), storage.FromNullMicros(revoke)
	return o, nil
}

func (q queries) selectOptIns(ctx context.Context, where string, args ...any) ([]app.PartnerOptIn, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+optInColumns+` FROM partner_opt_ins `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("select partner opt-ins: %w", err)
	}
	defer rows.Close()
	var out []app.PartnerOptIn
	for rows.Next() {
		o, err := scanOptIn(rows)
		if err != nil {
			return nil, fmt.Errorf("select partner opt-ins: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select partner opt-ins: %w", err)
	}
	return out, nil
}

// selectOptIn is selectOptIns for at most one row: app.ErrNotFound when
// there is none.
func (q queries) selectOptIn(ctx context.Context, where string, args ...any) (app.PartnerOptIn, error) {
	optIns, err := q.selectOptIns(ctx, where, args...)
	if err != nil {
		return app.PartnerOptIn{}, err
	}
	if len(optIns) == 0 {
		return app.PartnerOptIn{}, app.ErrNotFound
	}
	return optIns[0], nil
}

// ListPartnerOptIns returns a page of the user's opt-ins, newest first.
func (q queries) ListPartnerOptIns(ctx context.Context, user string, after *app.OptInCursor, limit int) ([]app.PartnerOptIn, error) {
	var a args
	where := `WHERE user_id = ` + a.add(user)
	if after != nil {
		t := a.add(storage.Micros(after.CreateTime))
		where += ` AND (create_time < ` + t + ` OR (create_time = ` + t + ` AND opt_in_id < ` + a.add(after.ID) + `))`
	}
	where += ` ORDER BY create_time DESC, opt_in_id DESC LIMIT ` + a.add(limit)
	return q.selectOptIns(ctx, where, a...)
}

// PartnerOptInByPartnerUserID returns partner's opt-in with the id. The
// partner is part of the lookup, so another partner's id is not found.
func (q queries) PartnerOptInByPartnerUserID(ctx context.Context, partner, partnerUserID string) (app.PartnerOptIn, error) {
	return q.selectOptIn(ctx, `WHERE partner_user_id = $1 AND partner = $2`, partnerUserID, partner)
}

// LockActivePartnerOptIn reads and locks the user's ACTIVE opt-in to the
// partner.
func (t *tx) LockActivePartnerOptIn(ctx context.Context, user, partner string) (app.PartnerOptIn, error) {
	o, err := t.selectOptIn(ctx, `WHERE user_id = $1 AND partner = $2 AND state = 'ACTIVE'`+t.db.ForUpdate(), user, partner)
	if err == nil {
		t.lockedOptIns[linkKey{o.User, o.ID}] = o.State
	}
	return o, err
}

// LockPartnerOptIn reads and locks one opt-in.
func (t *tx) LockPartnerOptIn(ctx context.Context, user, id string) (app.PartnerOptIn, error) {
	o, err := t.selectOptIn(ctx, `WHERE user_id = $1 AND opt_in_id = $2`+t.db.ForUpdate(), user, id)
	if err == nil {
		t.lockedOptIns[linkKey{o.User, o.ID}] = o.State
	}
	return o, err
}

// InsertPartnerOptIn stores a new opt-in and notes it as a change.
func (t *tx) InsertPartnerOptIn(ctx context.Context, o app.PartnerOptIn) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO partner_opt_ins (`+optInColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		o.User, o.ID, o.Partner, o.Client, joinNames(o.Scopes), o.PartnerUserID, o.State.String(),
		storage.Micros(o.CreateTime), storage.NullMicros(o.RevokeTime))
	if err != nil {
		return fmt.Errorf("insert partner opt-in: %w", err)
	}
	t.lockedOptIns[linkKey{o.User, o.ID}] = o.State
	t.changes = append(t.changes, optInChange(o))
	return nil
}

// SavePartnerOptIn writes a locked opt-in's state back and notes a change
// of it. Everything else about an opt-in is immutable.
func (t *tx) SavePartnerOptIn(ctx context.Context, o app.PartnerOptIn) error {
	k := linkKey{o.User, o.ID}
	old, ok := t.lockedOptIns[k]
	if !ok {
		return errors.New("save partner opt-in: the opt-in was not locked in this transaction")
	}
	_, err := t.q.ExecContext(ctx, `UPDATE partner_opt_ins SET state = $3, revoke_time = $4 WHERE user_id = $1 AND opt_in_id = $2`,
		o.User, o.ID, o.State.String(), storage.NullMicros(o.RevokeTime))
	if err != nil {
		return fmt.Errorf("save partner opt-in: %w", err)
	}
	if old != o.State {
		t.lockedOptIns[k] = o.State
		t.changes = append(t.changes, optInChange(o))
	}
	return nil
}

func optInChange(o app.PartnerOptIn) app.Change {
	return app.Change{User: o.User, OptInID: o.ID, Partner: o.Partner, OptInState: o.State}
}

// AddOptInEvent writes a partner opt-in's event to the outbox in this
// transaction, its payload the contract's PartnerOptIn in protojson,
// without the partner-scoped user id: the event reaches the product's
// webhooks and the bus, and the id is the partner's key to the user.
func (t *tx) AddOptInEvent(ctx context.Context, e app.OptInEvent) error {
	o := e.OptIn
	return t.addEvent(ctx, e.Type, e.EventID, o.User, o.Client, o.Name(), e.EventTime, &consentv1.PartnerOptIn{
		Name:       o.Name(),
		Partner:    o.Partner,
		Scopes:     o.Scopes,
		State:      consentv1.PartnerOptInState(consentv1.PartnerOptInState_value["PARTNER_OPT_IN_STATE_"+o.State.String()]),
		CreateTime: timestamppb.New(o.CreateTime),
		RevokeTime: optionalTimestamp(o.RevokeTime),
	})
}

// optionalTimestamp is t, or nil for the zero time.
func optionalTimestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
