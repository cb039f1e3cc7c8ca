package events

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// Relay defaults.
const (
	// DefaultRetention is how long published rows stay in the outbox.
	DefaultRetention = 7 * 24 * time.Hour
	defaultBatch     = 256
	maxRelayBatch    = 1024
	defaultPoll      = 100 * time.Millisecond
	// pruneEvery is how often the leading relay prunes.
	pruneEvery = time.Minute
	// pruneChunk bounds one DELETE, so pruning a large backlog never holds
	// SQLite's write lock for long.
	pruneChunk = 1000
	// expectCommit is how long after a wake-up (an Add in this process)
	// the relay looks every millisecond for the row's commit.
	expectCommit = 100 * time.Millisecond
	// markTimeout bounds marking a batch published, which runs even when
	// the relay is stopping (fewer republished duplicates).
	markTimeout = 5 * time.Second
)

// RelayConfig tunes a Relay; zero values take the defaults.
type RelayConfig struct {
	// Retention is how long published rows are kept before they are
	// pruned; default DefaultRetention.
	Retention time.Duration
	// BatchSize is how many rows are read at once; default 256, at most
	// 1024.
	BatchSize int
	// Poll is how often the outbox is read while nothing wakes the relay:
	// rows written by another replica's process wait up to this long.
	// Rows written in this process wake it. Default 100ms.
	Poll time.Duration
	// Logger receives failures; default: none.
	Logger *slog.Logger
}

// Relay publishes the outbox's rows to the bus: in commit order for each
// user, at least once (a row is marked published only once the stream has
// stored it, and marks are written in bulk a few times a second; a row
// published again after a crash carries the same Nats-Msg-Id, which the
// stream's duplicate window drops), and prunes the published rows after
// the retention.
//
// One relay leads per database: on PostgreSQL the one holding an advisory
// lock, on a connection of its own (a crashed leader's lock goes with its
// connection, and another replica takes over within a second); on SQLite,
// which one process owns, one Run at a time per SQLOutbox (bootstrap
// makes one outbox and one relay per service).
type Relay struct {
	outbox *SQLOutbox
	bus    *Bus
	cfg    RelayConfig
	log    *slog.Logger

	leading   atomic.Bool
	published atomic.Int64
	// afterPublish, when set (tests), runs between publishing a batch and
	// marking it; an error returns from the batch without marking.
	afterPublish func() error
}

// NewRelay returns a relay from o to bus; Run runs it.
func NewRelay(o *SQLOutbox, bus *Bus, cfg RelayConfig) *Relay {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatch
	}
	cfg.BatchSize = min(cfg.BatchSize, maxRelayBatch)
	if cfg.Poll <= 0 {
		cfg.Poll = defaultPoll
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{outbox: o, bus: bus, cfg: cfg, log: log.With(slog.String("component", "events-relay"))}
}

// Leading reports whether this relay holds the lease and publishes.
func (r *Relay) Leading() bool { return r.leading.Load() }

// Published counts the rows this relay published and marked.
func (r *Relay) Published() int64 { return r.published.Load() }

