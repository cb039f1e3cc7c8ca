// Package store keeps the webhooks service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): endpoints (not their secrets, which
// are in Vault), the events of each client kept for replay, deliveries and
// their attempts, and idempotency keys. It implements app.Store.
//
// Replicas share the deliveries through ClaimDue: on PostgreSQL each claim
// skips rows another replica has locked (FOR UPDATE SKIP LOCKED); on
// SQLite, which one process owns, the transaction's write lock serialises
// claims.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records which migrations ran; the webhooks service's
// own, so services can share a PostgreSQL database.
const migrationsTable = "webhooks_schema_migrations"

// maxAttemptsListed is how many of a delivery's last attempts the log
// shows.
const maxAttemptsListed = 50

// Store is the SQL implementation of app.Store. It is safe for concurrent
// use.
type Store struct {
	db *storage.DB
}

var _ app.Store = (*Store)(nil)

// New migrates db to the webhooks schema and returns the store.
func New(ctx context.Context, db *storage.DB) (*Store, error) {
	if err := db.MigrateDir(ctx, migrationFiles, "migrations", migrationsTable); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

func nullMicros(t time.Time) sql.NullInt64 { return storage.NullMicros(t) }

const endpointColumns = `client_id, endpoint_id, url, event_types, description, create_time, secret_create_time, previous_secret_expire_time`

func scanEndpoint(row interface{ Scan(...any) error }) (app.Endpoint, error) {
	var e app.Endpoint
	var types string
	var created, secretCreated int64
	var prevExpire sql.NullInt64
	if err := row.Scan(&e.Client, &e.ID, &e.URL, &types, &e.Description, &created, &secretCreated, &prevExpire); err != nil {
		return app.Endpoint{}, err
	}
	e.EventTypes = strings.Split(types, ",")
	e.CreateTime, e.SecretCreateTime = storage.FromMicros(created), storage.FromMicros(secretCreated)
	e.PreviousSecretExpireTime = storage.FromNullMicros(prevExpire)
	return e, nil
}

func insertKey(ctx context.Context, q storage.Queryer, k app.IdempotencyKey) error {
	_, err := q.ExecContext(ctx, `INSERT INTO idempotency_keys (client_id, idem_key, method, request_hash, result, create_time)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.Client, k.Key, k.Method, k.Hash, k.Result, storage.Micros(k.Time))
	if storage.IsUniqueViolation(err) {
		return app.ErrKeyTaken
	}
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	return nil
}

// CreateEndpoint inserts e, and key when it is set, in one transaction.
func (s *Store) CreateEndpoint(ctx context.Context, e app.Endpoint, key app.IdempotencyKey) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if key.Key != "" {
			if err := insertKey(ctx, tx, key); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO endpoints (`+endpointColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.Client, e.ID, e.URL, strings.Join(e.EventTypes, ","), e.Description,
			storage.Micros(e.CreateTime), storage.Micros(e.SecretCreateTime), nullMicros(e.PreviousSecretExpireTime))
		if err != nil {
			return fmt.Errorf("insert endpoint: %w", err)
		}
		return nil
	})
}

// GetEndpoint reads one endpoint, or app.ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, client, id string) (app.Endpoint, error) {
	e, err := scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE client_id = $1 AND endpoint_id = $2`, client, id))
	if errors.Is(err, sql.ErrNoRows) {
		return app.Endpoint{}, app.ErrNotFound
	}
	if err != nil {
		return app.Endpoint{}, fmt.Errorf("read endpoint: %w", err)
	}
	return e, nil
}

// ListEndpoints reads the client's endpoints oldest first.
func (s *Store) ListEndpoints(ctx context.Context, client string, after *pagetoken.Position, limit int) ([]app.Endpoint, error) {
	q := `SELECT ` + endpointColumns + ` FROM endpoints WHERE client_id = $1`
	args := []any{client}
	if after != nil {
		q += ` AND (create_time > $2 OR (create_time = $2 AND endpoint_id > $3))`
		args = append(args, storage.Micros(after.Time), after.ID)
	}
	q += ` ORDER BY create_time, endpoint_id LIMIT ` + strconv.Itoa(limit)
	return s.endpoints(ctx, q, args...)
}

// EndpointsOf reads every endpoint of the client.
func (s *Store) EndpointsOf(ctx context.Context, client string) ([]app.Endpoint, error) {
	return s.endpoints(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE client_id = $1 ORDER BY create_time, endpoint_id`, client)
}

