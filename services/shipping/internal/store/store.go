// Package store keeps the shipping service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): the shipments users track; the
// carriers' events, once per (carrier, event id) and per parcel (carrier,
// tracking number) whoever tracks it, the 500 newest of each; the push ids
// carriers used; and idempotency keys. Events go to the platform's outbox
// in the transaction of the change they report. It implements app.Store.
//
// Deletions are real DELETEs: a deleted shipment's row is gone with its
// idempotency keys (ON DELETE CASCADE), and its parcel's events with the
// last shipment that awaits them.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records which migrations ran; the shipping service's
// own, so services can share a PostgreSQL database.
const migrationsTable = "shipping_schema_migrations"

// Source is the events.Event.Source of the shipping service's events.
const Source = "shipping"

// Store is the SQL implementation of app.Store. It is safe for concurrent
// use.
type Store struct {
	db     *storage.DB
	outbox events.Outbox
}

var _ app.Store = (*Store)(nil)

// New migrates db to the shipping schema and returns the store, writing
// events to outbox (whose table must be migrated too: events.Migrate).
func New(ctx context.Context, db *storage.DB, outbox events.Outbox) (*Store, error) {
	if outbox == nil {
		return nil, errors.New("shipping store: an outbox is required")
	}
	if err := db.MigrateDir(ctx, migrationFiles, "migrations", migrationsTable); err != nil {
		return nil, err
	}
	return &Store{db: db, outbox: outbox}, nil
}

// conflict wraps a failed write's error with what it was writing, and
// marks a write that lost to a concurrent one as app.ErrConflict.
func conflict(what string, err error) error {
	return fmt.Errorf("%s: %w", what, storage.MarkRetryable(err, app.ErrConflict))
}

// Tx runs fn in one transaction. fn's own errors come back as they are; a
// transaction the database failed for a concurrent one is ErrConflict.
func (s *Store) Tx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn)
}

// IdempotentTx is Tx, run again when the connection to the database was
// lost under it (storage.Idempotent), as app.Store allows.
func (s *Store) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn, storage.Idempotent())
}

func (s *Store) runTx(ctx context.Context, fn func(app.Tx) error, opts ...storage.TxOption) error {
	err := s.db.InTx(ctx, func(t *sql.Tx) error { return fn(&tx{q: t, sqlTx: t, outbox: s.outbox, db: s.db}) }, opts...)
	return storage.MarkRetryable(err, app.ErrConflict)
}

// tx is one transaction of the shipping logic.
type tx struct {
	q      storage.Queryer
	sqlTx  *sql.Tx
	outbox events.Outbox
	db     *storage.DB
}

const shipmentColumns = `user_id, shipment_id, tracking_number, carrier, carrier_detected, carrier_candidates, receipt,
	partner, partner_user_id, client_id, status, substatus, signed_by, estimated_delivery_time, status_time,
	last_event_time, create_time, update_time`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

func scanShipment(row scanner) (app.Shipment, error) {
	var sh app.Shipment
	var candidates, status string
	var receipt, partner, puid sql.NullString
	var est, statusTime, lastEvent sql.NullInt64
	var created, updated int64
	if err := row.Scan(&sh.User, &sh.ID, &sh.TrackingNumber, &sh.Carrier, &sh.CarrierDetected, &candidates, &receipt,
		&partner, &puid, &sh.Client, &status, &sh.Substatus, &sh.SignedBy, &est, &statusTime, &lastEvent, &created, &updated); err != nil {
		return app.Shipment{}, err
	}
	if candidates != "" {
		sh.CarrierCandidates = strings.Split(candidates, ",")
	}
	sh.Receipt, sh.Partner, sh.PartnerUserID = receipt.String, partner.String, puid.String
	sh.Status = app.Status(status)
	sh.EstimatedDelivery, sh.StatusTime, sh.LastEventTime = storage.FromNullMicros(est), storage.FromNullMicros(statusTime), storage.FromNullMicros(lastEvent)
	sh.CreateTime, sh.UpdateTime = storage.FromMicros(created), storage.FromMicros(updated)
	return sh, nil
}