// Run relays until ctx ends, then returns nil: it waits for the lease,
// relays while it holds it, and after a failure (database or bus) waits
// and starts again. It never gives up on its own.
func (r *Relay) Run(ctx context.Context) error {
	const firstWait = 100 * time.Millisecond
	wait := firstWait
	for {
		began := time.Now()
		err := r.runLease(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			wait = firstWait // it worked for a while: a new failure
		}
		r.log.WarnContext(ctx, "event relay interrupted; retrying", slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// querier is what a relay reads and writes through: a connection of its
// own (on PostgreSQL, the one that holds the lease).
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// runLease takes the lease, relays, and gives the lease back.
func (r *Relay) runLease(ctx context.Context) error {
	db := r.outbox.db
	if db.Dialect() != storage.Postgres {
		select {
		case r.outbox.lease <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-r.outbox.lease }()
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("relay connection: %w", err)
		}
		// Never pool this connection again: its busy timeout is changed.
		defer func() { _ = conn.Raw(func(any) error { return driver.ErrBadConn }) }()
		// SQLite's busy handler sleeps longer the longer a statement has
		// waited, so under a steady stream of writes the relay's marks
		// would wait behind every fresh writer (a second and more), and
		// publishing with them. Fail at once instead: marks wait for the
		// next flush, and what must be written is retried often (exec).
		if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
			return fmt.Errorf("relay connection: %w", err)
		}
		return r.lead(ctx, conn)
	}
	conn, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	err = r.lead(ctx, conn)
	if err == nil || ctx.Err() != nil {
		// A clean stop: hand the lease over at once.
		unlock, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		_, uerr := conn.ExecContext(unlock, `SELECT pg_advisory_unlock($1::int4, 0)`, lockSpaceRelay)
		cancel()
		if uerr == nil {
			_ = conn.Close()
			return err
		}
	}
	// The connection is in doubt: close it rather than pool it with the
	// lock perhaps still held; the lock goes with it.
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	return err
}

// acquire waits until this relay holds the PostgreSQL lease, and returns
// the connection that holds it.
func (r *Relay) acquire(ctx context.Context) (*sql.Conn, error) {
	retry := max(10*r.cfg.Poll, time.Second)
	for {
		conn, err := r.outbox.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("relay lease: %w", err)
		}
		var got bool
		err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1::int4, 0)`, lockSpaceRelay).Scan(&got)
		if err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return nil, fmt.Errorf("relay lease: %w", err)
		}
		if got {
			return conn, nil
		}
		_ = conn.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retry):
		}
	}
}

// lead relays until ctx ends (nil) or a batch fails.
func (r *Relay) lead(ctx context.Context, q querier) error {
	r.leading.Store(true)
	defer r.leading.Store(false)
	r.log.InfoContext(ctx, "event relay leading")
	m := &marks{set: map[int64]bool{}}
	// Whatever the reason to stop, mark what was published (mark outlives
	// ctx); if the database is gone, those rows are published again.
	defer func() { _ = r.flush(ctx, q, m, true) }()
	nextPrune := time.Now()
	delay := r.cfg.Poll
	busDown := time.Duration(0)
	var expect time.Time // until when a commit announced by a wake-up is expected
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if now := time.Now(); !now.Before(nextPrune) {
			if err := r.prune(ctx, q, now); err != nil {
				return err
			}
			nextPrune = now.Add(pruneEvery)
		}
		n, err := r.batch(ctx, q, m)
		var pubErr publishError
		if err != nil && !errors.As(err, &pubErr) {
			return err
		}
		if len(m.seqs) > 0 && (len(m.seqs) >= markMax || time.Since(m.since) >= markEvery) {
			// Wait for the database only when many rows wait to be marked.
			if err := r.flush(ctx, q, m, len(m.seqs) >= markMax); err != nil {
				return err
			}
		}
		switch {
		case pubErr.err != nil:
			// The bus is down or refuses: keep the lease (the database is
			// fine) and try again, less and less often.
			busDown = min(max(2*busDown, 100*time.Millisecond), 5*time.Second)
			delay = busDown
			r.log.WarnContext(ctx, "event relay cannot publish; retrying", slog.String("error", err.Error()),
				slog.Duration("bankbridge.retry_in", delay))
		case n >= r.cfg.BatchSize:
			busDown = 0
			continue // more is waiting
		case n > 0:
			busDown, delay = 0, time.Millisecond
		case time.Now().Before(expect):
			// A row announced by a wake-up may not be committed yet: look
			// again every millisecond for a while ...
			delay = time.Millisecond
		default:
			// ... then less and less often.
			delay = min(2*delay, r.cfg.Poll)
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			return nil
		case <-r.outbox.wake:
			delay, expect = time.Millisecond, time.Now().Add(expectCommit)
		case <-timer.C:
		}
	}
}

// Marking in bulk.
const (
	// markEvery is how long a published row may wait to be marked: the
	// relay takes the database's write lock a few times a second rather
	// than once per batch. A relay that dies in between publishes those
	// rows again, and the stream's duplicate window (minutes) drops them.
	markEvery = 50 * time.Millisecond
	// markMax is how many rows may wait to be marked: past it, the relay
	// waits for the database to mark them before it publishes more.
	markMax = 2048
)

// marks are rows published and not yet marked; reads skip them.
type marks struct {
	seqs  []int64
	set   map[int64]bool
	since time.Time // when the oldest was published
}

func (m *marks) add(seqs []int64) {
	if len(m.seqs) == 0 {
		m.since = time.Now()
	}
	for _, s := range seqs {
		m.seqs = append(m.seqs, s)
		m.set[s] = true
	}
}

// flush marks m's rows published. Unless wait, it gives up (nil) when the
// database is busy (SQLite's write lock taken), and the rows wait for the
// next flush while the relay goes on publishing.
func (r *Relay) flush(ctx context.Context, q querier, m *marks, wait bool) error {
	if len(m.seqs) == 0 {
		return nil
	}
	n, err := r.mark(ctx, q, m.seqs, wait)
	r.published.Add(int64(n))
	for _, s := range m.seqs[:n] {
		delete(m.set, s)
	}
	m.seqs = m.seqs[:copy(m.seqs, m.seqs[n:])]
	if !wait && storage.IsRetryable(err) {
		return nil
	}
	return err
}

// row is one unpublished event.
type row struct {
	seq int64
	e   Event
}

// batch publishes up to BatchSize unpublished rows, and adds those the
// stream stored to m. A user's rows go out in seq order, one at a time: a
// wave carries at most one row per user and is published pipelined; the
// next wave carries each user's next row. Once one of a user's rows fails,
// the user's later rows wait for the next batch, so nothing is ever
// published ahead of an earlier row of its user. An audience event (its
// recipients' too) is a wave of its own, published once every row before
// it is, and before any row after it.
func (r *Relay) batch(ctx context.Context, q querier, m *marks) (int, error) {
	rows, err := r.read(ctx, q, m)
	if storage.IsRetryable(err) {
		return 0, nil // SQLite busy (see runLease): nothing read, look again soon
	}
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	blocked := map[string]bool{}
	var done []int64
	var failed error
	for pending := rows; len(pending) > 0; {
		var wave, rest []row
		inWave := map[string]bool{}
		held := false // a row of a blocked user was held back
	rows:
		for i, rw := range pending {
			switch {
			case len(rw.e.Audience) > 0:
				// An audience event concerns every recipient: it goes
				// after every row before it, alone, and before every row
				// after it. Behind a row held back, everything waits for
				// the next batch.
				switch {
				case held:
				case len(wave) == 0 && len(rest) == 0:
					wave = append(wave, rw)
					rest = append(rest, pending[i+1:]...)
				default:
					rest = append(rest, pending[i:]...)
				}
				break rows
			case blocked[rw.e.User]:
				held = true
			case inWave[rw.e.User]:
				rest = append(rest, rw)
			default:
				inWave[rw.e.User] = true
				wave = append(wave, rw)
			}
		}
		events := make([]Event, len(wave))
		for i, rw := range wave {
			events[i] = rw.e
		}
		stop := false
		for i, err := range r.bus.publishAll(ctx, events) {
			if err != nil {
				blocked[wave[i].e.User] = true
				failed = orFirst(failed, err)
				// Nothing goes ahead of a failed audience event.
				stop = stop || len(wave[i].e.Audience) > 0
				continue
			}
			done = append(done, wave[i].seq)
		}
		if stop {
			break
		}
		pending = rest
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(); err != nil {
			return 0, err
		}
	}
	m.add(done)
	if failed != nil {
		return len(done), publishError{failed}
	}
	return len(done), nil
}

// publishError is a batch's failure to publish (the bus's fault, not the
// database's).
type publishError struct{ err error }

func (e publishError) Error() string { return "publish: " + e.err.Error() }
func (e publishError) Unwrap() error { return e.err }

func orFirst(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// read returns up to BatchSize unpublished rows in seq order, but those
// in m (published, not yet marked).
func (r *Relay) read(ctx context.Context, q querier, m *marks) ([]row, error) {
	rs, err := q.QueryContext(ctx, `SELECT seq, event_id, user_id, event_type, source, client_id, resource, event_time, data, audience
		FROM events_outbox WHERE publish_time IS NULL ORDER BY seq LIMIT $1`, r.cfg.BatchSize+len(m.seqs))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() && len(out) < r.cfg.BatchSize {
		var rw row
		var at int64
		var data, audience string
		if err := rs.Scan(&rw.seq, &rw.e.ID, &rw.e.User, &rw.e.Type, &rw.e.Source, &rw.e.Client, &rw.e.Resource, &at, &data, &audience); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if m.set[rw.seq] {
			continue
		}
		rw.e.Time = storage.FromMicros(at)
		if data != "" {
			rw.e.Data = []byte(data)
		}
		if audience != "" {
			rw.e.Audience = strings.Split(audience, "\n")
		}
		out = append(out, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// mark records rows as published and returns how many it marked (the
// first ones of seqs). It runs even once ctx has ended, so a relay that
// stops after publishing leaves fewer rows to publish again. Unless wait,
// it tries once per chunk and stops at a busy database.
func (r *Relay) mark(ctx context.Context, q querier, seqs []int64, wait bool) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	now := storage.Micros(r.outbox.now())
	const chunk = 500
	marked := 0
	for marked < len(seqs) {
		n := min(len(seqs)-marked, chunk)
		args := make([]any, 0, n+1)
		args = append(args, now)
		params := make([]string, n)
		for i, s := range seqs[marked : marked+n] {
			args = append(args, s)
			params[i] = "$" + strconv.Itoa(i+2)
		}
		query := `UPDATE events_outbox SET publish_time = $1 WHERE seq IN (` + strings.Join(params, ", ") + `)`
		var err error
		if wait {
			_, err = exec(ctx, q, query, args...)
		} else {
			_, err = q.ExecContext(ctx, query, args...)
		}
		if err != nil {
			return marked, fmt.Errorf("mark published: %w", err)
		}
		marked += n
	}
	return marked, nil
}

// prune deletes rows published before the retention, a chunk at a time.
func (r *Relay) prune(ctx context.Context, q querier, now time.Time) error {
	cutoff := storage.Micros(now.Add(-r.cfg.Retention))
	for {
		res, err := exec(ctx, q, `DELETE FROM events_outbox WHERE seq IN (
			SELECT seq FROM events_outbox WHERE publish_time IS NOT NULL AND publish_time < $1 ORDER BY publish_time LIMIT $2)`,
			cutoff, pruneChunk)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("prune outbox: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n < pruneChunk {
			return nil
		}
	}
}

// busyRetry is how often exec tries again a statement that found the
// database busy.
const busyRetry = 250 * time.Microsecond

// exec runs a statement, again and again while the database is busy
// (SQLite's write lock taken; see runLease), until ctx ends.
func exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	for {
		res, err := q.ExecContext(ctx, query, args...)
		if err == nil || !storage.IsRetryable(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(busyRetry):
		}
	}
}
