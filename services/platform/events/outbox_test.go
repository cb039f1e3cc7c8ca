package events_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// migrated returns db with the outbox table.
func migrated(t testing.TB, db *storage.DB) *storage.DB {
	t.Helper()
	if err := events.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// add writes es, each in a transaction of its own.
func add(t testing.TB, db *storage.DB, o events.Outbox, es ...events.Event) {
	t.Helper()
	for _, e := range es {
		if err := db.InTx(context.Background(), func(tx *sql.Tx) error { return o.Add(context.Background(), tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
}

func count(t testing.TB, db *storage.DB, where string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM events_outbox WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOutbox(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)
		o := events.NewOutbox(db)
		ctx := t.Context()

		t.Run("migrate twice is a no-op", func(t *testing.T) {
			if err := events.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("an event is written with its transaction", func(t *testing.T) {
			e := event("alice", "consent.link.expiring", 1)
			add(t, db, o, e)
			var user, typ, data string
			var published sql.NullInt64
			err := db.QueryRowContext(ctx, "SELECT user_id, event_type, data, publish_time FROM events_outbox WHERE event_id = $1", e.ID).
				Scan(&user, &typ, &data, &published)
			if err != nil {
				t.Fatal(err)
			}
			if user != "alice" || typ != e.Type || data != string(e.Data) || published.Valid {
				t.Errorf("row = %s %s %s published %v", user, typ, data, published.Valid)
			}
		})

		t.Run("a rolled back transaction leaves no event", func(t *testing.T) {
			e := event("alice", "consent.link.expiring", 2)
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if err := o.Add(ctx, tx, e); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			if n := count(t, db, "event_id = '"+e.ID+"'"); n != 0 {
				t.Errorf("%d rows of a rolled back event", n)
			}
		})

		t.Run("an id is written once", func(t *testing.T) {
			e := event("alice", "consent.link.expiring", 3)
			add(t, db, o, e)
			err := db.InTx(ctx, func(tx *sql.Tx) error { return o.Add(ctx, tx, e) })
			if !storage.IsUniqueViolation(err) {
				t.Errorf("second Add = %v, want a unique violation", err)
			}
		})

		t.Run("an invalid event is refused", func(t *testing.T) {
			e := event("alice", "consent..expiring", 4)
			err := db.InTx(ctx, func(tx *sql.Tx) error { return o.Add(ctx, tx, e) })
			if err == nil {
				t.Error("Add accepted an invalid type")
			}
		})
	})
}

// relayRun runs r until the test ends, and returns a function that stops
// it and waits.
func relayRun(t testing.TB, r *events.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Relay.Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or fails the test.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// numbered are n events of each user, numbered from 0 in Data.
func numbered(users []string, n int) map[string][]events.Event {
	out := map[string][]events.Event{}
	for _, u := range users {
		for i := range n {
			out[u] = append(out[u], event(u, "shipping.shipment.updated", i))
		}
	}
	return out
}

// checkOrder fails unless got holds each user's events once, in order.
func checkOrder(t testing.TB, got []events.Delivered, want map[string][]events.Event) {
	t.Helper()
	seen := map[string][]string{}
	for _, d := range got {
		seen[d.User] = append(seen[d.User], d.ID)
	}
	for u, es := range want {
		var ids []string
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		if !slices.Equal(seen[u], ids) {
			t.Errorf("%s: got %v, want %v", u, seen[u], ids)
		}
	}
}

func TestRelay(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)
		eachNATS(t, func(t *testing.T, url string) {
			o := events.NewOutbox(db)
			// Each case starts from an empty outbox.
			empty := func(t *testing.T) {
				if _, err := db.ExecContext(t.Context(), "DELETE FROM events_outbox"); err != nil {
					t.Fatal(err)
				}
			}

			t.Run("publishes each event once, in order per user, and marks it", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				ch, err := b.Subscribe(t.Context(), events.Filter{}, "")
				if err != nil {
					t.Fatal(err)
				}
				relayRun(t, events.NewRelay(o, b, events.RelayConfig{BatchSize: 32}))
				want := numbered([]string{"u1", "u2", "u3", "u4"}, 40)
				var wg sync.WaitGroup
				for _, es := range want {
					wg.Go(func() { add(t, db, o, es...) }) // the users' writes interleave
				}
				wg.Wait()
				got := receive(t, ch, 160)
				checkOrder(t, got, want)
				quiet(t, ch, 200*time.Millisecond)
				waitFor(t, "every row marked published", func() bool { return count(t, db, "publish_time IS NULL") == 0 })
			})

			t.Run("a user's events follow the order their transactions commit", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				ch, err := b.Subscribe(t.Context(), events.Filter{User: "kim"}, "")
				if err != nil {
					t.Fatal(err)
				}
				relayRun(t, events.NewRelay(o, b, events.RelayConfig{}))
				first, second := event("kim", "a.b", 1), event("kim", "a.b", 2)
				tx1, err := db.BeginTx(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := o.Add(t.Context(), tx1, first); err != nil {
					t.Fatal(err)
				}
				// A second transaction of the same user, begun while the
				// first is open, cannot add its event until the first ends.
				added := make(chan error, 1)
				go func() {
					added <- db.InTx(context.Background(), func(tx *sql.Tx) error { return o.Add(context.Background(), tx, second) })
				}()
				select {
				case err := <-added:
					t.Fatalf("the second transaction committed (%v) while the first was open", err)
				case <-time.After(300 * time.Millisecond):
				}
				if err := tx1.Commit(); err != nil {
					t.Fatal(err)
				}
				if err := <-added; err != nil {
					t.Fatal(err)
				}
				if got := ids(receive(t, ch, 2)); !slices.Equal(got, []string{first.ID, second.ID}) {
					t.Errorf("got %v, want first then second", got)
				}
			})

			t.Run("a relay killed between publishing and marking loses nothing and reorders nothing", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				ch, err := b.Subscribe(t.Context(), events.Filter{}, "")
				if err != nil {
					t.Fatal(err)
				}
				want := numbered([]string{"v1", "v2", "v3"}, 20)
				for i := range 20 {
					for _, u := range []string{"v1", "v2", "v3"} {
						add(t, db, o, want[u][i])
					}
				}
				// Batches of 16: the first two are marked, the third is
				// published and then the relay dies before marking it.
				crashing := events.NewRelay(o, b, events.RelayConfig{BatchSize: 16})
				ctx, kill := context.WithCancel(context.Background())
				batches := 0
				events.SetAfterPublish(crashing, func() error {
					if batches++; batches == 3 {
						kill()
						return errors.New("killed")
					}
					return nil
				})
				if err := crashing.Run(ctx); err != nil {
					t.Fatal(err)
				}
				if n := count(t, db, "publish_time IS NOT NULL"); n != 32 {
					t.Fatalf("%d rows marked before the crash, want 32", n)
				}
				first := receive(t, ch, 48) // published, 16 of them unmarked

				relayRun(t, events.NewRelay(o, b, events.RelayConfig{BatchSize: 16}))
				got := append(first, receive(t, ch, 12)...)
				waitFor(t, "every row marked published", func() bool { return count(t, db, "publish_time IS NULL") == 0 })
				quiet(t, ch, 300*time.Millisecond)
				checkOrder(t, got, want)
				info, err := events.StreamInfo(t.Context(), b)
				if err != nil {
					t.Fatal(err)
				}
				if info.State.Msgs != 60 {
					t.Errorf("the stream holds %d messages, want 60: the republished 16 were not dropped", info.State.Msgs)
				}
			})

			t.Run("an audience event arrives with its audience, on no recipient's subject; other events with none", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				all, err := b.Subscribe(t.Context(), events.Filter{}, "")
				if err != nil {
					t.Fatal(err)
				}
				recipient, err := b.Subscribe(t.Context(), events.Filter{User: "user-1"}, "")
				if err != nil {
					t.Fatal(err)
				}
				relayRun(t, events.NewRelay(o, b, events.RelayConfig{}))
				// More recipients than one event holds, each audience as
				// large as the kit lets it be, the first with the largest
				// payload too: the largest events the outbox accepts.
				var parcels []events.Event
				for i, a := range events.SplitAudience(manyResources(2 * events.MaxAudienceBytes / 30)) {
					parcels = append(parcels, audienceEvent(fmt.Sprintf("parcel-%d", i), a))
				}
				if len(parcels) < 2 {
					t.Fatalf("%d audience events, want several", len(parcels))
				}
				parcels[0].Data = []byte(`"` + strings.Repeat("x", events.MaxDataBytes-2) + `"`)
				plain := event("user-1", "shipping.shipment.updated", 1)
				add(t, db, o, append(parcels, plain)...)

				// An audience event goes after every row before it and
				// before every row after it: the parcels', then user-1's.
				got := receive(t, all, len(parcels)+1)
				if got[len(got)-1].ID != plain.ID {
					t.Errorf("delivered %v, want %s last, after the audience events written before it", ids(got), plain.ID)
				}
				var parcelsGot []events.Delivered
				for _, d := range got {
					if d.ID == plain.ID {
						if d.Audience != nil {
							t.Errorf("%s delivered with %d recipients, want none", d.ID, len(d.Audience))
						}
						continue
					}
					parcelsGot = append(parcelsGot, d)
				}
				if len(parcelsGot) != len(parcels) {
					t.Fatalf("delivered %v, want %d audience events and %s", ids(got), len(parcels), plain.ID)
				}
				for i, want := range parcels {
					d := parcelsGot[i]
					if d.ID != want.ID || d.User != want.User || d.Resource != want.Resource || d.Client != "" || string(d.Data) != string(want.Data) {
						t.Errorf("audience event %d: delivered %s of %s, want %s of %s", i, d.ID, d.User, want.ID, want.User)
					}
					if !slices.Equal(d.Audience, want.Audience) {
						t.Errorf("audience event %d: %d recipients delivered, want the %d written, in order", i, len(d.Audience), len(want.Audience))
					}
				}
				// The recipient's own events are on its subject; the
				// audience events that list it are not.
				if d := receive(t, recipient, 1)[0]; d.ID != plain.ID {
					t.Errorf("the recipient's subscription got %s first, want its own %s", d.ID, plain.ID)
				}
				quiet(t, all, 100*time.Millisecond)
			})

			t.Run("an audience event goes after the rows before it and before those after it", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				all, err := b.Subscribe(t.Context(), events.Filter{}, "")
				if err != nil {
					t.Fatal(err)
				}
				// Written before the relay runs, so one batch holds them
				// all: a user's rows would otherwise go one per wave, the
				// audience event in the first.
				a1, a2 := event("user-a", "shipping.shipment.created", 1), event("user-a", "shipping.shipment.updated", 2)
				p1 := audienceEvent("parcel-order", []string{"users/user-a/shipments/s1", "users/user-b/shipments/s1"})
				b1, a3 := event("user-b", "shipping.shipment.created", 3), event("user-a", "shipping.shipment.deleted", 4)
				add(t, db, o, a1, a2, p1, b1, a3)
				relayRun(t, events.NewRelay(o, b, events.RelayConfig{}))
				got := ids(receive(t, all, 5))
				if want := ids([]events.Delivered{{Event: a1}, {Event: a2}, {Event: p1}, {Event: b1}, {Event: a3}}); !slices.Equal(got[:3], want[:3]) || !slices.Contains(got[3:], b1.ID) || !slices.Contains(got[3:], a3.ID) {
					t.Errorf("bus order %v, want %v (user-b's and user-a's last ones in either order)", got, want)
				}
			})

			t.Run("published rows are pruned after the retention, unpublished ones kept", func(t *testing.T) {
				empty(t)
				b := connect(t, url, uniqueStream())
				add(t, db, o, event("w", "a.b", 1), event("w", "a.b", 2))
				stop := relayRun(t, events.NewRelay(o, b, events.RelayConfig{}))
				waitFor(t, "rows published", func() bool { return count(t, db, "publish_time IS NULL") == 0 })
				stop()
				// A row published long ago, and one never published: the
				// relay's first prune removes the first only.
				if _, err := db.ExecContext(t.Context(), "UPDATE events_outbox SET publish_time = $1 WHERE event_id = $2",
					storage.Micros(time.Now().Add(-8*24*time.Hour)), "w-a.b-1"); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(t.Context(), "DELETE FROM events_outbox WHERE event_id = $1", "w-a.b-2"); err != nil {
					t.Fatal(err)
				}
				stuck := connect(t, url, uniqueStream())
				stuck.Close() // publishing fails: the row stays unpublished
				add(t, db, o, event("w", "a.b", 3))
				relayRun(t, events.NewRelay(o, stuck, events.RelayConfig{}))
				waitFor(t, "the old row pruned", func() bool { return count(t, db, "event_id = 'w-a.b-1'") == 0 })
				if n := count(t, db, "event_id = 'w-a.b-3'"); n != 1 {
					t.Errorf("the unpublished row was pruned")
				}
			})
		})
	})
}

