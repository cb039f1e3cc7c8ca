package stream_test

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

// memBus is a bus in memory, for the helper's edge cases the real bus
// cannot be made to show (a delivery of another user's event, a
// subscription that ends): a log of events whose cursor is the position.
// inject delivers to every open subscription
// whatever its filter; end closes them all.
type memBus struct {
	mu     sync.Mutex
	log    []events.Delivered
	wake   chan struct{}
	closed chan struct{}
	extra  []events.Delivered
}

func newMemBus() *memBus {
	return &memBus{wake: make(chan struct{}), closed: make(chan struct{})}
}

func (b *memBus) Publish(_ context.Context, e events.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, events.Delivered{Event: e, UserRef: "ref-" + e.User, Cursor: strconv.Itoa(len(b.log))})
	close(b.wake)
	b.wake = make(chan struct{})
	return nil
}

// inject hands d to every open subscription, filter or not.
func (b *memBus) inject(d events.Delivered) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extra = append(b.extra, d)
	close(b.wake)
	b.wake = make(chan struct{})
}

// end closes every open subscription, as a bus that lost its server does.
func (b *memBus) end() { close(b.closed) }

func (b *memBus) Subscribe(ctx context.Context, f events.Filter, cursor string) (<-chan events.Delivered, error) {
	b.mu.Lock()
	next := len(b.log)
	if cursor != "" {
		pos, err := strconv.Atoi(cursor)
		if err != nil || pos < 0 || pos >= next {
			b.mu.Unlock()
			return nil, events.ErrCursorInvalid
		}
		next = pos + 1
	}
	extra := len(b.extra)
	b.mu.Unlock()

	out := make(chan events.Delivered)
	go func() {
		defer close(out)
		for {
			b.mu.Lock()
			var batch []events.Delivered
			for ; next < len(b.log); next++ {
				d := b.log[next]
				if (f.User == "" || d.User == f.User) && (len(f.Types) == 0 || slices.Contains(f.Types, d.Type)) {
					batch = append(batch, d)
				}
			}
			batch = append(batch, b.extra[extra:]...)
			extra = len(b.extra)
			wake := b.wake
			b.mu.Unlock()
			for _, d := range batch {
				select {
				case out <- d:
				case <-ctx.Done():
					return
				case <-b.closed:
					return
				}
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			}
		}
	}()
	return out, nil
}
