// Command buildprogress runs `go build -v` on one main package and says
// what it is doing while it does: how many of the packages Go has to
// compile are done, the time elapsed against the time expected, and what
// comes next. `make vault` builds the real Vault server through it, which
// takes about ten minutes the first time on two cores, so that the first
// `make dev` shows a wait that moves rather than a silent terminal:
//
//	[vault] building the real Vault server: 812/1,602 packages (50%), 4m10s elapsed of ~6m expected; next: start the dev stack
//
// It imports the standard library only, so `go run` compiles it in seconds
// before the long build starts. It hides nothing: every line of go's output
// that is not a package name (a download, a compiler error) is passed
// through as it comes, and a failed build exits with go's exit code.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() > 0 {
			os.Exit(ee.ExitCode())
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "buildprogress: %v\n", err)
		}
		os.Exit(1)
	}
}

// options are run's flags.
type options struct {
	dir, out, label, what, next string
	// expect is how long a build of every package takes with an empty
	// build cache, link included; link is how long the link alone takes.
	// A build's expected time is the link and its share of the rest.
	expect, link time.Duration
	// every is how often a progress line is printed at most (and at least,
	// while the build is under way); 0 prints one per package.
	every time.Duration
}

func run(ctx context.Context, args []string, log io.Writer) error {
	var o options
	fs := flag.NewFlagSet("buildprogress", flag.ContinueOnError)
	fs.SetOutput(log)
	fs.StringVar(&o.dir, "C", ".", "the module directory to build in")
	fs.StringVar(&o.out, "o", "", "the binary to write (go build -o)")
	fs.StringVar(&o.label, "label", "build", "the prefix of every line, e.g. vault")
	fs.StringVar(&o.what, "what", "building", "what is being built, in words")
	fs.StringVar(&o.next, "next", "", "what happens once the build is done, in words")
	fs.DurationVar(&o.expect, "expect", 0, "how long a build of every package takes with an empty build cache, link included (0: no estimate)")
	fs.DurationVar(&o.link, "link", 0, "how long linking the binary takes, part of -expect")
	fs.DurationVar(&o.every, "every", 15*time.Second, "how often to print a progress line (0: after every package)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: buildprogress [flags] <main package>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || o.out == "" {
		fs.Usage()
		return errors.New("want -o and one main package")
	}
	return build(ctx, o, fs.Arg(0), log)
}

// build lists the packages pkg needs and which of them Go must compile,
// then builds pkg, printing progress lines to log.
func build(ctx context.Context, o options, pkg string, log io.Writer) error {
	start := time.Now()
	p := &progress{o: o, log: log, start: start}
	p.printf("%s: listing its packages (the first time, this downloads its modules)", o.what)
	stopTicker := p.tick(func() string {
		return fmt.Sprintf("%s: listing its packages, %s elapsed", o.what, round(time.Since(start)))
	})
	// A package is stale when the build cache does not hold it: those are
	// the ones `go build -v` compiles and names.
	// go's messages (downloads, errors) pass through as they come.
	list := exec.CommandContext(ctx, "go", "list", "-deps", "-f", "{{if .Stale}}+{{end}}{{.ImportPath}}", pkg)
	list.Dir, list.Stderr = o.dir, p
	listed, err := list.Output()
	stopTicker()
	if err != nil {
		p.printf("%s: listing its packages failed (go's output is above)", o.what)
		return err
	}
	// go list names the main package last, after everything it imports.
	// A binary is always stale (Go does not cache it), so the main package
	// is not counted: its line from go build -v, or the end of the others,
	// means the link has begun.
	p.deps = map[string]bool{}
	for line := range strings.Lines(string(listed)) {
		path := strings.TrimSpace(line)
		stale := strings.HasPrefix(path, "+")
		path = strings.TrimPrefix(path, "+")
		p.deps[path] = true
		if stale {
			p.total++
		}
		p.main, p.mainStale = path, stale
	}
	if p.mainStale {
		p.total--
	}
	if p.total == 0 {
		p.printf("%s: nothing to compile, all %s packages are in Go's build cache; linking%s", o.what, thousands(len(p.deps)), p.expectation())
	} else {
		p.printf("%s: %s of its %s packages to compile (the others are in Go's build cache)%s",
			o.what, thousands(p.total), thousands(len(p.deps)), p.expectation())
	}

	cmd := exec.CommandContext(ctx, "go", "build", "-v", "-o", o.out, pkg)
	cmd.Dir = o.dir
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = w.CloseWithError(io.EOF)
		waited <- err
	}()
	stopTicker = p.tick(p.status)
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		p.line(lines.Text())
	}
	// A line too long to scan: pass the rest through as it is, so go never
	// blocks on a full pipe.
	_, _ = io.Copy(p, r)
	stopTicker()
	if err := <-waited; err != nil {
		p.printf("%s: failed after %s (go's output is above)", o.what, round(time.Since(start)))
		return err
	}
	done := fmt.Sprintf("%s: done, %s packages compiled in %s", o.what, thousands(p.built), round(time.Since(start)))
	if o.next != "" {
		done += "; next: " + o.next
	}
	p.printf("%s", done)
	return nil
}

