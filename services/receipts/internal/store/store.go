// Package store keeps the receipts service's state in SQL, on SQLite or
// PostgreSQL alike (platform/storage): every version of every receipt, its
// content as deterministic protobuf bytes beside the columns queries
// filter and sort on; match jobs; partners' idempotency keys; and the
// issuer sync's bookkeeping. Events go to the platform's outbox in the
// transaction of the change they report. It implements app.Store.
//
// Deletions are real DELETEs: a deleted receipt's rows are gone, with its
// match job (ON DELETE CASCADE).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/receiptpb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records which migrations ran; the receipts service's
// own, so services can share a PostgreSQL database.
const migrationsTable = "receipts_schema_migrations"

// Source is the events.Event.Source of the receipts service's events.
const Source = "receipts"

// inChunk bounds the values of one IN (...) list.
const inChunk = 500

// Store is the SQL implementation of app.Store. It is safe for concurrent
// use.
type Store struct {
	db     *storage.DB
	outbox events.Outbox
}

var _ app.Store = (*Store)(nil)

// New migrates db to the receipts schema and returns the store, writing
// events to outbox (whose table must be migrated too: events.Migrate).
func New(ctx context.Context, db *storage.DB, outbox events.Outbox) (*Store, error) {
	if outbox == nil {
		return nil, errors.New("receipts store: an outbox is required")
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
// transaction the database failed for a concurrent one is ErrConflict, as
// app.Store promises.
func (s *Store) Tx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn)
}

// IdempotentTx is Tx, run again when the connection to the database was
// lost under it (storage.Idempotent), as app.Store allows.
func (s *Store) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	return s.runTx(ctx, fn, storage.Idempotent())
}

func (s *Store) runTx(ctx context.Context, fn func(app.Tx) error, opts ...storage.TxOption) error {
	err := s.db.InTx(ctx, func(t *sql.Tx) error { return fn(&tx{q: t, sqlTx: t, outbox: s.outbox}) }, opts...)
	return storage.MarkRetryable(err, app.ErrConflict)
}

// tx is an ingest's transaction.
type tx struct {
	q      storage.Queryer
	sqlTx  *sql.Tx
	outbox events.Outbox
}

// PartnerReceipt reads the receipt the partner stored under its own id.
func (t *tx) PartnerReceipt(ctx context.Context, user, partner, partnerReceiptID string) (app.Receipt, error) {
	return scanOne(t.q.QueryRowContext(ctx, `SELECT `+receiptColumns+`, NULL FROM receipts r
		WHERE user_id = $1 AND partner = $2 AND partner_receipt_id = $3`, user, partner, partnerReceiptID))
}

// AmendedBy returns the id of the version that amends id, or "".
func (t *tx) AmendedBy(ctx context.Context, user, id string) (string, error) {
	var by string
	err := t.q.QueryRowContext(ctx, `SELECT receipt_id FROM receipts WHERE user_id = $1 AND amends = $2`, user, id).Scan(&by)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read amendment: %w", err)
	}
	return by, nil
}

// Insert stores a new receipt version.
func (t *tx) Insert(ctx context.Context, r app.Receipt) error {
	return insertReceipt(ctx, t.q, r)
}

