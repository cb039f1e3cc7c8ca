// Command support serves bankbridge.support.v1: a user's support
// conversations with their bank, answered first by bankbridge's own
// assistant (deterministic rules, no language model) and handed to the
// bank's human agent on request, with thread control after Messenger's
// handover protocol; fraud reports, cards and the fraud alerts banks
// raise. One replica at a time reads each bank's adapter event stream
// (agents' messages and control changes, fraud alerts), holding a lease
// in the database and resuming from the cursor stored there. Messages are
// deleted when their retention ends, and a user's conversations at a bank
// when the user revokes the link they were held under.
//
// It starts through platform/bootstrap: besides the kit's flags
// (--grpc-addr, --issuer, --jwks-url, --partner-clients, ...), the banks
// flags (--banks, and --vault-addr for remote banks), the consent service
// (--consent-addr, ...), the storage flags (--data-dir, --database-url) and
// the bus flags (--nats-url, ...), it takes:
//
//	--balance-addr          the balance service, which the assistant asks for balances and transactions (default 127.0.0.1:9102)
//	--agent-idle-timeout    how long a user message may wait for the agent before the assistant takes control back (default 10m)
//	--message-retention     how long a message is kept (default 2160h, 90 days; at least 1h)
//	--sweep-interval        how often idle agents and expired messages are looked for (default 1m)
//	--bank-events-lease     how long a replica holds a bank's event stream without renewing it (default 15s)
//
// Every flag is also a BANKBRIDGE_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/balance"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
	"github.com/bankbridge/bankbridge/services/support/internal/transport"
)

func main() { bootstrap.Main("support", run) }

// The default addresses.
const (
	defaultGRPCAddr    = "127.0.0.1:9104"
	defaultAdminAddr   = "127.0.0.1:9204"
	defaultBalanceAddr = "127.0.0.1:9102"
	// defaultSweepInterval is how often idle agents and expired messages
	// are looked for: the idle timeout is kept within a minute.
	defaultSweepInterval = time.Minute
)

// config is the kit's config plus the support service's own.
type config struct {
	bootstrap.Config
	BalanceAddr      string
	AgentIdleTimeout time.Duration
	MessageRetention time.Duration
	SweepInterval    time.Duration
	LeaseTTL         time.Duration
}

func defaults() *config {
	return &config{
		Config:           bootstrap.Defaults("support", defaultGRPCAddr, defaultAdminAddr),
		BalanceAddr:      defaultBalanceAddr,
		AgentIdleTimeout: app.DefaultAgentIdleTimeout,
		MessageRetention: app.DefaultMessageRetention,
		SweepInterval:    defaultSweepInterval,
		LeaseTTL:         app.DefaultLeaseTTL,
	}
}

// RegisterFlags binds the support service's own settings.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.BalanceAddr, "balance-addr", c.BalanceAddr, "the balance service's gRPC address, which the assistant asks for balances and transactions as the user")
	fs.DurationVar(&c.AgentIdleTimeout, "agent-idle-timeout", c.AgentIdleTimeout, "how long a user message may wait for the bank's agent before the assistant takes control back")
	fs.DurationVar(&c.MessageRetention, "message-retention", c.MessageRetention, "how long a conversation's message is kept; at least 1h")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often idle agents and messages past their retention are looked for")
	fs.DurationVar(&c.LeaseTTL, "bank-events-lease", c.LeaseTTL, "how long a replica holds a bank's adapter event stream without renewing it; another replica takes over after it")
}

// Validate checks the support service's own settings.
func (c *config) Validate() error {
	switch {
	case c.BalanceAddr == "":
		return errors.New("--balance-addr is required")
	case c.AgentIdleTimeout <= 0:
		return errors.New("--agent-idle-timeout must be positive")
	case c.MessageRetention < app.MinMessageRetention:
		return fmt.Errorf("--message-retention must be at least %s", app.MinMessageRetention)
	case c.SweepInterval <= 0:
		return errors.New("--sweep-interval must be positive")
	case c.LeaseTTL < time.Second:
		return errors.New("--bank-events-lease must be at least 1s")
	}
	return nil
}

func run(ctx context.Context, args []string) error {
	cfg := defaults()
	return bootstrap.Run(ctx, args, spec(cfg))
}

// spec declares the binary: banks (and Vault only for remote banks, as
// the registry needs it), consent, storage and the bus with its outbox.
func spec(cfg *config) bootstrap.Spec {
	return bootstrap.Spec{
		Kind:   bootstrap.KindService,
		Config: cfg,
		Needs:  bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true},
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			return start(ctx, cfg, d)
		},
	}
}

// start wires the service on the dependencies bootstrap built: the
// handlers, and beside them the bank event readers, the outbound worker,
// the revocation follower and the sweep.
func start(ctx context.Context, cfg *config, d *bootstrap.Deps) (bootstrap.Service, error) {
	st, err := store.New(ctx, d.DB, d.Outbox)
	if err != nil {
		return bootstrap.Service{}, err
	}
	conn, err := balance.Dial(cfg.BalanceAddr, d.Telemetry, d.TransportCredentials("balance"))
	if err != nil {
		return bootstrap.Service{}, fmt.Errorf("balance service: %w", err)
	}
	svc, err := app.New(app.Config{
		Store: st, Consent: d.Consent, Banks: d.Banks, Balances: balance.New(balancev1.NewBalanceServiceClient(conn)), Pages: d.PageTokens, Logger: d.Logger,
		AgentIdleTimeout: cfg.AgentIdleTimeout, MessageRetention: cfg.MessageRetention, LeaseTTL: cfg.LeaseTTL,
	})
	if err != nil {
		_ = conn.Close()
		return bootstrap.Service{}, err
	}
	// One subscription to the bus fans the events out to every stream of
	// the process; closed once the servers have drained.
	hub, err := stream.NewHub(d.Bus, stream.HubOptions{Types: transport.HubTypes, Logger: d.Logger, MeterProvider: d.Telemetry.MeterProvider})
	if err != nil {
		_ = conn.Close()
		return bootstrap.Service{}, err
	}
	h := transport.New(svc, stream.Feed{Bus: d.Bus, Hub: hub, Consent: d.Consent, Logger: d.Logger})
	return bootstrap.Service{
		GRPC: func(r grpc.ServiceRegistrar) { supportv1.RegisterSupportServiceServer(r, h) },
		Tasks: []func(context.Context) error{
			bootstrap.Periodic{What: "support sweep", Every: cfg.SweepInterval, Run: svc.Sweep, Done: "support sweep acted", Logger: d.Logger}.Task,
			svc.RunBankEvents,
			func(ctx context.Context) error { return svc.RunOutbound(ctx, d.Bus) },
			func(ctx context.Context) error { return svc.FollowRevocations(ctx, d.Bus) },
			func(ctx context.Context) error { return svc.RunFraudWorkers(ctx, d.Bus) },
		},
		Close: func() {
			hub.Close()
			_ = conn.Close()
		},
	}, nil
}
