package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Probe is one dependency /readyz checks, e.g. the database or the event
// bus: a process that cannot reach it serves errors, so a load balancer
// should send its calls to a replica that can.
type Probe struct {
	// Name names the dependency in /readyz's body and the log, e.g.
	// "database"; never an address or a credential.
	Name string
	// Check returns nil when the dependency answers; it must honour ctx.
	Check func(context.Context) error
}

// Probe timings: a probe result is reused for probeTTL, so /readyz costs
// at most one round of checks a second however often it is polled; one
// check gets probeTimeout.
const (
	probeTTL     = time.Second
	probeTimeout = 2 * time.Second
)

// prober runs probes and keeps the last result for probeTTL.
type prober struct {
	probes []Probe
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	at      time.Time
	failing []string
}

func newProber(log *slog.Logger, probes []Probe) *prober {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &prober{probes: probes, log: log, now: time.Now}
}

// failed returns the names of the dependencies that did not answer, from
// a check at most probeTTL old. Checks run one at a time: concurrent polls
// wait for the one round and share its result.
func (p *prober) failed(ctx context.Context) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && p.now().Sub(p.at) < probeTTL {
		return p.failing
	}
	// A poller that hangs up must not make the shared result a failure.
	ctx = context.WithoutCancel(ctx)
	var failing []string
	for _, pr := range p.probes {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := pr.Check(cctx)
		cancel()
		if err != nil {
			failing = append(failing, pr.Name)
			// The cause goes to the log, not the body: /readyz is
			// unauthenticated, and a driver's error may name hosts.
			p.log.WarnContext(ctx, "not ready: a dependency does not answer", slog.String("component", pr.Name), slog.String("error", err.Error()))
		}
	}
	p.at, p.failing = p.now(), failing
	return failing
}

// Readyz answers 200 while ready reports true and every probe answers, and
// 503 otherwise, naming the dependencies that do not answer.
func Readyz(ready func() bool, probes ...Probe) http.Handler {
	return readyz(ready, newProber(nil, probes))
}

func readyz(ready func() bool, p *prober) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if failing := p.failed(r.Context()); len(failing) > 0 {
			http.Error(w, "not ready: "+strings.Join(failing, ", ")+" not answering", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}