// QueueMatch adds a match job.
func (t *tx) QueueMatch(ctx context.Context, j app.MatchJob) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO match_jobs (user_id, receipt_id, attempts, due, deadline) VALUES ($1, $2, $3, $4, $5)`,
		j.User, j.ReceiptID, j.Attempts, storage.Micros(j.Due), storage.Micros(j.Deadline))
	if err != nil {
		return conflict("queue match job", err)
	}
	return nil
}

// Remember stores an idempotency key.
func (t *tx) Remember(ctx context.Context, k app.IdempotencyKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO idempotency_keys (partner, idem_key, user_id, partner_user_id, request_hash,
		partner_receipt_id, version, receipt_create_time, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.Partner, k.Key, k.User, k.PartnerUserID, k.RequestHash, k.Answer.ReceiptID, k.Answer.Version, storage.Micros(k.Answer.CreateTime), storage.Micros(k.Time))
	if err != nil {
		return conflict("insert idempotency key", err)
	}
	return nil
}

// AddEvent writes e to the outbox in this transaction.
func (t *tx) AddEvent(ctx context.Context, e app.Event) error {
	return addEvent(ctx, t.outbox, t.sqlTx, e)
}

func addEvent(ctx context.Context, outbox events.Outbox, sqlTx *sql.Tx, e app.Event) error {
	data, err := receiptpb.EventData(e)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, sqlTx, events.Event{
		ID: e.ID, Type: e.Type, Source: Source, User: e.User, Client: e.Client, Resource: e.Receipt, Time: e.Time, Data: data,
	})
}

const receiptColumns = `r.user_id, r.receipt_id, r.chain_id, r.version, r.amends, r.partner, r.partner_user_id, r.partner_receipt_id,
	r.bank_id, r.link, r.source_transaction, r.client_id, r.content, r.content_hash,
	r.match_transaction, r.match_confidence, r.match_time, r.create_time`

func insertReceipt(ctx context.Context, q storage.Queryer, r app.Receipt) error {
	content, err := receiptpb.MarshalContent(r.Content)
	if err != nil {
		return err
	}
	var mTx, mConf sql.NullString
	var mTime sql.NullInt64
	if r.Match != nil {
		mTx, mConf, mTime = storage.NullString(r.Match.Transaction), storage.NullString(string(r.Match.Confidence)), storage.NullMicros(r.Match.Time)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO receipts (user_id, receipt_id, chain_id, version, amends, partner, partner_user_id,
		partner_receipt_id, bank_id, link, source_transaction, client_id, merchant_key, purchase_time, content, content_hash,
		match_transaction, match_confidence, match_time, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		r.User, r.ID, r.ChainID, r.Version, storage.NullString(r.Amends), storage.NullString(r.Partner), storage.NullString(r.PartnerUserID), storage.NullString(r.PartnerReceiptID),
		storage.NullString(r.BankID), storage.NullString(r.Link), storage.NullString(r.SourceTransaction), r.Client, app.MerchantKey(r.Content.MerchantName),
		storage.Micros(r.Content.PurchaseTime), content, r.ContentHash, mTx, mConf, mTime, storage.Micros(r.CreateTime))
	if err != nil {
		return conflict("insert receipt", err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// scanReceipt reads receiptColumns and the amended_by column after them.
func scanReceipt(row scanner) (app.Receipt, error) {
	var r app.Receipt
	var amends, partner, puid, prid, bank, link, source, mTx, mConf, amendedBy sql.NullString
	var mTime sql.NullInt64
	var created int64
	var content []byte
	if err := row.Scan(&r.User, &r.ID, &r.ChainID, &r.Version, &amends, &partner, &puid, &prid, &bank, &link, &source,
		&r.Client, &content, &r.ContentHash, &mTx, &mConf, &mTime, &created, &amendedBy); err != nil {
		return app.Receipt{}, err
	}
	c, err := receiptpb.UnmarshalContent(content)
	if err != nil {
		return app.Receipt{}, err
	}
	r.Content = c
	r.Amends, r.Partner, r.PartnerUserID, r.PartnerReceiptID = amends.String, partner.String, puid.String, prid.String
	r.BankID, r.Link, r.SourceTransaction, r.AmendedBy = bank.String, link.String, source.String, amendedBy.String
	r.CreateTime = storage.FromMicros(created)
	if mTx.Valid {
		r.Match = &app.Match{Transaction: mTx.String, Confidence: app.Confidence(mConf.String), Time: storage.FromNullMicros(mTime)}
	}
	return r, nil
}

func scanOne(row *sql.Row) (app.Receipt, error) {
	r, err := scanReceipt(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Receipt{}, app.ErrNotFound
	}
	if err != nil {
		return app.Receipt{}, fmt.Errorf("read receipt: %w", err)
	}
	return r, nil
}

// Recall reads a partner's idempotency key.
func (s *Store) Recall(ctx context.Context, partner, key string) (app.IdempotencyKey, error) {
	k := app.IdempotencyKey{Partner: partner, Key: key}
	var created, made int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, partner_user_id, request_hash, partner_receipt_id, version, receipt_create_time,
		create_time FROM idempotency_keys WHERE partner = $1 AND idem_key = $2`, partner, key).
		Scan(&k.User, &k.PartnerUserID, &k.RequestHash, &k.Answer.ReceiptID, &k.Answer.Version, &created, &made)
	if errors.Is(err, sql.ErrNoRows) {
		return app.IdempotencyKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.IdempotencyKey{}, fmt.Errorf("read idempotency key: %w", err)
	}
	k.Answer.CreateTime, k.Time = storage.FromMicros(created), storage.FromMicros(made)
	return k, nil
}