func (s *Store) endpoints(ctx context.Context, q string, args ...any) ([]app.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	defer rows.Close()
	var out []app.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("read endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

// CountEndpoints counts the client's endpoints.
func (s *Store) CountEndpoints(ctx context.Context, client string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM endpoints WHERE client_id = $1`, client).Scan(&n); err != nil {
		return 0, fmt.Errorf("count endpoints: %w", err)
	}
	return n, nil
}

// DeleteEndpoint removes the endpoint; its deliveries and their attempts
// go with it (ON DELETE CASCADE).
func (s *Store) DeleteEndpoint(ctx context.Context, client, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM endpoints WHERE client_id = $1 AND endpoint_id = $2`, client, id)
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// UpdateSecretTimes records a rotation.
func (s *Store) UpdateSecretTimes(ctx context.Context, client, id string, created, previousExpire time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE endpoints SET secret_create_time = $3, previous_secret_expire_time = $4
		WHERE client_id = $1 AND endpoint_id = $2`, client, id, storage.Micros(created), nullMicros(previousExpire))
	if err != nil {
		return fmt.Errorf("update endpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// Recall reads an idempotency key, or app.ErrNotFound.
func (s *Store) Recall(ctx context.Context, client, key string) (app.IdempotencyKey, error) {
	k := app.IdempotencyKey{Client: client, Key: key}
	var t int64
	err := s.db.QueryRowContext(ctx, `SELECT method, request_hash, result, create_time FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2`,
		client, key).Scan(&k.Method, &k.Hash, &k.Result, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return app.IdempotencyKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.IdempotencyKey{}, fmt.Errorf("read idempotency key: %w", err)
	}
	k.Time = storage.FromMicros(t)
	return k, nil
}

// Remember stores an idempotency key.
func (s *Store) Remember(ctx context.Context, key app.IdempotencyKey) error {
	return insertKey(ctx, s.db, key)
}

// AddEvent keeps e and queues its deliveries, unless e is kept already.
func (s *Store) AddEvent(ctx context.Context, e app.Event, deliveries []app.Delivery) (bool, error) {
	added := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO events (event_id, client_id, event_type, resource, event_time, data)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
			e.ID, e.Client, e.Type, e.Resource, storage.Micros(e.Time), string(e.Data))
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // delivered by the bus before: its deliveries are queued
		}
		added = true
		return insertDeliveries(ctx, tx, deliveries)
	})
	return added, err
}

func insertDeliveries(ctx context.Context, tx *sql.Tx, ds []app.Delivery) error {
	for _, d := range ds {
		replay := 0
		if d.Replay {
			replay = 1
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (delivery_id, client_id, endpoint_id, event_id, event_type, state, replay,
			create_time, next_attempt_time, deadline, attempt_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)`,
			d.ID, d.Client, d.EndpointID, d.EventID, d.EventType, d.State.String(), replay,
			storage.Micros(d.CreateTime), nullMicros(d.NextAttemptTime), storage.Micros(d.Deadline))
		if err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
	}
	return nil
}

const eventColumns = `event_id, client_id, event_type, resource, event_time, data`

func scanEvent(row interface{ Scan(...any) error }) (app.Event, error) {
	var e app.Event
	var t int64
	var data string
	if err := row.Scan(&e.ID, &e.Client, &e.Type, &e.Resource, &t, &data); err != nil {
		return app.Event{}, err
	}
	e.Time = storage.FromMicros(t)
	if data != "" {
		e.Data = []byte(data)
	}
	return e, nil
}

