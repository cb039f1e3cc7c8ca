// Command benchratio is `make bench-ratio`: the whole stack against a bare
// echo, measured by the same load generators with the same settings in one
// run (issue 15).
//
// It starts the dev stack (every process, TLS on every hop, the sandbox
// bank remote over mutual TLS, with --synthetic-customers), starts the
// echo baseline (benchecho: gRPC health and a JSON handler, on TLS), links
// --users synthetic users (synth-0000, ...) with dev tokens, and drives:
//
//   - ghz (ghz-bench, 50 concurrent calls over 4 connections) with
//     GetBalance on the balance service, each call a user's own balance
//     with that user's token, round-robin over every user; and with the
//     health Check on the echo;
//   - wrk (2 threads, 50 connections) with GET .../balance on the gateway,
//     spread over the users the same way (a Lua script), and with GET on
//     the echo's JSON handler, the same requests;
//   - ghz again on GetBalance at half the rate it just reached, for the
//     latency at half load.
//
// It prints req/s, p50, p99 and errors of each, the ratios against their
// targets, and how often the services read each bank's credential from
// Vault during the runs. With --profile-dir it then takes a CPU profile of
// balance, consent and the gateway under the same ghz load (their --pprof
// endpoints, on in the dev stack) and writes each one's top functions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("benchratio", run) }

// config is benchratio's flags.
type config struct {
	root       string
	users      int
	duration   time.Duration
	warmup     time.Duration
	bin        string
	profileDir string
	keep       bool
}

// Load settings, the same for the stack and the echo (issue 15).
const (
	ghzConcurrency = 50
	ghzConnections = 4
	wrkThreads     = 2
	wrkConnections = 50
)

func run(ctx context.Context, args []string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := stack.FindRoot(wd)
	if err != nil {
		return err
	}
	cfg := config{root: root}
	fs := flag.NewFlagSet("benchratio", flag.ContinueOnError)
	fs.IntVar(&cfg.users, "users", 1000, "synthetic users to link and spread the load over")
	fs.DurationVar(&cfg.duration, "duration", 15*time.Second, "length of each measured run")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured load on the stack before its runs")
	fs.StringVar(&cfg.bin, "bin", filepath.Join(root, "bin"), "directory holding ghz-bench and benchecho")
	fs.StringVar(&cfg.profileDir, "profile-dir", "", "after the runs, take CPU profiles of balance, consent and the gateway under ghz load into this directory")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the stack's data directory (logs, banks.yaml, users) after the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.users < 1 || cfg.users > 10_000 {
		return errors.New("--users must be between 1 and 10000")
	}
	for _, tool := range []string{filepath.Join(cfg.bin, "ghz-bench"), filepath.Join(cfg.bin, "benchecho")} {
		if _, err := os.Stat(tool); err != nil {
			return fmt.Errorf("%s: %w (make bench-ratio builds it)", tool, err)
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (make bench-ratio installs it: apt-get install wrk)")
	}

	dir, err := os.MkdirTemp("", "bankbridge-benchratio-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(os.Stderr, "benchratio: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	logs, err := os.Create(filepath.Join(dir, "stack.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	opts := stack.Options{
		Root:      root,
		DataDir:   dir,
		FreePorts: true, // beside a `make dev` stack, if one runs
		Logs:      logs,
		ExtraArgs: map[string][]string{
			"sandbox": {fmt.Sprintf("--synthetic-customers=%d", cfg.users)},
			// Every call comes from the one bench client: its per-client
			// read limit (2,000/s by default) would be what is measured
			// once the stack outruns it. The per-user limits stay.
			"balance": {"--rate-limit-read-client=1000000/1s:1000000"},
		},
	}
	fmt.Fprintln(os.Stderr, "benchratio: building and starting the dev stack...")
	if err := stack.Build(ctx, opts); err != nil {
		return err
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("%w (stack output in %s; rerun with --keep to keep it)", err, logs.Name())
	}
	defer s.Stop()

	echo, err := startEcho(ctx, filepath.Join(cfg.bin, "benchecho"), dir)
	if err != nil {
		return err
	}
	defer echo.stop()

	fmt.Fprintf(os.Stderr, "benchratio: linking %d synthetic users...\n", cfg.users)
	users, err := linkUsers(ctx, s, cfg.users)
	if err != nil {
		return err
	}
	b, err := newBench(cfg, s, echo, dir, users)
	if err != nil {
		return err
	}
	res, err := b.measure(ctx)
	if err != nil {
		return err
	}
	res.print(os.Stdout)
	if cfg.profileDir != "" {
		if err := b.profile(ctx, cfg.profileDir); err != nil {
			return err
		}
	}
	return nil
}