// Receipt reads one version of the user's receipt, with the id of the
// version that amends it.
func (s *Store) Receipt(ctx context.Context, user, id string) (app.Receipt, error) {
	return scanOne(s.db.QueryRowContext(ctx, `SELECT `+receiptColumns+`,
		(SELECT n.receipt_id FROM receipts n WHERE n.user_id = r.user_id AND n.amends = r.receipt_id)
		FROM receipts r WHERE r.user_id = $1 AND r.receipt_id = $2`, user, id))
}

// listQuery is the keyset read of one page of a user's latest receipts:
// backwards along receipts_by_purchase (receipts_by_merchant with a
// merchant filter), so a page costs the same wherever it starts.
func listQuery(user string, f app.Filter, after *pagetoken.Position, limit int) (string, []any) {
	var b strings.Builder
	args := []any{user}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + receiptColumns + `, NULL FROM receipts r WHERE r.user_id = $1`)
	if f.MerchantKey != "" {
		b.WriteString(` AND r.merchant_key = ` + arg(f.MerchantKey))
	}
	if f.Transaction != "" {
		b.WriteString(` AND r.match_transaction = ` + arg(f.Transaction))
	}
	switch f.Match {
	case app.MatchMatched:
		b.WriteString(` AND r.match_transaction IS NOT NULL`)
	case app.MatchUnmatched:
		b.WriteString(` AND r.match_transaction IS NULL`)
	}
	if !f.Start.IsZero() {
		b.WriteString(` AND r.purchase_time >= ` + arg(storage.Micros(f.Start)))
	}
	if !f.End.IsZero() {
		b.WriteString(` AND r.purchase_time < ` + arg(storage.Micros(f.End)))
	}
	if after != nil {
		t, id := arg(storage.Micros(after.Time)), arg(after.ID)
		b.WriteString(` AND (r.purchase_time, r.receipt_id) < (` + t + `, ` + id + `)`)
	}
	// Only the latest version of each receipt: none amends it.
	b.WriteString(` AND NOT EXISTS (SELECT 1 FROM receipts n WHERE n.user_id = r.user_id AND n.amends = r.receipt_id)`)
	b.WriteString(` ORDER BY r.purchase_time DESC, r.receipt_id DESC`)
	b.WriteString(` LIMIT ` + strconv.Itoa(limit))
	return b.String(), args
}

// ListReceipts reads one page of the user's latest receipts, newest
// purchase first.
func (s *Store) ListReceipts(ctx context.Context, user string, f app.Filter, after *pagetoken.Position, limit int) ([]app.Receipt, error) {
	q, args := listQuery(user, f, after, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list receipts: %w", err)
	}
	defer rows.Close()
	var out []app.Receipt
	for rows.Next() {
		r, err := scanReceipt(rows)
		if err != nil {
			return nil, fmt.Errorf("list receipts: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list receipts: %w", err)
	}
	return out, nil
}

// DeleteChain deletes every version of the receipt id belongs to; its
// match jobs go with them.
func (s *Store) DeleteChain(ctx context.Context, user, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM receipts WHERE user_id = $1
		AND chain_id = (SELECT chain_id FROM receipts WHERE user_id = $1 AND receipt_id = $2)`, user, id)
	if err != nil {
		return fmt.Errorf("delete receipt: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// skipLocked is the clause that lets replicas claim different rows at once;
// on SQLite the transaction's write lock serialises claims.
func (s *Store) skipLocked() string {
	if s.db.Dialect() == storage.Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ClaimMatchJobs claims up to limit due jobs for now+lease.
func (s *Store) ClaimMatchJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]app.MatchJob, error) {
	// Run again after a claim that committed unseen, it finds those jobs
	// leased and claims others: they run when the lease ends.
	var out []app.MatchJob
	err := s.db.InTx(ctx, func(t *sql.Tx) error {
		out = nil
		rows, err := t.QueryContext(ctx, `SELECT user_id, receipt_id, attempts, due, deadline FROM match_jobs WHERE due <= $1
			ORDER BY due LIMIT `+strconv.Itoa(limit)+s.skipLocked(), storage.Micros(now))
		if err != nil {
			return fmt.Errorf("claim match jobs: %w", err)
		}
		for rows.Next() {
			var j app.MatchJob
			var due, deadline int64
			if err := rows.Scan(&j.User, &j.ReceiptID, &j.Attempts, &due, &deadline); err != nil {
				rows.Close()
				return fmt.Errorf("claim match jobs: %w", err)
			}
			j.Due, j.Deadline = storage.FromMicros(due), storage.FromMicros(deadline)
			out = append(out, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim match jobs: %w", err)
		}
		leased := storage.Micros(now.Add(lease))
		for _, j := range out {
			if _, err := t.ExecContext(ctx, `UPDATE match_jobs SET due = $3 WHERE user_id = $1 AND receipt_id = $2`,
				j.User, j.ReceiptID, leased); err != nil {
				return fmt.Errorf("claim match jobs: %w", err)
			}
		}
		return nil
	}, storage.Idempotent())
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RescheduleMatch sets a job's attempts and next time.
func (s *Store) RescheduleMatch(ctx context.Context, j app.MatchJob) error {
	_, err := s.db.ExecContext(ctx, `UPDATE match_jobs SET attempts = $3, due = $4 WHERE user_id = $1 AND receipt_id = $2`,
		j.User, j.ReceiptID, j.Attempts, storage.Micros(j.Due))
	if err != nil {
		return fmt.Errorf("reschedule match job: %w", err)
	}
	return nil
}

// DropMatchJob forgets a job.
func (s *Store) DropMatchJob(ctx context.Context, user, receiptID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM match_jobs WHERE user_id = $1 AND receipt_id = $2`, user, receiptID); err != nil {
		return fmt.Errorf("drop match job: %w", err)
	}
	return nil
}

