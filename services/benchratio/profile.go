package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
)

// profileTop is how many functions each profile's summary lists.
const profileTop = 15

// profile takes CPU profiles under load into dir: balance, consent and the
// sandbox bank while ghz loads GetBalance, and the gateway while wrk loads
// it (ghz calls the balance service directly, past the gateway). Each
// process serves /debug/pprof/ (--pprof, on in the dev stack); each
// profile's top functions, by their own CPU, go to <name>.top.txt and to
// stdout, and the top 60 by cumulative time to <name>.cum.txt. Half-way
// through, each one's goroutines and where they wait go to
// <name>.goroutines.txt.
func (b *bench) profile(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The profile covers the middle of the run, not its ramp-up and end;
	// the admin listeners cut responses after 30 s.
	seconds := int(min(b.cfg.duration, 27*time.Second).Seconds()) - 2
	if seconds < 1 {
		return fmt.Errorf("--duration %s is too short to profile", b.cfg.duration)
	}
	phases := []struct {
		what    string
		load    func(context.Context) error
		targets map[string]string // name -> its pprof base URL
	}{
		{"ghz GetBalance", func(ctx context.Context) error {
			_, err := b.ghzRun(ctx, "profile", true, 0, b.cfg.duration)
			return err
		}, map[string]string{
			"balance": "https://" + b.stack.AdminAddr("balance"),
			"consent": "https://" + b.stack.AdminAddr("consent"),
			"sandbox": "https://" + b.stack.AdminAddr("sandbox"),
		}},
		{"wrk GET balance", func(ctx context.Context) error {
			_, err := b.wrkRun(ctx, "profile", b.stack.GatewayURL, b.cfg.duration)
			return err
		}, map[string]string{"gateway": b.stack.GatewayURL}},
	}
	for _, ph := range phases {
		step(fmt.Sprintf("CPU profiles (%ds) under %s", seconds, ph.what))
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return ph.load(gctx) })
		for name, base := range ph.targets {
			g.Go(func() error {
				// Let the load ramp up first.
				select {
				case <-time.After(time.Second):
				case <-gctx.Done():
					return gctx.Err()
				}
				body, err := b.get(gctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
				if err != nil {
					return fmt.Errorf("%s's CPU profile: %w", name, err)
				}
				return os.WriteFile(filepath.Join(dir, name+".cpu.pprof"), body, 0o644)
			})
			// Where the goroutines wait, off the CPU: a call slow with the
			// cores not all busy waits on a lock, a connection or another
			// process, which a CPU profile does not show.
			g.Go(func() error {
				select {
				case <-time.After(time.Duration(seconds) * time.Second / 2):
				case <-gctx.Done():
					return gctx.Err()
				}
				body, err := b.get(gctx, base+"/debug/pprof/goroutine?debug=1")
				if err != nil {
					return fmt.Errorf("%s's goroutines: %w", name, err)
				}
				return os.WriteFile(filepath.Join(dir, name+".goroutines.txt"), body, 0o644)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for name := range ph.targets {
			file := filepath.Join(dir, name+".cpu.pprof")
			bin := filepath.Join(b.stack.BinDir(), name)
			out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", profileTop), bin, file).CombinedOutput()
			if err != nil {
				return fmt.Errorf("go tool pprof -top %s: %w: %s", file, err, out)
			}
			if err := os.WriteFile(filepath.Join(dir, name+".top.txt"), out, 0o644); err != nil {
				return err
			}
			// By cumulative time too, which names the interceptor, query or
			// call the flat top's runtime and crypto functions serve.
			cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=60", bin, file).CombinedOutput()
			if err != nil {
				return fmt.Errorf("go tool pprof -top -cum %s: %w: %s", file, err, cum)
			}
			if err := os.WriteFile(filepath.Join(dir, name+".cum.txt"), cum, 0o644); err != nil {
				return err
			}
			fmt.Printf("\n== %s, CPU under %s (%s)\n%s", name, ph.what, file, out)
		}
	}
	return nil
}