// Event reads one of the client's events, or app.ErrNotFound.
func (s *Store) Event(ctx context.Context, client, id string) (app.Event, error) {
	e, err := scanEvent(s.db.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE event_id = $1 AND client_id = $2`, id, client))
	if errors.Is(err, sql.ErrNoRows) {
		return app.Event{}, app.ErrNotFound
	}
	if err != nil {
		return app.Event{}, fmt.Errorf("read event: %w", err)
	}
	return e, nil
}

// EventsAfter reads the client's events in order after a position.
func (s *Store) EventsAfter(ctx context.Context, client string, types []string, after time.Time, afterID string, limit int) ([]app.Event, error) {
	q := `SELECT ` + eventColumns + ` FROM events WHERE client_id = $1`
	args := []any{client}
	if afterID == "" {
		q += ` AND event_time >= $2`
		args = append(args, storage.Micros(after))
	} else {
		q += ` AND (event_time > $2 OR (event_time = $2 AND event_id > $3))`
		args = append(args, storage.Micros(after), afterID)
	}
	if len(types) > 0 {
		q += ` AND event_type IN (` + storage.Placeholders(len(args)+1, len(types)) + `)`
		for _, t := range types {
			args = append(args, t)
		}
	}
	q += ` ORDER BY event_time, event_id LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []app.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Replay queues deliveries, and key when it is set, in one transaction.
func (s *Store) Replay(ctx context.Context, deliveries []app.Delivery, key app.IdempotencyKey) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if key.Key != "" {
			if err := insertKey(ctx, tx, key); err != nil {
				return err
			}
		}
		return insertDeliveries(ctx, tx, deliveries)
	})
}