// SetMatch records m on an unmatched receipt, drops its job and adds e.
func (s *Store) SetMatch(ctx context.Context, user, receiptID string, m app.Match, e app.Event) (bool, error) {
	// Only an unmatched receipt is updated: run again after a commit, it
	// sets nothing and adds no second event.
	set := false
	err := s.db.InTx(ctx, func(t *sql.Tx) error {
		res, err := t.ExecContext(ctx, `UPDATE receipts SET match_transaction = $3, match_confidence = $4, match_time = $5
			WHERE user_id = $1 AND receipt_id = $2 AND match_transaction IS NULL`,
			user, receiptID, m.Transaction, string(m.Confidence), storage.Micros(m.Time))
		if err != nil {
			return fmt.Errorf("set match: %w", err)
		}
		if _, err := t.ExecContext(ctx, `DELETE FROM match_jobs WHERE user_id = $1 AND receipt_id = $2`, user, receiptID); err != nil {
			return fmt.Errorf("drop match job: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		set = true
		return addEvent(ctx, s.outbox, t, e)
	}, storage.Idempotent())
	return set, err
}

// IssuerKnown reports which transactions have an issuer receipt or a miss.
func (s *Store) IssuerKnown(ctx context.Context, user string, transactions []string) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(transactions); start += inChunk {
		chunk := transactions[start:min(start+inChunk, len(transactions))]
		args := []any{user}
		for _, t := range chunk {
			args = append(args, t)
		}
		in := storage.Placeholders(2, len(chunk))
		rows, err := s.db.QueryContext(ctx, `SELECT source_transaction FROM receipts WHERE user_id = $1 AND source_transaction IN (`+in+`)
			UNION SELECT transaction_name FROM issuer_misses WHERE user_id = $1 AND transaction_name IN (`+in+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read issuer transactions: %w", err)
		}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read issuer transactions: %w", err)
			}
			known[t] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read issuer transactions: %w", err)
		}
	}
	return known, nil
}

// AddIssuerReceipt stores an issuer's receipt and its events.
func (s *Store) AddIssuerReceipt(ctx context.Context, r app.Receipt, evs []app.Event) (bool, error) {
	// Keyed by the receipt's id: run again after a commit, it conflicts
	// and adds nothing.
	err := s.db.InTx(ctx, func(t *sql.Tx) error {
		if err := insertReceipt(ctx, t, r); err != nil {
			return err
		}
		for _, e := range evs {
			if err := addEvent(ctx, s.outbox, t, e); err != nil {
				return err
			}
		}
		return nil
	}, storage.Idempotent())
	if errors.Is(err, app.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// AddIssuerMiss remembers that the issuer had no details for a transaction.
func (s *Store) AddIssuerMiss(ctx context.Context, user, transaction string, t time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO issuer_misses (user_id, transaction_name, check_time) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, transaction_name) DO UPDATE SET check_time = excluded.check_time`, user, transaction, storage.Micros(t))
	if err != nil {
		return fmt.Errorf("insert issuer miss: %w", err)
	}
	return nil
}

// IssuerSyncTime is when the user's issuer receipts were last synced.
func (s *Store) IssuerSyncTime(ctx context.Context, user string) (time.Time, error) {
	var t int64
	err := s.db.QueryRowContext(ctx, `SELECT sync_time FROM issuer_syncs WHERE user_id = $1`, user).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read issuer sync time: %w", err)
	}
	return storage.FromMicros(t), nil
}

// SetIssuerSyncTime records a sync; the zero time forgets the user.
func (s *Store) SetIssuerSyncTime(ctx context.Context, user string, t time.Time) error {
	var err error
	if t.IsZero() {
		_, err = s.db.ExecContext(ctx, `DELETE FROM issuer_syncs WHERE user_id = $1`, user)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT INTO issuer_syncs (user_id, sync_time) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET sync_time = excluded.sync_time`, user, storage.Micros(t))
	}
	if err != nil {
		return fmt.Errorf("write issuer sync time: %w", err)
	}
	return nil
}