func TestOneRelayLeads(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		migrated(t, db)
		b := connect(t, embedded(t, t.TempDir()).URL(), uniqueStream())
		o := events.NewOutbox(db)
		// On PostgreSQL the relays are as replicas' are: outboxes of their
		// own, one advisory lock between them. On SQLite, which one
		// process owns, they share the process's outbox.
		other := o
		if db.Dialect() == storage.Postgres {
			other = events.NewOutbox(db)
		}
		one, two := events.NewRelay(o, b, events.RelayConfig{}), events.NewRelay(other, b, events.RelayConfig{})
		stopOne := relayRun(t, one)
		waitFor(t, "the first relay leading", one.Leading)
		relayRun(t, two)
		add(t, db, o, event("x", "a.b", 1))
		waitFor(t, "the row published", func() bool { return count(t, db, "publish_time IS NULL") == 0 })
		time.Sleep(200 * time.Millisecond)
		if two.Leading() || two.Published() != 0 {
			t.Fatalf("the second relay leads (%v) or published (%d) while the first leads", two.Leading(), two.Published())
		}
		stopOne()
		waitFor(t, "the second relay taking over", two.Leading)
		add(t, db, o, event("x", "a.b", 2))
		waitFor(t, "the row published by the second", func() bool { return two.Published() == 1 })
		if db.Dialect() != storage.Postgres {
			return
		}
		// The leader's connection dies (a failover, a network cut): the
		// lock goes with it, and the relay takes it again on a new one.
		var pid int
		if err := db.QueryRowContext(t.Context(), `SELECT pid FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = 0 AND objsubid = 2`, events.LockSpaceRelay).Scan(&pid); err != nil {
			t.Fatalf("the relay's lock: %v", err)
		}
		if _, err := db.ExecContext(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		add(t, db, o, event("x", "a.b", 3))
		waitFor(t, "the relay back with a new connection", func() bool { return two.Published() == 2 })
	})
}