// shipments runs a query of shipmentColumns.
func shipments(ctx context.Context, q storage.Queryer, query string, args ...any) ([]app.Shipment, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read shipments: %w", err)
	}
	defer rows.Close()
	var out []app.Shipment
	for rows.Next() {
		sh, err := scanShipment(rows)
		if err != nil {
			return nil, fmt.Errorf("read shipments: %w", err)
		}
		out = append(out, sh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read shipments: %w", err)
	}
	return out, nil
}

func oneShipment(row *sql.Row) (app.Shipment, error) {
	sh, err := scanShipment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Shipment{}, app.ErrNotFound
	}
	if err != nil {
		return app.Shipment{}, fmt.Errorf("read shipment: %w", err)
	}
	return sh, nil
}

const eventColumns = `carrier, event_id, tracking_number, checkpoint_time, status, substatus, carrier_status_code,
	carrier_message, city, region, postal_code, country_code, signed_by, estimated_delivery_time, receive_time`

// trackingEvents reads the MaxCheckpoints newest events of a parcel,
// oldest first.
func trackingEvents(ctx context.Context, q storage.Queryer, carrier, number string) ([]app.TrackingEvent, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM tracking_events WHERE carrier = $1 AND tracking_number = $2
		ORDER BY checkpoint_time DESC, event_id DESC LIMIT `+strconv.Itoa(app.MaxCheckpoints), carrier, number)
	if err != nil {
		return nil, fmt.Errorf("read tracking events: %w", err)
	}
	defer rows.Close()
	var out []app.TrackingEvent
	for rows.Next() {
		var e app.TrackingEvent
		var cpTime, received int64
		var status string
		var city, region, postal, country sql.NullString
		var est sql.NullInt64
		if err := rows.Scan(&e.Carrier, &e.EventID, &e.TrackingNumber, &cpTime, &status, &e.Checkpoint.Substatus,
			&e.Checkpoint.CarrierStatusCode, &e.Checkpoint.CarrierMessage, &city, &region, &postal, &country,
			&e.SignedBy, &est, &received); err != nil {
			return nil, fmt.Errorf("read tracking events: %w", err)
		}
		e.Checkpoint.Time, e.Checkpoint.Status = storage.FromMicros(cpTime), app.Status(status)
		if city.Valid || region.Valid || postal.Valid || country.Valid {
			e.Checkpoint.Location = &app.Location{City: city.String, Region: region.String, PostalCode: postal.String, CountryCode: country.String}
		}
		e.EstimatedDelivery, e.ReceiveTime = storage.FromNullMicros(est), storage.FromMicros(received)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tracking events: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// fillCheckpoints reads the checkpoints of each shipment's parcel, each
// parcel once, and catches the shipment up with them (app.CatchUp).
func fillCheckpoints(ctx context.Context, q storage.Queryer, shs []app.Shipment) error {
	read := map[[2]string][]app.Checkpoint{}
	stored := map[[2]string][]app.TrackingEvent{}
	for i := range shs {
		sh := &shs[i]
		if sh.Carrier == "" {
			continue
		}
		k := [2]string{sh.Carrier, sh.TrackingNumber}
		cps, ok := read[k]
		if !ok {
			evs, err := trackingEvents(ctx, q, sh.Carrier, sh.TrackingNumber)
			if err != nil {
				return err
			}
			for _, e := range evs {
				cps = append(cps, e.Checkpoint)
			}
			read[k] = cps
			stored[k] = evs
		}
		// The row may not have absorbed its parcel's newest events yet.
		app.CatchUp(sh, stored[k])
		sh.Checkpoints = cps
	}
	return nil
}

// Shipment reads the user's shipment with its checkpoints.
func (s *Store) Shipment(ctx context.Context, user, id string) (app.Shipment, error) {
	sh, err := oneShipment(s.db.QueryRowContext(ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE user_id = $1 AND shipment_id = $2`, user, id))
	if err != nil {
		return app.Shipment{}, err
	}
	shs := []app.Shipment{sh}
	if err := fillCheckpoints(ctx, s.db, shs); err != nil {
		return app.Shipment{}, err
	}
	return shs[0], nil
}

