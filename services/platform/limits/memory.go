package limits

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how often the memory store drops idle buckets.
const sweepEvery = time.Minute

// memory keeps the buckets of one process: a golang.org/x/time/rate
// limiter per key. Memory stays bounded: a bucket that has refilled to its
// burst is idle, and forgetting it changes nothing (a new one starts full),
// so such buckets are dropped every minute, and whenever the store holds
// max buckets. Only if more than max buckets are in use at once are some
// busy ones dropped too, which gives those callers a fresh burst early.
type memory struct {
	max int
	now func() time.Time

	mu        sync.Mutex
	buckets   map[key]*rate.Limiter
	nextSweep time.Time
}

func newMemory(max int, now func() time.Time) *memory {
	return &memory{max: max, now: now, buckets: map[key]*rate.Limiter{}, nextSweep: now().Add(sweepEvery)}
}

func (m *memory) take(_ context.Context, k key, r Rate) decision {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.nextSweep) {
		m.sweep(now)
	}
	lim := m.buckets[k]
	if lim == nil {
		if len(m.buckets) >= m.max {
			m.sweep(now)
			m.shed()
		}
		lim = rate.NewLimiter(r.limit(), r.Burst)
		m.buckets[k] = lim
	}
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused call takes nothing
		return decision{retryAfter: d}
	}
	return decision{allowed: true}
}

// sweep drops the buckets that are full again.
func (m *memory) sweep(now time.Time) {
	m.nextSweep = now.Add(sweepEvery)
	for k, lim := range m.buckets {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(m.buckets, k)
		}
	}
}

// shed drops busy buckets, in no particular order, until a tenth of max is
// free: only when more than max callers are active at once.
func (m *memory) shed() {
	for k := range m.buckets {
		if len(m.buckets) < m.max-m.max/10 {
			return
		}
		delete(m.buckets, k)
	}
}

// size is the number of buckets kept, for tests.
func (m *memory) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}