// skipLocked is the clause that lets replicas claim different rows at once.
func (s *Store) skipLocked() string {
	if s.db.Dialect() == storage.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ClaimDue claims up to limit due deliveries for now+lease.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]app.Due, error) {
	var out []app.Due
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT delivery_id FROM deliveries WHERE state = 'PENDING' AND next_attempt_time <= $1
			ORDER BY next_attempt_time LIMIT `+strconv.Itoa(limit)+s.skipLocked(), storage.Micros(now))
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("claim deliveries: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		in := storage.Placeholders(2, len(ids))
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_time = $1 WHERE delivery_id IN (`+in+`)`,
			append([]any{storage.Micros(now.Add(lease))}, ids...)...); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		rows, err = tx.QueryContext(ctx, `SELECT d.delivery_id, d.client_id, d.endpoint_id, d.event_type, d.replay, d.create_time, d.deadline,
			d.attempt_count, p.url, e.event_id, e.client_id, e.event_type, e.resource, e.event_time, e.data
			FROM deliveries d JOIN endpoints p ON p.client_id = d.client_id AND p.endpoint_id = d.endpoint_id
			JOIN events e ON e.event_id = d.event_id
			WHERE d.delivery_id IN (`+storage.Placeholders(1, len(ids))+`) ORDER BY d.next_attempt_time, d.delivery_id`, ids...)
		if err != nil {
			return fmt.Errorf("read claimed deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var due app.Due
			var replay int
			var created, deadline, evTime int64
			var data string
			d := &due.Delivery
			if err := rows.Scan(&d.ID, &d.Client, &d.EndpointID, &d.EventType, &replay, &created, &deadline, &due.Attempts, &due.URL,
				&due.Event.ID, &due.Event.Client, &due.Event.Type, &due.Event.Resource, &evTime, &data); err != nil {
				return fmt.Errorf("read claimed deliveries: %w", err)
			}
			d.State, d.Replay, d.EventID = app.DeliveryPending, replay == 1, due.Event.ID
			d.CreateTime, d.Deadline = storage.FromMicros(created), storage.FromMicros(deadline)
			due.Event.Time = storage.FromMicros(evTime)
			if data != "" {
				due.Event.Data = []byte(data)
			}
			out = append(out, due)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordAttempt appends an attempt and moves the delivery on, or answers
// app.ErrNotFound when the delivery is gone (its endpoint was deleted).
func (s *Store) RecordAttempt(ctx context.Context, deliveryID string, a app.Attempt, state app.DeliveryState, next time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT attempt_count FROM deliveries WHERE delivery_id = $1`+s.db.ForUpdate(), deliveryID).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return app.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read delivery: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, attempt_time, duration_us, http_status, outcome)
			VALUES ($1, $2, $3, $4, $5, $6)`, deliveryID, n+1, storage.Micros(a.Time), a.Duration.Microseconds(), a.StatusCode, a.Outcome.String()); err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		if state != app.DeliveryPending {
			next = time.Time{}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = $2, next_attempt_time = $3, attempt_count = $4 WHERE delivery_id = $1`,
			deliveryID, state.String(), nullMicros(next), n+1); err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		return nil
	})
}

// ListDeliveries reads an endpoint's deliveries newest first, with their
// last attempts.
func (s *Store) ListDeliveries(ctx context.Context, client, endpointID string, state app.DeliveryState, after *pagetoken.Position, limit int) ([]app.Delivery, error) {
	q := `SELECT delivery_id, client_id, endpoint_id, event_id, event_type, state, replay, create_time, next_attempt_time, deadline
		FROM deliveries WHERE client_id = $1 AND endpoint_id = $2`
	args := []any{client, endpointID}
	if state != 0 {
		args = append(args, state.String())
		q += ` AND state = $` + strconv.Itoa(len(args))
	}
	if after != nil {
		args = append(args, storage.Micros(after.Time), after.ID)
		t, id := strconv.Itoa(len(args)-1), strconv.Itoa(len(args))
		q += ` AND (create_time < $` + t + ` OR (create_time = $` + t + ` AND delivery_id < $` + id + `))`
	}
	q += ` ORDER BY create_time DESC, delivery_id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	var out []app.Delivery
	for rows.Next() {
		var d app.Delivery
		var st string
		var replay int
		var created, deadline int64
		var next sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Client, &d.EndpointID, &d.EventID, &d.EventType, &st, &replay, &created, &next, &deadline); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.State, d.Replay = app.ParseDeliveryState(st), replay == 1
		d.CreateTime, d.NextAttemptTime, d.Deadline = storage.FromMicros(created), storage.FromNullMicros(next), storage.FromMicros(deadline)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]any, len(out))
	index := make(map[string]int, len(out))
	for i, d := range out {
		ids[i], index[d.ID] = d.ID, i
	}
	rows, err = s.db.QueryContext(ctx, `SELECT delivery_id, attempt_time, duration_us, http_status, outcome FROM delivery_attempts
		WHERE delivery_id IN (`+storage.Placeholders(1, len(ids))+`) ORDER BY delivery_id, attempt`, ids...)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, outcome string
		var t, dur int64
		var a app.Attempt
		if err := rows.Scan(&id, &t, &dur, &a.StatusCode, &outcome); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.Time, a.Duration, a.Outcome = storage.FromMicros(t), time.Duration(dur)*time.Microsecond, app.ParseOutcome(outcome)
		d := &out[index[id]]
		d.Attempts = append(d.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	for i := range out {
		if n := len(out[i].Attempts); n > maxAttemptsListed {
			out[i].Attempts = slices.Clone(out[i].Attempts[n-maxAttemptsListed:])
		}
	}
	return out, nil
}

// Prune removes events older than before (their deliveries go with them),
// finished deliveries queued before it, and idempotency keys older than it.
func (s *Store) Prune(ctx context.Context, before time.Time) error {
	t := storage.Micros(before)
	for _, q := range []string{
		`DELETE FROM events WHERE event_time < $1`,
		`DELETE FROM deliveries WHERE state <> 'PENDING' AND create_time < $1`,
		`DELETE FROM idempotency_keys WHERE create_time < $1`,
	} {
		if _, err := s.db.ExecContext(ctx, q, t); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}
