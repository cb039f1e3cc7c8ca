// Command sandbox serves Sandbox Bank over the bankbridge.adapter.v1 gRPC
// protocol, for development and tests. It starts through platform/bootstrap
// like every bankbridge binary (it lives in the services module for that;
// the bank itself is adapters/sandbox).
//
// It serves mutual TLS with a certificate for "sandbox" from Vault's PKI
// engine (--vault-addr; see platform/bootstrap): only a client certificate
// of that CA, which bankbridge's services present, is let in. --plaintext
// turns TLS off, in --dev-mode only.
//
// It refuses calls without the API key held in --api-key-file; the file is
// polled every --api-key-poll, and after it changes the previous key stays
// accepted for --api-key-grace, so a rotation needs no restart. The admin
// listener on --admin-addr serves /healthz, /readyz and /metrics, raises
// fraud alerts on demand and tells how the customer answered one, and makes
// the support agent ask for thread control of a case:
//
//	curl --cacert <CA> -X POST 'https://127.0.0.1:9401/admin/fraud-alerts?user=alice'
//	curl --cacert <CA> 'https://127.0.0.1:9401/admin/fraud-alerts/<alert id>'
//	curl --cacert <CA> -X POST 'https://127.0.0.1:9401/admin/support/request-control?case=<case id>'
//	curl --cacert <CA> -X POST 'https://127.0.0.1:9401/admin/support/pass-control?user=alice'
//
// (pass-control makes her hand the case back; both take ?user=<login> for
// the customer's latest open case instead of ?case=.)
//
// A fraud case moves from RECEIVED to IN_REVIEW to RESOLVED one
// --fraud-case-step apart.
//
// With --carrier-push-url and --carrier-secret-file it is also the sandbox
// carrier: it pushes the scripted tracking events of its fixture numbers
// to bankbridge's shipping service, signed, one every --carrier-step, on
// demand or, with --carrier-autoplay, all four once at start:
//
//	curl --cacert <CA> -X POST 'https://127.0.0.1:9401/admin/carrier/play?tracking_number=SBX0000000018'
//
// --synthetic-customers N adds N generated customers, synth-0000 onwards,
// each with one account and balances from a fixed seed, for load tests
// that spread calls over many users (`make bench-ratio`).
//
// Every flag can also be set as a BANKBRIDGE_* environment variable (a flag
// wins): --api-key-file is BANKBRIDGE_API_KEY_FILE, and so on.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
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
	Carrier     carrierConfig
}

// carrierConfig is the sandbox carrier's: off without a push URL.
type carrierConfig struct {
	PushURL    string
	SecretFile string
	Step       time.Duration
	Autoplay   bool
}

// autoplayDelay lets the rest of a dev stack come up before
// --carrier-autoplay's first push.
const autoplayDelay = time.Second

// pushTimeout bounds one carrier push.
const pushTimeout = 10 * time.Second

func defaults() *config {
	c := &config{
		Config:      bootstrap.Defaults("sandbox", "127.0.0.1:9400", "127.0.0.1:9401"),
		APIKeyGrace: 10 * time.Minute, // longer than the services' --vault-refresh (5 min)
		APIKeyPoll:  time.Second,
		Bank:        sandbox.Options{BankID: "sandbox", DisplayName: "Sandbox Bank", Seed: 1, FraudCaseStep: sandbox.DefaultFraudCaseStep},
		Carrier:     carrierConfig{Step: sandbox.DefaultCarrierStep},
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
	fs.IntVar(&c.Bank.SyntheticCustomers, "synthetic-customers", c.Bank.SyntheticCustomers,
		"add `N` generated customers, logins synth-0000 to synth-(N-1), each with one account and deterministic balances, for load tests (at most 10000)")
	fs.DurationVar(&c.Bank.FraudCaseStep, "fraud-case-step", c.Bank.FraudCaseStep,
		"time between a fraud case's updates (RECEIVED, IN_REVIEW, RESOLVED); 0 leaves cases RECEIVED")
	fs.StringVar(&c.Carrier.PushURL, "carrier-push-url", c.Carrier.PushURL,
		"`URL` the sandbox carrier POSTs tracking events to, e.g. https://127.0.0.1:8080/v1/carriers/sandbox/trackingEvents (empty: no carrier)")
	fs.StringVar(&c.Carrier.SecretFile, "carrier-secret-file", c.Carrier.SecretFile,
		"`file` holding the whsec_ secret the carrier signs pushes with (required with --carrier-push-url)")
	fs.DurationVar(&c.Carrier.Step, "carrier-step", c.Carrier.Step, "time between two tracking events of a parcel (the compressed clock)")
	fs.BoolVar(&c.Carrier.Autoplay, "carrier-autoplay", c.Carrier.Autoplay, "play every sandbox tracking number once, shortly after start")
}

// Validate checks the bank's own settings.
func (c *config) Validate() error {
	switch {
	case c.APIKeyFile == "":
		return errors.New("--api-key-file (BANKBRIDGE_API_KEY_FILE) is required: the sandbox refuses calls without the right API key")
	case c.APIKeyPoll <= 0:
		return errors.New("--api-key-poll must be positive")
	case c.Bank.FraudCaseStep < 0:
		return errors.New("--fraud-case-step must not be negative")
	case c.Bank.SyntheticCustomers < 0 || c.Bank.SyntheticCustomers > sandbox.MaxSyntheticCustomers:
		return fmt.Errorf("--synthetic-customers must be between 0 and %d", sandbox.MaxSyntheticCustomers)
	}
	return c.Carrier.validate()
}

func (c *carrierConfig) validate() error {
	if c.PushURL == "" {
		switch {
		case c.SecretFile != "":
			return errors.New("--carrier-secret-file needs --carrier-push-url")
		case c.Autoplay:
			return errors.New("--carrier-autoplay needs --carrier-push-url")
		}
		return nil
	}
	u, err := url.Parse(c.PushURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("--carrier-push-url must be an absolute http or https URL")
	case c.SecretFile == "":
		return errors.New("--carrier-secret-file (BANKBRIDGE_CARRIER_SECRET_FILE) is required with --carrier-push-url: pushes are signed")
	case c.Step <= 0:
		return errors.New("--carrier-step must be positive")
	}
	return nil
}

// newCarrier returns the configured sandbox carrier, or nil without one.
// tlsConfig, when set, is how it reaches an https push URL (the dev
// stack's gateway, whose certificate bankbridge's CA signs); nil uses the
// system's roots.
func (c *carrierConfig) newCarrier(log *slog.Logger, tlsConfig *tls.Config) (*sandbox.Carrier, error) {
	if c.PushURL == "" {
		return nil, nil
	}
	secret, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("--carrier-secret-file: %w", err)
	}
	transport := http.DefaultTransport
	if tlsConfig != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig, tr.ForceAttemptHTTP2 = tlsConfig, true
		transport = tr
	}
	carrier, err := sandbox.NewCarrier(sandbox.CarrierConfig{
		PushURL: c.PushURL,
		Secret:  strings.TrimSpace(string(secret)),
		Step:    c.Step,
		Client:  &http.Client{Timeout: pushTimeout, Transport: transport},
		Logger:  log,
	})
	if err != nil {
		return nil, fmt.Errorf("--carrier-secret-file %s: %w", c.SecretFile, err)
	}
	return carrier, nil
}

