package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// notifyChannel is the PostgreSQL channel that carries link and partner
// opt-in changes.
const notifyChannel = "bankbridge_consent_changes"

// subscriberBuffer is how many changes a watcher may fall behind by before
// it is cut off (it then reconnects and starts afresh, as the contract
// says).
const subscriberBuffer = 256

// feed fans committed changes out to subscribers. It is live while every
// change reaches it: always on SQLite, and on PostgreSQL while LISTEN is
// up. A subscriber that arrives while it is not live, or that falls behind,
// gets a closed channel: it must not believe it sees every change.
type feed struct {
	mu   sync.Mutex
	live bool
	subs map[chan app.Change]struct{}
}

func newFeed() *feed { return &feed{subs: map[chan app.Change]struct{}{}} }

func (f *feed) subscribe(ctx context.Context) <-chan app.Change {
	ch := make(chan app.Change, subscriberBuffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live {
		close(ch)
		return ch
	}
	f.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.dropLocked(ch)
	})
	return ch
}

func (f *feed) dropLocked(ch chan app.Change) {
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
}

func (f *feed) publish(changes []app.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		for _, c := range changes {
			select {
			case ch <- c:
			default:
				f.dropLocked(ch)
			}
			if _, ok := f.subs[ch]; !ok {
				break
			}
		}
	}
}

// setLive turns the feed on or off; off closes every subscriber.
func (f *feed) setLive(live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live = live
	if !live {
		for ch := range f.subs {
			f.dropLocked(ch)
		}
	}
}

// Subscribe returns a channel of every committed change from now on,
// closed when ctx ends, when the subscriber falls behind, or when changes
// may have been missed (the feed is not live). A closed channel means:
// reconnect and trust nothing cached.
func (s *Store) Subscribe(ctx context.Context) <-chan app.Change { return s.feed.subscribe(ctx) }

// publishLocal hands a committed transaction's changes to the feed; on
// PostgreSQL they come back through LISTEN instead, from every replica.
func (s *Store) publishLocal(changes []app.Change) {
	if s.db.Dialect() != storage.Postgres {
		s.feed.publish(changes)
	}
}

// changeMessage is a change as NOTIFY carries it: a link's (l, s) or a
// partner opt-in's (o, p, os). It never carries a partner-scoped user id.
type changeMessage struct {
	User       string `json:"u"`
	Link       string `json:"l,omitempty"`
	State      string `json:"s,omitempty"`
	OptIn      string `json:"o,omitempty"`
	Partner    string `json:"p,omitempty"`
	OptInState string `json:"os,omitempty"`
}

func toMessage(c app.Change) changeMessage {
	if c.OptInID != "" {
		return changeMessage{User: c.User, OptIn: c.OptInID, Partner: c.Partner, OptInState: c.OptInState.String()}
	}
	return changeMessage{User: c.User, Link: c.LinkID, State: c.State.String()}
}

func (m changeMessage) change() app.Change {
	if m.OptIn != "" {
		return app.Change{User: m.User, OptInID: m.OptIn, Partner: m.Partner, OptInState: app.ParseOptInState(m.OptInState)}
	}
	return app.Change{User: m.User, LinkID: m.Link, State: app.ParseState(m.State)}
}

// notify queues a transaction's changes with PostgreSQL, which delivers
// them to every listener when (and only if) the transaction commits.
func (s *Store) notify(ctx context.Context, tx *sql.Tx, changes []app.Change) error {
	if s.db.Dialect() != storage.Postgres {
		return nil
	}
	for _, c := range changes {
		payload, _ := json.Marshal(toMessage(c))
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, string(payload)); err != nil {
			return fmt.Errorf("notify change: %w", err)
		}
	}
	return nil
}

// Run feeds watchers until ctx ends, then closes them. On PostgreSQL it
// holds a connection that LISTENs for changes, reconnecting when it drops;
// while it is down the feed is not live.
func (s *Store) Run(ctx context.Context) error {
	defer s.feed.setLive(false)
	if s.db.Dialect() != storage.Postgres {
		<-ctx.Done()
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.listen(ctx)
		s.feed.setLive(false)
		if ctx.Err() != nil {
			return nil
		}
		s.log.WarnContext(ctx, "consent change feed lost its database connection; reconnecting",
			slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen LISTENs on one connection and publishes what arrives until the
// connection fails or ctx ends.
func (s *Store) listen(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, want pgx", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		// The connection goes back to the pool after this; leave it clean.
		defer func() { _, _ = pc.Exec(context.WithoutCancel(ctx), "UNLISTEN "+notifyChannel) }()
		s.feed.setLive(true)
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return fmt.Errorf("wait for notification: %w", err)
			}
			var m changeMessage
			if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
				return fmt.Errorf("notification payload: %w", err)
			}
			s.feed.publish([]app.Change{m.change()})
		}
	})
}
