package store_test

import (
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// A key is held by one call at a time until it releases it or its hold
// lapses; a call releases only its own hold.
func TestKeyHolds(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		s := open(t, db)
		now := time.Now().UTC().Truncate(time.Microsecond)
		hold := func(holder string, at time.Time) (app.KeyHold, bool) {
			t.Helper()
			held, ok, err := s.HoldKey(t.Context(), app.KeyHold{User: "u1", Operation: "CreateLink", Key: "k1",
				RequestHash: "hash-" + holder, Holder: holder, ExpireTime: at.Add(time.Minute)}, at)
			if err != nil {
				t.Fatal(err)
			}
			return held, ok
		}
		if _, ok := hold("a", now); !ok {
			t.Fatal("the first call did not get the key")
		}
		held, ok := hold("b", now)
		if ok || held.Holder != "a" || held.RequestHash != "hash-a" || !held.ExpireTime.Equal(now.Add(time.Minute)) {
			t.Fatalf("a second call got %+v, %v; want a's hold", held, ok)
		}
		// b releasing changes nothing: the hold is a's.
		if err := s.ReleaseKey(t.Context(), app.KeyHold{User: "u1", Operation: "CreateLink", Key: "k1", Holder: "b"}); err != nil {
			t.Fatal(err)
		}
		if held, ok := hold("b", now); ok || held.Holder != "a" {
			t.Fatalf("after b's release: %+v, %v; want a's hold", held, ok)
		}
		// a's hold lapses: c takes it over.
		if held, ok := hold("c", now.Add(time.Minute)); !ok || held.Holder != "c" {
			t.Fatalf("after a's hold lapsed: %+v, %v; want c to hold the key", held, ok)
		}
		if err := s.ReleaseKey(t.Context(), app.KeyHold{User: "u1", Operation: "CreateLink", Key: "k1", Holder: "c"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := hold("d", now.Add(time.Minute)); !ok {
			t.Fatal("after c's release the key is still held")
		}
	})
}