// listQuery is the keyset read of one page of a user's shipments:
// backwards along shipments_by_create, so a page costs the same wherever
// it starts.
func listQuery(user string, f app.Filter, after *pagetoken.Position, limit int) (string, []any) {
	var b strings.Builder
	args := []any{user}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + shipmentColumns + ` FROM shipments WHERE user_id = $1`)
	if len(f.Statuses) > 0 {
		ps := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			ps[i] = arg(string(st))
		}
		b.WriteString(` AND status IN (` + strings.Join(ps, ", ") + `)`)
	}
	if after != nil {
		t, id := arg(storage.Micros(after.Time)), arg(after.ID)
		b.WriteString(` AND (create_time, shipment_id) < (` + t + `, ` + id + `)`)
	}
	b.WriteString(` ORDER BY create_time DESC, shipment_id DESC LIMIT ` + strconv.Itoa(limit))
	return b.String(), args
}

// ListShipments reads one page of the user's shipments, newest first, with
// their checkpoints.
func (s *Store) ListShipments(ctx context.Context, user string, f app.Filter, after *pagetoken.Position, limit int) ([]app.Shipment, error) {
	q, args := listQuery(user, f, after, limit)
	shs, err := shipments(ctx, s.db, q, args...)
	if err != nil {
		return nil, err
	}
	if err := fillCheckpoints(ctx, s.db, shs); err != nil {
		return nil, err
	}
	return shs, nil
}

// Recall reads an idempotency key.
func (s *Store) Recall(ctx context.Context, client, subject, key string) (app.IdempotencyKey, error) {
	k := app.IdempotencyKey{Client: client, Subject: subject, Key: key}
	var made int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, request_hash, shipment_id, tracking_number, create_time FROM idempotency_keys
		WHERE client_id = $1 AND subject = $2 AND idem_key = $3`, client, subject, key).
		Scan(&k.User, &k.RequestHash, &k.ShipmentID, &k.TrackingNumber, &made)
	if errors.Is(err, sql.ErrNoRows) {
		return app.IdempotencyKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.IdempotencyKey{}, fmt.Errorf("read idempotency key: %w", storage.MarkUnavailable(err))
	}
	k.Time = storage.FromMicros(made)
	return k, nil
}

// DeleteExpired forgets old push ids and idempotency keys.
func (s *Store) DeleteExpired(ctx context.Context, pushesBefore, keysBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM carrier_pushes WHERE receive_time < $1`, storage.Micros(pushesBefore)); err != nil {
		return fmt.Errorf("delete expired push ids: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE create_time < $1`, storage.Micros(keysBefore)); err != nil {
		return fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return nil
}

// PartnerSubjects returns partner-scoped ids with shipments, in order.
func (s *Store) PartnerSubjects(ctx context.Context, after app.PartnerSubject, limit int) ([]app.PartnerSubject, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT user_id, partner, partner_user_id FROM shipments
		WHERE partner IS NOT NULL AND (user_id, partner, partner_user_id) > ($1, $2, $3)
		ORDER BY user_id, partner, partner_user_id LIMIT `+strconv.Itoa(limit), after.User, after.Partner, after.PartnerUserID)
	if err != nil {
		return nil, fmt.Errorf("read partner subjects: %w", err)
	}
	defer rows.Close()
	var out []app.PartnerSubject
	for rows.Next() {
		var p app.PartnerSubject
		if err := rows.Scan(&p.User, &p.Partner, &p.PartnerUserID); err != nil {
			return nil, fmt.Errorf("read partner subjects: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read partner subjects: %w", err)
	}
	return out, nil
}

// UsersWithShipments returns users with shipments, in order, after one.
func (s *Store) UsersWithShipments(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT user_id FROM shipments WHERE user_id > $1 ORDER BY user_id LIMIT `+strconv.Itoa(limit), after)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return out, nil
}

// lockSpaceParcel is the first key of a parcel's advisory lock
// ("bbsp"), apart from the outbox's.
const lockSpaceParcel int32 = 0x62627370

