package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// outboxBus stands in for the platform's relay and bus in the service's
// tests: it reads the events committed to the outbox table, in order, and
// hands each one Consume's filter matches to the handler until the handler
// succeeds, waiting retry between attempts, as a durable consumer
// redelivers what was not acknowledged. The real relay and JetStream are
// exercised by the end-to-end tests.
type outboxBus struct {
	db    *storage.DB
	retry time.Duration
}

func (b *outboxBus) Consume(ctx context.Context, _ string, f events.Filter, handle func(context.Context, events.Delivered) error) error {
	var after int64
	for {
		evs, seqs, err := readOutbox(ctx, b.db, after)
		if err != nil {
			return err
		}
		for i, e := range evs {
			if len(f.Types) == 0 || slices.Contains(f.Types, e.Type) {
				for handle(ctx, events.Delivered{Event: e}) != nil {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(b.retry):
					}
				}
			}
			after = seqs[i]
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// readOutbox returns the events in the outbox table after seq, in order,
// with their sequence numbers.
func readOutbox(ctx context.Context, db *storage.DB, after int64) ([]events.Event, []int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, event_id, user_id, event_type, source, client_id, resource, event_time, data
		FROM events_outbox WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		evs  []events.Event
		seqs []int64
	)
	for rows.Next() {
		var (
			e    events.Event
			seq  int64
			at   int64
			data string
		)
		if err := rows.Scan(&seq, &e.ID, &e.User, &e.Type, &e.Source, &e.Client, &e.Resource, &at, &data); err != nil {
			return nil, nil, err
		}
		e.Time, e.Data = storage.FromMicros(at), []byte(data)
		evs, seqs = append(evs, e), append(seqs, seq)
	}
	return evs, seqs, rows.Err()
}

// outboxed returns the events of type typ in f's outbox, in order.
func (f *fixture) outboxed(t *testing.T, typ string) []events.Event {
	t.Helper()
	evs, _, err := readOutbox(t.Context(), f.db, 0)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(evs, func(e events.Event) bool { return e.Type != typ })
}
