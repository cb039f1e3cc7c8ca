package store_test

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// TestAKeyedLinkSurvivesALostConnection: PostgreSQL ends the connection
// under a keyed write's transaction (CreateLink's: the key, the link),
// as in a restart. It (IdempotentTx) runs again on a fresh connection:
// lost before its commit, the link is stored; lost after a run that
// committed, the second run finds the key taken, from which the service
// replays the first answer (writeFailed). Either way the link and its key
// are stored once.
func TestAKeyedLinkSurvivesALostConnection(t *testing.T) {
	t.Parallel()
	db, lose := storagetest.Losable(t)
	st := open(t, db)
	tests := []struct {
		name string
		// committed commits the write elsewhere before the connection is
		// lost: the first run's COMMIT went through, its answer not.
		committed bool
		wantErr   error
	}{
		{name: "lost before the commit", wantErr: nil},
		{name: "lost after a run that committed", committed: true, wantErr: app.ErrIdempotencyKeyTaken},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLink("alice", "link-lost-"+string(rune('a'+i)), "bank-a", app.StateReceived, t0)
			rec := app.Idempotency{User: l.User, Operation: "CreateLink", Key: "key-lost-" + string(rune('a'+i)), RequestHash: "rh",
				LinkID: l.ID, CreateTime: t0}
			write := func(tx app.Tx) error {
				if err := tx.InsertIdempotency(t.Context(), rec); err != nil {
					return err
				}
				return tx.InsertLink(t.Context(), l)
			}
			runs := 0
			err := st.IdempotentTx(t.Context(), func(tx app.Tx) error {
				runs++
				if runs == 1 && tt.committed {
					if err := st.Tx(t.Context(), write); err != nil {
						t.Fatal(err)
					}
					lose()
					return nil
				}
				if err := write(tx); err != nil {
					return err
				}
				if runs == 1 {
					lose()
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("IdempotentTx = %v, want %v", err, tt.wantErr)
			}
			if runs != 2 {
				t.Errorf("ran %d times, want 2", runs)
			}
			if got, err := st.Idempotency(t.Context(), rec.User, rec.Operation, rec.Key); err != nil || got.LinkID != l.ID {
				t.Errorf("Idempotency = %+v, %v; want the key of %s", got, err, l.ID)
			}
			links, err := st.UserLinks(t.Context(), l.User, l.BankID)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, got := range links {
				if got.ID == l.ID {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d links %s, want 1", n, l.ID)
			}
		})
	}
}

// TestARetriedAppendIsAppliedOnce: a batch of access log entries commits,
// and the answer to its COMMIT is lost with the connection, as in a
// PostgreSQL restart at that moment. AppendAccess runs again, finds its
// entries in the log, and appends nothing: the caller is told the batch
// is recorded, and each chain holds it once, still verifying.
func TestARetriedAppendIsAppliedOnce(t *testing.T) {
	t.Parallel()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	u, err := url.Parse(storagetest.PostgresDatabase(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	proxy, addr := startCommitDropper(t, u.Host)
	u.Host = addr
	db, err := storage.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st := open(t, db)
	svc := service(t, st, t0)

	users := []string{"ra-1", "ra-2"}
	builds := 0
	proxy.armed.Store(true)
	err = st.AppendAccess(t.Context(), users, func(heads map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error) {
		builds++
		return chained(heads, entry("ra-1", 1), entry("ra-2", 2), entry("ra-1", 3)), nil, nil
	})
	if err != nil {
		t.Fatalf("AppendAccess = %v, want the batch recorded", err)
	}
	if proxy.dropped.Load() != 1 {
		t.Fatalf("%d COMMIT answers dropped, want 1: the test did not lose the connection", proxy.dropped.Load())
	}
	for user, want := range map[string]int{"ra-1": 2, "ra-2": 1} {
		chain, err := st.AccessChain(t.Context(), user, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != want {
			t.Errorf("%s has %d entries, want %d: the batch once", user, len(chain), want)
		}
		if err := svc.VerifyChain(t.Context(), user); err != nil {
			t.Error(err)
		}
	}
	if builds != 1 {
		t.Errorf("build called %d times, want 1: the rerun found the batch", builds)
	}
}

// commitDropper is a TCP proxy to PostgreSQL that, once armed, passes the
// next COMMIT on and drops its answer, closing the connection: the
// transaction committed, and its client cannot know it.
type commitDropper struct {
	target  string
	armed   atomic.Bool
	dropped atomic.Int32
}

// startCommitDropper serves a commitDropper to target on 127.0.0.1 until
// the test ends, and returns it with its address.
func startCommitDropper(t *testing.T, target string) (*commitDropper, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	d := &commitDropper{target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()
	return d, ln.Addr().String()
}

func (d *commitDropper) serve(client net.Conn) {
	server, err := net.Dial("tcp", d.target)
	if err != nil {
		_ = client.Close()
		return
	}
	closeBoth := func() { _, _ = client.Close(), server.Close() }
	var mute atomic.Bool
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if err != nil {
				closeBoth()
				return
			}
			if mute.Load() {
				continue // the COMMIT's answer: dropped, and the other side closes
			}
			if _, err := client.Write(buf[:n]); err != nil {
				closeBoth()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 && bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit")) && d.armed.CompareAndSwap(true, false) {
			// Muted before the COMMIT goes on, so no byte of its answer
			// gets back; the server commits what it read before the close.
			mute.Store(true)
			_, _ = server.Write(buf[:n])
			time.Sleep(200 * time.Millisecond)
			d.dropped.Add(1)
			closeBoth()
			return
		}
		if n > 0 {
			if _, err := server.Write(buf[:n]); err != nil {
				closeBoth()
				return
			}
		}
		if err != nil {
			closeBoth()
			return
		}
	}
}
