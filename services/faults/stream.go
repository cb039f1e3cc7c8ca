package faults

import (
	"context"
	"sync"
	"time"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

// Watcher follows one user's shipment events (WatchShipments) as a
// client should: on any error it opens the stream again with the cursor
// of the last event it got, so a restart of the service or of the bus
// costs no event.
type Watcher struct {
	user *User
	stop context.CancelFunc
	done chan struct{}

	mu         sync.Mutex
	created    map[string]int // shipment name -> CREATED events seen
	reconnects int
}

// Watch starts a Watcher for u; it is following once Watch returns.
func (h *Harness) Watch(ctx context.Context, u *User) *Watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{user: u, stop: cancel, done: make(chan struct{}), created: map[string]int{}}
	opened := make(chan struct{})
	go func() {
		defer close(w.done)
		client := shippingv1.NewShippingServiceClient(h.Conn("shipping"))
		cursor := ""
		first := true
		for ctx.Err() == nil {
			stream, err := client.WatchShipments(userCtx(ctx, u, "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{
				Parent: "users/" + u.ID, ResumeCursor: cursor,
			})
			if err == nil {
				// A server stream's call returns before the server has
				// it; its headers say it is open.
				_, err = stream.Header()
			}
			if first {
				first = false
				close(opened)
			}
			for err == nil {
				var msg *shippingv1.WatchShipmentsResponse
				if msg, err = stream.Recv(); err != nil {
					break
				}
				cursor = msg.GetCursor()
				if msg.GetEvent().GetType() == shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_CREATED {
					w.mu.Lock()
					w.created[msg.GetEvent().GetShipment().GetName()]++
					w.mu.Unlock()
				}
			}
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.reconnects++
			w.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	select {
	case <-opened:
	case <-ctx.Done():
	}
	return w
}

// Stop ends the watch.
func (w *Watcher) Stop() {
	w.stop()
	<-w.done
}

// Check compares the events seen with the writes acknowledged for the
// watcher's user: lost have no CREATED event, duplicated more than one.
func (w *Watcher) Check(writes []*Write) (lost, duplicated, reconnects int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wr := range writes {
		if wr.User != w.user || !wr.Acked {
			continue
		}
		switch n := w.created[wr.Name]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	return lost, duplicated, w.reconnects
}
