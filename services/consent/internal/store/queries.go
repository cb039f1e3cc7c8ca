package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries are the reads, on the database or within a transaction.
type queries struct {
	q  querier
	db *storage.DB
}

const linkColumns = `user_id, link_id, bank_id, bank_display_name, state, scopes, purposes, expire_time,
	create_time, update_time, verify_time, revoke_time, bank_consent_id, sca_method, sca_status,
	sca_attempts_remaining, sca_failed_attempts, sca_expire_time, sca_redirect_uri, sca_instruction,
	expiry_warn_time, revoked_by_bank, client_id, login_hash, decoy`

// linkValues lists l's column values in linkColumns order.
func linkValues(l app.Link) []any {
	return []any{
		l.User, l.ID, l.BankID, l.BankDisplayName, l.State.String(), joinNames(l.Scopes), joinNames(l.Purposes),
		storage.Micros(l.ExpireTime), storage.Micros(l.CreateTime), storage.Micros(l.UpdateTime),
		storage.NullMicros(l.VerifyTime), storage.NullMicros(l.RevokeTime), l.BankConsentID,
		l.SCA.Method.String(), l.SCA.Status.String(), l.SCA.AttemptsRemaining, l.SCA.FailedAttempts,
		zeroMicros(l.SCA.ExpireTime), l.SCA.RedirectURI, l.SCA.Instruction, storage.NullMicros(l.ExpiryWarnTime),
		l.RevokedByBank, l.Client, l.LoginHash, l.Decoy,
	}
}

// zeroMicros stores the zero time as 0 in a NOT NULL time column.
func zeroMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return storage.Micros(t)
}

func fromZeroMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return storage.FromMicros(us)
}

func scanLink(rows interface{ Scan(...any) error }) (app.Link, error) {
	var (
		l                                 app.Link
		state, scopes, purposes           string
		method, status                    string
		expire, create, update, scaExpire int64
		verify, revoke, warned            sql.NullInt64
	)
	err := rows.Scan(&l.User, &l.ID, &l.BankID, &l.BankDisplayName, &state, &scopes, &purposes, &expire,
		&create, &update, &verify, &revoke, &l.BankConsentID, &method, &status,
		&l.SCA.AttemptsRemaining, &l.SCA.FailedAttempts, &scaExpire, &l.SCA.RedirectURI, &l.SCA.Instruction,
		&warned, &l.RevokedByBank, &l.Client, &l.LoginHash, &l.Decoy)
	if err != nil {
		return app.Link{}, err
	}
	if l.Scopes, err = splitNames[commonv1.Scope](scopes, commonv1.Scope_value); err != nil {
		return app.Link{}, fmt.Errorf("link scopes: %w", err)
	}
	if l.Purposes, err = splitNames[commonv1.Purpose](purposes, commonv1.Purpose_value); err != nil {
		return app.Link{}, fmt.Errorf("link purposes: %w", err)
	}
	l.State = app.ParseState(state)
	l.SCA.Method, l.SCA.Status = app.ParseScaMethod(method), app.ParseScaStatus(status)
	l.ExpireTime, l.CreateTime, l.UpdateTime = storage.FromMicros(expire), storage.FromMicros(create), storage.FromMicros(update)
	l.VerifyTime, l.RevokeTime, l.ExpiryWarnTime = storage.FromNullMicros(verify), storage.FromNullMicros(revoke), storage.FromNullMicros(warned)
	l.SCA.ExpireTime = fromZeroMicros(scaExpire)
	return l, nil
}

func (q queries) selectLinks(ctx context.Context, where string, args ...any) ([]app.Link, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+linkColumns+` FROM links `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("select links: %w", err)
	}
	defer rows.Close()
	var links []app.Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("select links: %w", err)
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select links: %w", err)
	}
	return links, nil
}

func (q queries) link(ctx context.Context, user, id string, lock bool) (app.Link, error) {
	where := `WHERE user_id = $1 AND link_id = $2`
	if lock {
		where += q.db.ForUpdate()
	}
	links, err := q.selectLinks(ctx, where, user, id)
	if err != nil {
		return app.Link{}, err
	}
	if len(links) == 0 {
		return app.Link{}, app.ErrNotFound
	}
	return links[0], nil
}

