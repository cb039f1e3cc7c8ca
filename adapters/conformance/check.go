package conformance

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// C is one named check while it runs, or one part of it: what *testing.T is
// to a Go test, and the same methods. Under [Run] each C wraps a subtest
// of the caller's test; under [RunChecks] (the bankbridge-conformance
// command) there is no testing.T and FailNow and SkipNow end the check's
// own goroutine, as they end a test's.
type C struct {
	id   string     // the check this reports to
	part string     // the part's name inside the check; empty for the check itself
	t    *testing.T // nil without go test
	res  *Result

	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	failed   bool
	skipped  bool
	cleanups []func()
}

// Helper marks the caller as a helper, under go test.
func (c *C) Helper() {
	if c.t != nil {
		c.t.Helper()
	}
}

// Context is the check's context: it ends when the check does.
func (c *C) Context() context.Context { return c.ctx }

// Cleanup runs f when the check (or part) ends, last registered first.
func (c *C) Cleanup(f func()) {
	if c.t != nil {
		c.t.Cleanup(f)
		return
	}
	c.mu.Lock()
	c.cleanups = append(c.cleanups, f)
	c.mu.Unlock()
}

// prefix names the part a message comes from, in the report.
func (c *C) prefix(msg string) string {
	if c.part == "" {
		return msg
	}
	return c.part + ": " + msg
}

// Errorf records a failure and goes on.
func (c *C) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
	c.res.addFailure(c.prefix(msg))
	if c.t != nil {
		c.t.Helper()
		c.t.Error(msg)
	}
}

// Error records a failure and goes on.
func (c *C) Error(args ...any) { c.Errorf("%s", fmt.Sprint(args...)) }

// Fatalf records a failure and ends the check (or part).
func (c *C) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	c.FailNow()
}

// Fatal records a failure and ends the check (or part).
func (c *C) Fatal(args ...any) { c.Fatalf("%s", fmt.Sprint(args...)) }

// FailNow ends the check (or part), failed.
func (c *C) FailNow() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
	if c.t != nil {
		c.t.FailNow()
	}
	runtime.Goexit()
}

// Failed says whether the check (or part) failed so far.
func (c *C) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// Skipf ends the check (or part) as skipped, saying why: a skip always
// carries its reason into the report.
func (c *C) Skipf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.skipped = true
	c.mu.Unlock()
	if c.part == "" {
		c.res.skip(msg)
	} else {
		c.res.addNote(c.prefix("not checked: " + msg))
	}
	if c.t != nil {
		c.t.Skip(msg)
	}
	runtime.Goexit()
}

// Skip ends the check (or part) as skipped, saying why.
func (c *C) Skip(args ...any) { c.Skipf("%s", fmt.Sprint(args...)) }

// Logf records a note: what the check saw, or what it did not check.
func (c *C) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.res.addNote(c.prefix(msg))
	if c.t != nil {
		c.t.Helper()
		c.t.Log(msg)
	}
}

// Log records a note.
func (c *C) Log(args ...any) { c.Logf("%s", fmt.Sprint(args...)) }

// Run runs f as a part of the check, named name: a part that fails fails
// the check; one that skips leaves a note. It reports whether the part
// passed.
func (c *C) Run(name string, f func(c *C)) bool {
	part := name
	if c.part != "" {
		part = c.part + "/" + name
	}
	child := &C{id: c.id, part: part, res: c.res}
	if c.t != nil {
		return c.t.Run(name, func(t *testing.T) {
			child.t = t
			child.ctx, child.cancel = context.WithCancel(t.Context())
			defer child.cancel()
			f(child)
		})
	}
	child.ctx, child.cancel = context.WithCancel(c.ctx)
	child.run(f)
	if child.Failed() {
		c.mu.Lock()
		c.failed = true
		c.mu.Unlock()
		return false
	}
	return true
}

// run runs f on its own goroutine, so that FailNow and SkipNow end f only,
// and runs the cleanups after it.
func (c *C) run(f func(*C)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			c.mu.Lock()
			cleanups := c.cleanups
			c.mu.Unlock()
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
			c.cancel()
		}()
		defer func() {
			if p := recover(); p != nil {
				c.Errorf("the check panicked: %v", p)
			}
		}()
		f(c)
	}()
	<-done
}

// runner runs the kit's checks, as subtests of t or on their own, and
// records their results.
type runner struct {
	t       *testing.T // nil without go test
	ctx     context.Context
	report  *Report
	checks  map[string]CheckInfo
	started map[string]bool
}

// check runs the registered check id: a check of a capability the adapter
// does not declare is skipped saying so; f itself skips, saying why, when
// it lacks a fixture or what an earlier check should have found.
func (r *runner) check(k *kit, id string, f func(c *C)) bool {
	info, ok := r.checks[id]
	if !ok {
		panic("conformance: check " + id + " is not in the registry")
	}
	if r.started[id] {
		panic("conformance: check " + id + " runs twice")
	}
	r.started[id] = true
	res := r.report.result(id)
	c := &C{id: id, res: res}
	body := func(c *C) {
		if info.Capability != 0 && !k.has(info.Capability) {
			c.Skipf("the adapter does not declare %s", capabilityName(info.Capability))
		}
		f(c)
	}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if r.t != nil {
		passed := r.t.Run(id, func(t *testing.T) {
			c.t = t
			c.ctx, c.cancel = context.WithCancel(t.Context())
			defer c.cancel()
			body(c)
		})
		res.finish()
		return passed
	}
	c.ctx, c.cancel = context.WithCancel(r.ctx)
	c.run(body)
	res.finish()
	if r.report.progress != nil {
		fmt.Fprintln(r.report.progress, res.line())
	}
	return !c.Failed()
}

// capabilityName is a capability without its prefix, e.g. "ACCOUNTS".
func capabilityName(c interface{ String() string }) string {
	return strings.TrimPrefix(c.String(), "CAPABILITY_")
}
