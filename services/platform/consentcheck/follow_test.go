package consentcheck_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
)

// TestFollow: a follower reconciles as it starts, hands each change over
// in order, survives a failing handler, and ends with ErrFeedEnded when
// the subscription closes (nil when its context ends).
func TestFollow(t *testing.T) {
	t.Parallel()
	feed := make(chan consentcheck.Change, 4)
	var reconciles atomic.Int32
	var handled []string
	f := consentcheck.Follower{
		Handle: func(_ context.Context, c consentcheck.Change) error {
			handled = append(handled, c.User)
			return errors.New("the store is down")
		},
		Reconcile: func(context.Context) error { reconciles.Add(1); return nil },
		Every:     time.Hour,
		What:      "things",
	}
	feed <- consentcheck.Change{User: "alice"}
	feed <- consentcheck.Change{User: "bob"}
	close(feed)
	cancelled := false
	err := consentcheck.Follow(t.Context(), func() (<-chan consentcheck.Change, func()) { return feed, func() { cancelled = true } }, f)
	if !errors.Is(err, consentcheck.ErrFeedEnded) || !cancelled {
		t.Errorf("Follow = %v (subscription cancelled: %v), want ErrFeedEnded", err, cancelled)
	}
	if reconciles.Load() != 1 || len(handled) != 2 || handled[0] != "alice" || handled[1] != "bob" {
		t.Errorf("reconciles %d, handled %v; want 1 and [alice bob]", reconciles.Load(), handled)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	live := make(chan consentcheck.Change)
	if err := consentcheck.Follow(ctx, func() (<-chan consentcheck.Change, func()) { return live, func() {} }, f); err != nil {
		t.Errorf("Follow after its context ended = %v, want nil", err)
	}
}