// LockParcel takes the parcel's advisory lock until the transaction ends
// on PostgreSQL. On SQLite a write transaction holds the database's one
// write lock from its BEGIN already. Two numbers may share a lock: their
// transactions then take turns, which costs a little time and breaks
// nothing.
func (t *tx) LockParcel(ctx context.Context, number string) error {
	if t.db.Dialect() != storage.Postgres {
		return nil
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(number))
	if _, err := t.q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`, lockSpaceParcel, int32(h.Sum32())); err != nil {
		return conflict("lock parcel", err)
	}
	return nil
}

// UserShipments reads the user's shipments of a number, oldest first.
func (t *tx) UserShipments(ctx context.Context, user, number string) ([]app.Shipment, error) {
	return shipments(ctx, t.q, `SELECT `+shipmentColumns+` FROM shipments WHERE user_id = $1 AND tracking_number = $2
		ORDER BY create_time, shipment_id`+t.db.ForUpdate(), user, number)
}

// PeekShipment reads one of the user's shipments without locking it.
func (t *tx) PeekShipment(ctx context.Context, user, id string) (app.Shipment, error) {
	return oneShipment(t.q.QueryRowContext(ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE user_id = $1 AND shipment_id = $2`, user, id))
}

// LockShipment reads one of the user's shipments.
func (t *tx) LockShipment(ctx context.Context, user, id string) (app.Shipment, error) {
	return oneShipment(t.q.QueryRowContext(ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE user_id = $1 AND shipment_id = $2`+t.db.ForUpdate(), user, id))
}

// ShipmentsOf reads the user's shipments, or a partner's registrations,
// without locking them.
func (t *tx) ShipmentsOf(ctx context.Context, user, partner, partnerUserID string) ([]app.Shipment, error) {
	q := `SELECT ` + shipmentColumns + ` FROM shipments WHERE user_id = $1`
	args := []any{user}
	if partner != "" {
		q += ` AND partner = $2`
		args = append(args, partner)
		if partnerUserID != "" {
			q += ` AND partner_user_id = $3`
			args = append(args, partnerUserID)
		}
	}
	return shipments(ctx, t.q, q+` ORDER BY shipment_id`, args...)
}

// InsertShipment stores a new shipment.
func (t *tx) InsertShipment(ctx context.Context, sh app.Shipment) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO shipments (user_id, shipment_id, tracking_number, carrier, carrier_detected,
		carrier_candidates, receipt, partner, partner_user_id, client_id, status, substatus, signed_by, estimated_delivery_time,
		status_time, last_event_time, active_time, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		sh.User, sh.ID, sh.TrackingNumber, sh.Carrier, sh.CarrierDetected, strings.Join(sh.CarrierCandidates, ","),
		storage.NullString(sh.Receipt), storage.NullString(sh.Partner), storage.NullString(sh.PartnerUserID), sh.Client, string(sh.Status), sh.Substatus, sh.SignedBy,
		storage.NullMicros(sh.EstimatedDelivery), storage.NullMicros(sh.StatusTime), storage.NullMicros(sh.LastEventTime),
		storage.Micros(sh.ActiveTime()), storage.Micros(sh.CreateTime), storage.Micros(sh.UpdateTime))
	if err != nil {
		return conflict("insert shipment", err)
	}
	return nil
}

// UpdateShipment writes a shipment's mutable fields.
func (t *tx) UpdateShipment(ctx context.Context, sh app.Shipment) error {
	res, err := t.q.ExecContext(ctx, `UPDATE shipments SET carrier = $3, carrier_detected = $4, carrier_candidates = $5,
		status = $6, substatus = $7, signed_by = $8, estimated_delivery_time = $9, status_time = $10, last_event_time = $11,
		active_time = $12, update_time = $13 WHERE user_id = $1 AND shipment_id = $2`,
		sh.User, sh.ID, sh.Carrier, sh.CarrierDetected, strings.Join(sh.CarrierCandidates, ","), string(sh.Status), sh.Substatus,
		sh.SignedBy, storage.NullMicros(sh.EstimatedDelivery), storage.NullMicros(sh.StatusTime), storage.NullMicros(sh.LastEventTime),
		storage.Micros(sh.ActiveTime()), storage.Micros(sh.UpdateTime))
	if err != nil {
		return conflict("update shipment", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// DeleteShipment deletes a shipment, its keys (cascading) and the events
// of its parcel no shipment awaits any longer.
func (t *tx) DeleteShipment(ctx context.Context, user, id string) error {
	var number string
	err := t.q.QueryRowContext(ctx, `DELETE FROM shipments WHERE user_id = $1 AND shipment_id = $2 RETURNING tracking_number`, user, id).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return app.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete shipment: %w", err)
	}
	return t.ForgetUnawaited(ctx, number)
}

// ForgetUnawaited deletes a number's events no shipment awaits.
func (t *tx) ForgetUnawaited(ctx context.Context, number string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM tracking_events WHERE tracking_number = $1 AND NOT EXISTS (
		SELECT 1 FROM shipments s WHERE s.tracking_number = tracking_events.tracking_number
		AND (s.carrier = tracking_events.carrier OR s.carrier = ''))`, number)
	if err != nil {
		return fmt.Errorf("delete unawaited tracking events: %w", err)
	}
	return nil
}

// Remember stores an idempotency key.
func (t *tx) Remember(ctx context.Context, k app.IdempotencyKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO idempotency_keys (client_id, subject, idem_key, user_id, request_hash, shipment_id,
		tracking_number, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.Client, k.Subject, k.Key, k.User, k.RequestHash, k.ShipmentID, k.TrackingNumber, storage.Micros(k.Time))
	if err != nil {
		return conflict("insert idempotency key", err)
	}
	return nil
}

// AddPush records a push id; false when the carrier used it before.
func (t *tx) AddPush(ctx context.Context, carrier, pushID string, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `INSERT INTO carrier_pushes (carrier, push_id, receive_time) VALUES ($1, $2, $3)
		ON CONFLICT (carrier, push_id) DO NOTHING`, carrier, pushID, storage.Micros(at))
	if err != nil {
		return false, conflict("insert push id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert push id: %w", err)
	}
	return n == 1, nil
}