// progress counts the packages `go build -v` names and prints what it has.
type progress struct {
	o         options
	log       io.Writer
	start     time.Time
	deps      map[string]bool // every package of the build, by import path
	total     int             // the ones to compile, main not counted
	main      string          // the main package
	mainStale bool

	mu        sync.Mutex
	built     int
	linking   bool
	lastPrint time.Time
}

// line takes one line of go's output: a package it compiled, or anything
// else, which is passed through.
func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.deps[s]:
		fmt.Fprintln(p.log, s)
		return
	case s == p.main:
		p.linking = true
	default:
		p.built++
	}
	if time.Since(p.lastPrint) >= p.o.every {
		p.printLocked("%s", p.statusLocked())
	}
}

// status is the progress line: packages done of those to compile, the
// time elapsed against the time expected, and what comes next.
func (p *progress) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusLocked()
}

func (p *progress) statusLocked() string {
	s := p.o.what + ": "
	if p.total > 0 {
		s += fmt.Sprintf("%s/%s packages (%d%%), ", thousands(p.built), thousands(p.total), min(100, 100*p.built/p.total))
	}
	if p.linking || p.built >= p.total {
		s += "linking, "
	}
	s += round(time.Since(p.start)) + " elapsed"
	if e := p.expected(); e > 0 {
		s += " of ~" + round(e) + " expected"
	}
	if p.o.next != "" {
		s += "; next: " + p.o.next
	}
	return s
}

// expected is this build's share of a build from an empty cache.
func (p *progress) expected() time.Duration {
	if p.o.expect <= 0 || len(p.deps) == 0 {
		return 0
	}
	return p.o.link + (p.o.expect-p.o.link)*time.Duration(p.total)/time.Duration(len(p.deps))
}

func (p *progress) expectation() string {
	if e := p.expected(); e > 0 {
		return fmt.Sprintf("; expect ~%s on two idle cores", round(e))
	}
	return ""
}

// tick prints status() every p.o.every until the returned stop is called,
// so a quiet phase (listing, a long compile, linking) still shows time
// passing.
func (p *progress) tick(status func() string) (stop func()) {
	if p.o.every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.o.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := status()
				p.mu.Lock()
				if time.Since(p.lastPrint) >= p.o.every {
					p.printLocked("%s", s)
				}
				p.mu.Unlock()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Write passes go's own output through, between progress lines.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printLocked(format, args...)
}

func (p *progress) printLocked(format string, args ...any) {
	fmt.Fprintf(p.log, "[%s] %s\n", p.o.label, fmt.Sprintf(format, args...))
	p.lastPrint = time.Now()
}

// round is d to the second (to the minute from ten minutes on), as a
// person reads it: 45s, 4m10s, 12m.
func round(d time.Duration) string {
	if d >= 10*time.Minute {
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	}
	return d.Round(time.Second).String()
}

// thousands is n with a comma between thousands: 2,577.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