// TestOutboxUpgradeKeepsPendingEvents: rows the previous version of a
// service left unpublished (before the outbox had audiences) are relayed
// after the upgrade as the per-user events they are, and the upgraded
// outbox writes audience events beside them.
func TestOutboxUpgradeKeepsPendingEvents(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := t.Context()
		first, err := os.ReadFile("migrations/" + string(db.Dialect()) + "/00001_events_outbox.sql")
		if err != nil {
			t.Fatal(err)
		}
		before := fstest.MapFS{"00001_events_outbox.sql": {Data: first}}
		if err := db.Migrate(ctx, before, events.MigrationsTable); err != nil {
			t.Fatal(err)
		}
		// The row as the previous SQLOutbox.Add wrote it.
		old := event("alice", "shipping.shipment.updated", 1)
		if _, err := db.ExecContext(ctx, `INSERT INTO events_outbox
			(event_id, user_id, event_type, source, client_id, resource, event_time, data, create_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			old.ID, old.User, old.Type, old.Source, old.Client, old.Resource, storage.Micros(time.Now()), string(old.Data), storage.Micros(time.Now())); err != nil {
			t.Fatal(err)
		}

		migrated(t, db)
		o := events.NewOutbox(db)
		parcel := audienceEvent("parcel-1", []string{"users/alice/shipments/a1", "users/bob/shipments/b1"})
		add(t, db, o, parcel)
		b := connect(t, embedded(t, t.TempDir()).URL(), uniqueStream())
		ch, err := b.Subscribe(ctx, events.Filter{}, "")
		if err != nil {
			t.Fatal(err)
		}
		relayRun(t, events.NewRelay(o, b, events.RelayConfig{}))
		got := receive(t, ch, 2)
		if got[0].ID != old.ID || got[0].User != "alice" || got[0].Client != old.Client || got[0].Audience != nil {
			t.Errorf("the pending row was delivered as %s of %s for %q with audience %q, want %s of alice for %q with none",
				got[0].ID, got[0].User, got[0].Client, got[0].Audience, old.ID, old.Client)
		}
		if got[1].ID != parcel.ID || !slices.Equal(got[1].Audience, parcel.Audience) {
			t.Errorf("then %s with audience %q, want %s with %q", got[1].ID, got[1].Audience, parcel.ID, parcel.Audience)
		}
	})
}