// UsersToSync returns users last synced before t, oldest first.
func (s *Store) UsersToSync(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return s.strings(ctx, `SELECT user_id FROM issuer_syncs WHERE sync_time < $1 ORDER BY sync_time, user_id LIMIT `+strconv.Itoa(limit),
		storage.Micros(before))
}

// UsersWithReceipts returns users with receipts, in order, after one.
func (s *Store) UsersWithReceipts(ctx context.Context, after string, limit int) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT user_id FROM receipts WHERE user_id > $1 ORDER BY user_id LIMIT `+strconv.Itoa(limit), after)
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return out, nil
}

// PartnerSubjects returns partner-scoped ids with receipts, in order.
func (s *Store) PartnerSubjects(ctx context.Context, after app.PartnerSubject, limit int) ([]app.PartnerSubject, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT user_id, partner, partner_user_id FROM receipts
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

// exec runs statements in one transaction and returns the rows the first
// one affected.
func (s *Store) exec(ctx context.Context, what string, stmts []string, args ...any) (int, error) {
	n := 0
	err := s.db.InTx(ctx, func(t *sql.Tx) error {
		for i, q := range stmts {
			res, err := t.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if i == 0 {
				affected, _ := res.RowsAffected()
				n = int(affected)
			}
		}
		return nil
	}, storage.Idempotent()) // deletes only: a second run deletes nothing more
	return n, err
}

// DeleteExpired deletes receipts, keys and misses past their time.
func (s *Store) DeleteExpired(ctx context.Context, receiptsBefore, keysBefore, missesBefore time.Time) (int, error) {
	n, err := s.exec(ctx, "delete expired receipts", []string{`DELETE FROM receipts WHERE purchase_time < $1`}, storage.Micros(receiptsBefore))
	if err != nil {
		return 0, err
	}
	if _, err := s.exec(ctx, "delete expired idempotency keys", []string{`DELETE FROM idempotency_keys WHERE create_time < $1`}, storage.Micros(keysBefore)); err != nil {
		return n, err
	}
	if _, err := s.exec(ctx, "delete expired issuer misses", []string{`DELETE FROM issuer_misses WHERE check_time < $1`}, storage.Micros(missesBefore)); err != nil {
		return n, err
	}
	return n, nil
}

// DeletePartnerReceipts deletes what the partner sent for the user.
func (s *Store) DeletePartnerReceipts(ctx context.Context, user, partner, partnerUserID string) (int, error) {
	if partnerUserID == "" {
		return s.exec(ctx, "delete partner receipts", []string{
			`DELETE FROM receipts WHERE user_id = $1 AND partner = $2`,
			`DELETE FROM idempotency_keys WHERE user_id = $1 AND partner = $2`,
		}, user, partner)
	}
	return s.exec(ctx, "delete partner receipts", []string{
		`DELETE FROM receipts WHERE user_id = $1 AND partner = $2 AND partner_user_id = $3`,
		`DELETE FROM idempotency_keys WHERE user_id = $1 AND partner = $2 AND partner_user_id = $3`,
	}, user, partner, partnerUserID)
}

// DeleteUserReceipts deletes every receipt of the user and what is kept
// about them.
func (s *Store) DeleteUserReceipts(ctx context.Context, user string) (int, error) {
	return s.exec(ctx, "delete user receipts", []string{
		`DELETE FROM receipts WHERE user_id = $1`,
		`DELETE FROM idempotency_keys WHERE user_id = $1`,
		`DELETE FROM issuer_misses WHERE user_id = $1`,
		`DELETE FROM issuer_syncs WHERE user_id = $1`,
	}, user)
}

// DeleteLinkReceipts deletes the issuer receipts read under link.
func (s *Store) DeleteLinkReceipts(ctx context.Context, user, link string) (int, error) {
	return s.exec(ctx, "delete link receipts", []string{`DELETE FROM receipts WHERE user_id = $1 AND link = $2`}, user, link)
}