// Link returns one link as stored.
func (q queries) Link(ctx context.Context, user, id string) (app.Link, error) {
	return q.link(ctx, user, id, false)
}

// args numbers the arguments of a query built piece by piece.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// ListLinks returns a page of the user's links, newest first. The state
// filter matches the state a link reads as at f.Now (app.Link.At), so a
// page never mixes a stale state with a fresh one.
func (q queries) ListLinks(ctx context.Context, user string, f app.LinkFilter, after *app.LinkCursor, limit int) ([]app.Link, error) {
	var a args
	where := `WHERE user_id = ` + a.add(user)
	if f.BankID != "" {
		where += ` AND bank_id = ` + a.add(f.BankID)
	}
	if f.State != app.StateUnspecified {
		now := storage.Micros(f.Now)
		switch f.State {
		case app.StateValid:
			where += ` AND state = 'VALID' AND expire_time > ` + a.add(now)
		case app.StateExpired:
			where += ` AND (state = 'EXPIRED' OR (state = 'VALID' AND expire_time <= ` + a.add(now) + `))`
		case app.StateReceived:
			where += ` AND state = 'RECEIVED' AND (sca_expire_time = 0 OR sca_expire_time > ` + a.add(now) + `)`
		case app.StateRejected:
			where += ` AND (state = 'REJECTED' OR (state = 'RECEIVED' AND sca_expire_time <> 0 AND sca_expire_time <= ` + a.add(now) + `))`
		default:
			where += ` AND state = ` + a.add(f.State.String())
		}
	}
	if after != nil {
		t := a.add(storage.Micros(after.CreateTime))
		where += ` AND (create_time < ` + t + ` OR (create_time = ` + t + ` AND link_id < ` + a.add(after.ID) + `))`
	}
	where += ` ORDER BY create_time DESC, link_id DESC LIMIT ` + a.add(limit)
	return q.selectLinks(ctx, where, a...)
}

// The filters of UserLinks, which CheckConsent runs on every call: each
// must be answered from the user's own rows (links_by_user_bank), never by
// reading a whole bank's links.
const (
	whereUser     = `WHERE user_id = $1`
	whereUserBank = `WHERE user_id = $1 AND bank_id = $2`
)

// UserLinks returns all of the user's links, at bankID when it is set.
func (q queries) UserLinks(ctx context.Context, user, bankID string) ([]app.Link, error) {
	if bankID == "" {
		return q.selectLinks(ctx, whereUser, user)
	}
	return q.selectLinks(ctx, whereUserBank, user, bankID)
}

// BankConsentLinks returns every link of bankID whose bank consent id is
// bankConsentID, of any user and in any state.
func (q queries) BankConsentLinks(ctx context.Context, bankID, bankConsentID string) ([]app.Link, error) {
	return q.selectLinks(ctx, `WHERE bank_id = $1 AND bank_consent_id = $2`, bankID, bankConsentID)
}

// LinksToWarn returns VALID links ending in (now, horizon] not yet warned
// about, soonest first.
func (q queries) LinksToWarn(ctx context.Context, now, horizon time.Time, limit int) ([]app.Link, error) {
	return q.selectLinks(ctx, `WHERE state = 'VALID' AND expiry_warn_time IS NULL AND expire_time > $1 AND expire_time <= $2
		ORDER BY expire_time, user_id, link_id LIMIT $3`, storage.Micros(now), storage.Micros(horizon), limit)
}

// Idempotency returns the record of a key.
func (q queries) Idempotency(ctx context.Context, user, op, key string) (app.Idempotency, error) {
	r := app.Idempotency{User: user, Operation: op, Key: key}
	var created int64
	err := q.q.QueryRowContext(ctx, `SELECT request_hash, link_id, error_reason, attempts_remaining, create_time
		FROM idempotency_keys WHERE user_id = $1 AND operation = $2 AND idempotency_key = $3`, user, op, key).
		Scan(&r.RequestHash, &r.LinkID, &r.ErrReason, &r.AttemptsRemaining, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Idempotency{}, app.ErrNotFound
	}
	if err != nil {
		return app.Idempotency{}, fmt.Errorf("select idempotency key: %w", err)
	}
	r.CreateTime = storage.FromMicros(created)
	return r, nil
}