// autoplay plays every tracking number once, after autoplayDelay, and
// stops at the stop signal.
func autoplay(ctx context.Context, stopping <-chan struct{}, carrier *sandbox.Carrier, log *slog.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-time.After(autoplayDelay):
	case <-ctx.Done():
		return
	}
	log.Info("carrier autoplay: playing every sandbox tracking number", slog.Any("tracking_numbers", sandbox.TrackingNumbers()))
	if err := carrier.PlayAll(ctx); err != nil && ctx.Err() == nil {
		log.Error("carrier autoplay", slog.String("error", err.Error()))
	}
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
			// What faults this bank injects, so that whoever reads its log
			// knows which failures are on purpose.
			log.Info("sandbox bank fault injection",
				slog.Duration("bankbridge.fault_latency", cfg.Bank.Latency),
				slog.Float64("bankbridge.fault_error_rate", cfg.Bank.ErrorRate),
				slog.Uint64("bankbridge.fault_seed", cfg.Bank.Seed),
				slog.String("bankbridge.fault_customers", sandbox.FailingCustomers),
				slog.Duration("bankbridge.fault_slow_delay", sandbox.SlowCustomerDelay),
				slog.Int("bankbridge.synthetic_customers", cfg.Bank.SyntheticCustomers))
			carrier, err := cfg.Carrier.newCarrier(d.Logger, d.ClientTLS(""))
			if err != nil {
				return bootstrap.Service{}, err
			}
			tasks := []func(context.Context) error{}
			closeCarrier := func() {}
			if carrier != nil {
				closeCarrier = carrier.Close
				u, _ := url.Parse(cfg.Carrier.PushURL) // checked by Validate
				log.Info("sandbox carrier on", slog.String("push_url", u.Redacted()), slog.String("step", cfg.Carrier.Step.String()))
				if cfg.Carrier.Autoplay {
					tasks = append(tasks, func(ctx context.Context) error {
						autoplay(ctx, d.Stopping, carrier, d.Logger)
						return nil
					})
				}
			}
			return bootstrap.Service{
				GRPC: func(r grpc.ServiceRegistrar) {
					adapterv1.RegisterBankAdapterServiceServer(r, adapters.NewServer(bank,
						adapters.WithAPIKeys(keys.Keys), adapters.WithLogger(log)))
				},
				Admin: map[string]http.Handler{
					"/admin/":         bank.AdminHandler(),
					"/admin/carrier/": sandbox.CarrierAdminHandler(carrier),
				},
				Tasks: append(tasks, func(ctx context.Context) error {
					// Event streams and carrier runs end at the stop
					// signal, so they do not hold the graceful stop.
					select {
					case <-d.Stopping:
					case <-ctx.Done():
					}
					bank.Close()
					closeCarrier()
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
				}),
				Close: func() { bank.Close(); closeCarrier() },
			}, nil
		},
	}
}

func run(ctx context.Context, args []string) error {
	return bootstrap.Run(ctx, args, spec(defaults()))
}
