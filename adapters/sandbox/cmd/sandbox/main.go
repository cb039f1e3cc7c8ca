// Command sandbox serves Sandbox Bank over the bankbridge.adapter.v1 gRPC
// protocol, for development and tests.
//
// It refuses calls without the API key held in --api-key-file; the file is
// polled every --api-key-poll, and after it changes the previous key stays
// accepted for --api-key-grace, so a rotation needs no restart. An HTTP
// admin endpoint on --admin-addr raises fraud alerts on demand:
//
//	curl -X POST 'http://127.0.0.1:9401/admin/fraud-alerts?user=alice'
//
// Every flag can also be set by an environment variable: BANKBRIDGE_SANDBOX_
// followed by the flag's name in upper case with - as _, e.g.
// BANKBRIDGE_SANDBOX_ADDR. Flags win over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

const envPrefix = "BANKBRIDGE_SANDBOX_"

// shutdownTimeout bounds a graceful stop before open calls are cut.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

// config is the command's configuration, from flags and the environment.
type config struct {
	addr        string
	adminAddr   string
	apiKeyFile  string
	apiKeyGrace time.Duration
	apiKeyPoll  time.Duration
	bank        sandbox.Options
}

func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9400", "`host:port` to serve bankbridge.adapter.v1 on")
	fs.StringVar(&c.adminAddr, "admin-addr", "127.0.0.1:9401", "`host:port` of the HTTP admin endpoint; empty turns it off")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "", "`file` holding the API key bankbridge must present (required)")
	fs.DurationVar(&c.apiKeyGrace, "api-key-grace", 60*time.Second, "how long a replaced API key stays accepted")
	fs.DurationVar(&c.apiKeyPoll, "api-key-poll", time.Second, "how often to check the API key file for a new key")
	fs.StringVar(&c.bank.BankID, "bank-id", "sandbox", "the bank id to report; must match banks.yaml")
	fs.StringVar(&c.bank.DisplayName, "display-name", "Sandbox Bank", "the bank's name")
	fs.DurationVar(&c.bank.Latency, "latency", 0, "latency added to every bank call")
	fs.Float64Var(&c.bank.ErrorRate, "error-rate", 0, "share of bank calls, 0 to 1, that fail with BANK_UNAVAILABLE")
	fs.Uint64Var(&c.bank.Seed, "seed", 1, "seed of the error rate's draws")

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.apiKeyFile == "" {
		return c, errors.New("--api-key-file is required: the sandbox refuses calls without the right API key")
	}
	if c.apiKeyPoll <= 0 {
		return c, errors.New("--api-key-poll must be positive")
	}
	return c, nil
}

// run serves until ctx ends. ready, when not nil, learns the addresses
// once both listeners are bound (tests use port 0).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(grpcAddr, adminAddr net.Addr)) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	keys, err := adapters.NewKeyFile(cfg.apiKeyFile, cfg.apiKeyGrace)
	if err != nil {
		return err
	}
	bank, err := sandbox.New(cfg.bank)
	if err != nil {
		return err
	}

	traced, stopTracing, err := tracing(ctx)
	if err != nil {
		return err
	}
	defer stopTracing()
	srv := grpc.NewServer(traced)
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(bank,
		adapters.WithAPIKeys(keys.Keys), adapters.WithLogger(log)))
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(srv, healthSrv)

	lis, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var adminLis net.Listener
	if cfg.adminAddr != "" {
		if adminLis, err = net.Listen("tcp", cfg.adminAddr); err != nil {
			lis.Close()
			return fmt.Errorf("listen admin: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(lis) }()
	var admin *http.Server
	if adminLis != nil {
		admin = &http.Server{Handler: bank.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { serveErr <- admin.Serve(adminLis) }()
	}
	go keys.Watch(ctx, cfg.apiKeyPoll,
		func() {
			log.Info("api key rotated; the previous key stays accepted for the grace period",
				slog.Duration("grace", cfg.apiKeyGrace))
		},
		func(err error) {
			log.Warn("api key file unreadable; the accepted keys are unchanged", slog.String("error", err.Error()))
		})

	var adminAddr net.Addr
	if adminLis != nil {
		adminAddr = adminLis.Addr()
	}
	log.Info("sandbox bank serving", slog.String("addr", lis.Addr().String()),
		slog.Any("admin_addr", adminAddr), slog.String("bank_id", cfg.bank.BankID))
	if ready != nil {
		ready(lis.Addr(), adminAddr)
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	healthSrv.Shutdown()
	bank.Close() // ends event streams so that GracefulStop does not wait on them
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(shutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop()
	}
	if admin != nil {
		shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancelShutdown()
		_ = admin.Shutdown(shutdownCtx)
	}
	log.Info("sandbox bank stopped")
	return err
}
