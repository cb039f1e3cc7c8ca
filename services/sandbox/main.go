// Command sandbox serves Sandbox Bank over the bankbridge.adapter.v1 gRPC
// protocol, for development and tests. It starts through platform/bootstrap
// like every bankbridge binary (it lives in the services module for that;
// the bank itself is adapters/sandbox).
//
// It refuses calls without the API key held in --api-key-file; the file is
// polled every --api-key-poll, and after it changes the previous key stays
// accepted for --api-key-grace, so a rotation needs no restart. The admin
// listener on --admin-addr serves /healthz, /readyz and /metrics, and raises
// fraud alerts on demand:
//
//	curl -X POST 'http://127.0.0.1:9401/admin/fraud-alerts?user=alice'
//
// Every flag can also be set as a BANKBRIDGE_* environment variable (a flag
// wins): --api-key-file is BANKBRIDGE_API_KEY_FILE, and so on.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("sandbox", run) }

// config is the kit's config plus the bank's own settings.
type config struct {
	bootstrap.Config
	APIKeyFile  string
	APIKeyGrace time.Duration
	APIKeyPoll  time.Duration
	Bank        sandbox.Options
}

func defaults() *config {
	c := &config{
		Config:      bootstrap.Defaults("sandbox", "127.0.0.1:9400", "127.0.0.1:9401"),
		APIKeyGrace: time.Minute,
		APIKeyPoll:  time.Second,
		Bank:        sandbox.Options{BankID: "sandbox", DisplayName: "Sandbox Bank", Seed: 1},
	}
	// A dev and test bank: no load balancer to wait for, and a short grace
	// (event streams end at the stop signal; the bank's calls are short).
	c.Server.DrainDelay, c.Server.ShutdownGrace = 0, 5*time.Second
	return c
}

// RegisterFlags binds the bank's own flags, after the kit's.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.APIKeyFile, "api-key-file", c.APIKeyFile, "`file` holding the API key bankbridge must present (required)")
	fs.DurationVar(&c.APIKeyGrace, "api-key-grace", c.APIKeyGrace, "how long a replaced API key stays accepted")
	fs.DurationVar(&c.APIKeyPoll, "api-key-poll", c.APIKeyPoll, "how often to check the API key file for a new key")
	fs.StringVar(&c.Bank.BankID, "bank-id", c.Bank.BankID, "the bank id to report; must match banks.yaml")
	fs.StringVar(&c.Bank.DisplayName, "display-name", c.Bank.DisplayName, "the bank's name")
	fs.DurationVar(&c.Bank.Latency, "latency", c.Bank.Latency, "latency added to every bank call")
	fs.Float64Var(&c.Bank.ErrorRate, "error-rate", c.Bank.ErrorRate, "share of bank calls, 0 to 1, that fail with BANK_UNAVAILABLE")
	fs.Uint64Var(&c.Bank.Seed, "seed", c.Bank.Seed, "seed of the error rate's draws")
}

// Validate checks the bank's own settings.
func (c *config) Validate() error {
	switch {
	case c.APIKeyFile == "":
		return errors.New("--api-key-file (BANKBRIDGE_API_KEY_FILE) is required: the sandbox refuses calls without the right API key")
	case c.APIKeyPoll <= 0:
		return errors.New("--api-key-poll must be positive")
	}
	return nil
}

// spec declares the sandbox bank to the kit.
func spec(cfg *config) bootstrap.Spec {
	return bootstrap.Spec{
		Kind:   bootstrap.KindBank,
		Config: cfg,
		Start: func(_ context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			keys, err := adapters.NewKeyFile(cfg.APIKeyFile, cfg.APIKeyGrace)
			if err != nil {
				return bootstrap.Service{}, err
			}
			bank, err := sandbox.New(cfg.Bank)
			if err != nil {
				return bootstrap.Service{}, err
			}
			log := d.Logger.With(slog.String("bank_id", cfg.Bank.BankID))
			return bootstrap.Service{
				GRPC: func(r grpc.ServiceRegistrar) {
					adapterv1.RegisterBankAdapterServiceServer(r, adapters.NewServer(bank,
						adapters.WithAPIKeys(keys.Keys), adapters.WithLogger(log)))
				},
				Admin: map[string]http.Handler{"/admin/": bank.AdminHandler()},
				Tasks: []func(context.Context) error{func(ctx context.Context) error {
					// Event streams end at the stop signal, so they do not
					// hold the graceful stop.
					select {
					case <-d.Stopping:
					case <-ctx.Done():
					}
					bank.Close()
					return nil
				}, func(ctx context.Context) error {
					keys.Watch(ctx, cfg.APIKeyPoll,
						func() {
							log.Info("api key rotated; the previous key stays accepted for the grace period",
								slog.String("grace", cfg.APIKeyGrace.String()))
						},
						func(err error) {
							log.Warn("api key file unreadable; the accepted keys are unchanged", slog.String("error", err.Error()))
						})
					return nil
				}},
				Close: bank.Close,
			}, nil
		},
	}
}

func run(ctx context.Context, args []string) error {
	return bootstrap.Run(ctx, args, spec(defaults()))
}