// ParcelShipments reads who tracks a parcel, and in which state: a row
// per state, its shipments' names aggregated by the database, as a
// parcel may have ten thousand.
func (t *tx) ParcelShipments(ctx context.Context, carrier, number string) ([]app.ParcelState, error) {
	agg := `group_concat('users/' || user_id || '/shipments/' || shipment_id, char(10))`
	if t.db.Dialect() == storage.Postgres {
		agg = `string_agg('users/' || user_id || '/shipments/' || shipment_id, chr(10))`
	}
	rows, err := t.q.QueryContext(ctx, `SELECT status, substatus, signed_by, estimated_delivery_time, status_time, last_event_time, `+agg+`
		FROM shipments WHERE tracking_number = $1 AND carrier = $2
		GROUP BY status, substatus, signed_by, estimated_delivery_time, status_time, last_event_time`, number, carrier)
	if err != nil {
		return nil, fmt.Errorf("read parcel shipments: %w", err)
	}
	defer rows.Close()
	var out []app.ParcelState
	for rows.Next() {
		var ps app.ParcelState
		var status, names string
		var est, statusTime, lastEvent sql.NullInt64
		if err := rows.Scan(&status, &ps.State.Substatus, &ps.State.SignedBy, &est, &statusTime, &lastEvent, &names); err != nil {
			return nil, fmt.Errorf("read parcel shipments: %w", err)
		}
		ps.State.Status = app.Status(status)
		ps.State.EstimatedDelivery, ps.State.StatusTime, ps.State.LastEventTime = storage.FromNullMicros(est), storage.FromNullMicros(statusTime), storage.FromNullMicros(lastEvent)
		ps.Shipments = strings.Split(names, "\n")
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read parcel shipments: %w", err)
	}
	return out, nil
}