const accessColumns = `user_id, sequence, access_time, client_id, subject_id, method, resource, purpose, scope,
	outcome, reason, trace_id, previous_hash, hash`

func (q queries) selectAccess(ctx context.Context, where string, args ...any) ([]app.AccessEntry, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+accessColumns+` FROM access_log `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("select access log: %w", err)
	}
	defer rows.Close()
	var out []app.AccessEntry
	for rows.Next() {
		var (
			e                       app.AccessEntry
			at                      int64
			purpose, scope, outcome string
		)
		err := rows.Scan(&e.User, &e.Sequence, &at, &e.ClientID, &e.SubjectID, &e.Method, &e.Resource, &purpose, &scope,
			&outcome, &e.Reason, &e.TraceID, &e.PreviousHash, &e.Hash)
		if err != nil {
			return nil, fmt.Errorf("select access log: %w", err)
		}
		// Unknown names read as UNSPECIFIED rather than failing: the
		// verifier then reports the entry's hash as broken, which it is.
		e.AccessTime = storage.FromMicros(at)
		e.Purpose = commonv1.Purpose(commonv1.Purpose_value[purpose])
		e.Scope = commonv1.Scope(commonv1.Scope_value[scope])
		e.Outcome = app.ParseOutcome(outcome)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select access log: %w", err)
	}
	return out, nil
}

// AccessLog returns a page of the user's entries, newest first.
func (q queries) AccessLog(ctx context.Context, user string, f app.AccessFilter, beforeSeq int64, limit int) ([]app.AccessEntry, error) {
	var a args
	where := `WHERE user_id = ` + a.add(user)
	if beforeSeq > 0 {
		where += ` AND sequence < ` + a.add(beforeSeq)
	}
	if !f.Start.IsZero() {
		where += ` AND access_time >= ` + a.add(storage.Micros(f.Start))
	}
	if !f.End.IsZero() {
		where += ` AND access_time < ` + a.add(storage.Micros(f.End))
	}
	if f.Outcome != app.OutcomeUnspecified {
		where += ` AND outcome = ` + a.add(f.Outcome.String())
	}
	where += ` ORDER BY sequence DESC LIMIT ` + a.add(limit)
	return q.selectAccess(ctx, where, a...)
}

// whereTrace selects the entries of one trace id, of any user, oldest
// first; access_log_by_trace answers it.
const whereTrace = `WHERE trace_id = $1 ORDER BY access_time, user_id, sequence LIMIT $2`

// AccessByTrace returns up to limit entries, of any user, recorded under
// traceID, oldest first.
func (q queries) AccessByTrace(ctx context.Context, traceID string, limit int) ([]app.AccessEntry, error) {
	return q.selectAccess(ctx, whereTrace, traceID, limit)
}

// AccessChain returns the user's entries after afterSeq, oldest first.
func (q queries) AccessChain(ctx context.Context, user string, afterSeq int64, limit int) ([]app.AccessEntry, error) {
	return q.selectAccess(ctx, `WHERE user_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3`, user, afterSeq, limit)
}

// AccessHead returns the head of the user's chain, with its signature;
// zero when there is none.
func (q queries) AccessHead(ctx context.Context, user string) (app.ChainHead, error) {
	var h app.ChainHead
	err := q.q.QueryRowContext(ctx, `SELECT sequence, hash, `+signatureColumns+` FROM access_log_heads WHERE user_id = $1`, user).
		Scan(&h.Sequence, &h.Hash, &h.Signed.Sequence, &h.Signed.KeyVersion, &h.Signed.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return app.ChainHead{}, nil
	}
	if err != nil {
		return app.ChainHead{}, fmt.Errorf("select chain head: %w", err)
	}
	return h, nil
}

// AccessUsers lists the users with entries or a chain head, in order.
func (q queries) AccessUsers(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT user_id FROM (
			SELECT user_id FROM access_log_heads UNION SELECT user_id FROM access_log
		) AS u WHERE user_id > $1 ORDER BY user_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("select access log users: %w", err)
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("select access log users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select access log users: %w", err)
	}
	return users, nil
}