// Awaited reports whether a shipment awaits the carrier's events for the
// number.
func (t *tx) Awaited(ctx context.Context, carrier, number string) (bool, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM shipments WHERE tracking_number = $1
		AND (carrier = $2 OR carrier = '') LIMIT 1) AS awaiting`, number, carrier).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read awaiting shipments: %w", err)
	}
	return n > 0, nil
}

// AddTrackingEvent stores a carrier event once.
func (t *tx) AddTrackingEvent(ctx context.Context, e app.TrackingEvent) (bool, error) {
	var city, region, postal, country sql.NullString
	if l := e.Checkpoint.Location; l != nil {
		// Valid even when empty: the carrier said where, if vaguely.
		city, region = sql.NullString{String: l.City, Valid: true}, sql.NullString{String: l.Region, Valid: true}
		postal, country = sql.NullString{String: l.PostalCode, Valid: true}, sql.NullString{String: l.CountryCode, Valid: true}
	}
	res, err := t.q.ExecContext(ctx, `INSERT INTO tracking_events (`+eventColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (carrier, event_id) DO NOTHING`,
		e.Carrier, e.EventID, e.TrackingNumber, storage.Micros(e.Checkpoint.Time), string(e.Checkpoint.Status), e.Checkpoint.Substatus,
		e.Checkpoint.CarrierStatusCode, e.Checkpoint.CarrierMessage, city, region, postal, country, e.SignedBy,
		storage.NullMicros(e.EstimatedDelivery), storage.Micros(e.ReceiveTime))
	if err != nil {
		return false, conflict("insert tracking event", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert tracking event: %w", err)
	}
	return n == 1, nil
}

// TrackingEvents reads a parcel's newest events, oldest first.
func (t *tx) TrackingEvents(ctx context.Context, carrier, number string) ([]app.TrackingEvent, error) {
	return trackingEvents(ctx, t.q, carrier, number)
}

// PruneTracking deletes a parcel's events but the keep newest.
func (t *tx) PruneTracking(ctx context.Context, carrier, number string, keep int) error {
	var n int
	if err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tracking_events WHERE carrier = $1 AND tracking_number = $2`, carrier, number).Scan(&n); err != nil {
		return fmt.Errorf("count tracking events: %w", err)
	}
	if n <= keep {
		return nil
	}
	_, err := t.q.ExecContext(ctx, `DELETE FROM tracking_events WHERE carrier = $1 AND tracking_number = $2 AND event_id NOT IN (
		SELECT event_id FROM tracking_events WHERE carrier = $1 AND tracking_number = $2
		ORDER BY checkpoint_time DESC, event_id DESC LIMIT `+strconv.Itoa(keep)+`)`, carrier, number)
	if err != nil {
		return fmt.Errorf("prune tracking events: %w", err)
	}
	return nil
}

// StaleShipments reads shipments past their expiry, not final.
func (t *tx) StaleShipments(ctx context.Context, before time.Time, limit int) ([]app.Shipment, error) {
	final := make([]string, len(app.FinalStatuses))
	args := []any{storage.Micros(before)}
	for i, st := range app.FinalStatuses {
		args = append(args, string(st))
		final[i] = "$" + strconv.Itoa(len(args))
	}
	lock := ""
	if t.db.Dialect() == storage.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return shipments(ctx, t.q, `SELECT `+shipmentColumns+` FROM shipments WHERE active_time < $1
		AND status NOT IN (`+strings.Join(final, ", ")+`) ORDER BY active_time LIMIT `+strconv.Itoa(limit)+lock, args...)
}

// AddEvent writes e to the outbox in this transaction. A parcel's
// audience event is about the parcel (app.ParcelTopic) and goes to no
// client.
func (t *tx) AddEvent(ctx context.Context, e app.Event) error {
	data, err := shipmentpb.EventData(e)
	if err != nil {
		return err
	}
	ev := events.Event{
		ID: e.ID, Type: e.Type, Source: Source, User: e.User, Client: e.Client, Resource: e.Shipment.Name(), Time: e.Time, Data: data,
	}
	if e.Type == app.EventParcelTracked {
		topic := app.ParcelTopic(e.Shipment.Carrier, e.Shipment.TrackingNumber)
		ev.User, ev.Client, ev.Resource, ev.Audience = topic, "", topic, e.Audience
	}
	return t.outbox.Add(ctx, t.sqlTx, ev)
}
