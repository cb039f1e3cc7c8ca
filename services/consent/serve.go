package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/banks"
	"github.com/bankbridge/bankbridge/services/consent/internal/signer"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/consent/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// start wires the service on the dependencies bootstrap built (database,
// bank adapters, events): the gRPC servers, and beside them the change
// feed, the sweeper (expiry warnings) and the worker that tells banks of
// revocations.
func start(ctx context.Context, cfg *config, d *bootstrap.Deps) (bootstrap.Service, error) {
	log := d.Logger
	st, err := store.New(ctx, d.DB, d.Outbox, log)
	if err != nil {
		return bootstrap.Service{}, err
	}
	key, err := d.Vault.Transit(cfg.TransitMount, cfg.AccessLogKey)
	if err != nil {
		return bootstrap.Service{}, err
	}
	keys, err := readKeys(ctx, d.Vault)
	if err != nil {
		return bootstrap.Service{}, err
	}
	svc, err := app.New(st, banks.New(d.Banks), app.Config{
		ConsentTTL: cfg.ConsentTTL, Logger: log, PageTokens: d.PageTokens, Now: d.Now, MeterProvider: d.Telemetry.MeterProvider,
		Keys: keys.Keys, PendingLinkLimit: cfg.PendingLinkLimit,
		ScaFailureLimit: cfg.ScaFailureLimit, ScaFailureWindow: cfg.ScaFailureWindow, ScaCooldown: cfg.ScaCooldown,
		HeadSigner: signer.New(key), HeadSignGrace: cfg.AccessLogSignGrace, HeadSignDelay: cfg.AccessLogSignDelay,
		// Users opt in to the partners the kit lets push (--partner-clients).
		Partners: cfg.Server.Partners(),
	})
	if err != nil {
		return bootstrap.Service{}, err
	}
	// Change streams end at the stop signal, so they do not hold the drain.
	check := transport.NewCheckServer(svc, log, d.Stopping)
	log.Info("consent service on " + string(d.DB.Dialect()))
	if d.LogRefs == nil {
		// The look-up answers the refs log lines carry; without the
		// pseudonym key it could answer only raw ids, so it is not served.
		log.Warn("no pseudonym key: ConsentOperatorService (look-up by trace id) is not served")
	}
	return bootstrap.Service{
		GRPC: func(r grpc.ServiceRegistrar) {
			consentv1.RegisterConsentServiceServer(r, transport.NewConsentServer(svc))
			consentv1.RegisterConsentCheckServiceServer(r, check)
			if d.LogRefs != nil {
				consentv1.RegisterConsentOperatorServiceServer(r, transport.NewOperatorServer(svc, d.LogRefs))
			}
		},
		Recorder: transport.NewRecorder(check),
		Tasks: []func(context.Context) error{
			st.Run,
			bootstrap.Periodic{What: "consent sweep", Every: cfg.SweepInterval, Logger: log, Run: func(ctx context.Context) (int, error) {
				_, err := svc.Sweep(ctx)
				return 0, err
			}}.Task,
			func(ctx context.Context) error {
				return svc.RunBankRevocations(ctx, busPort{d.Bus})
			},
			// Heads left unsigned while Vault was down, or by a replica
			// that stopped before signing.
			bootstrap.Periodic{What: "access log head signing", Every: cfg.SweepInterval, Logger: log,
				Run: svc.SignPendingHeads, Done: "unsigned access log heads signed"}.Task,
			// Rotated keys, without a restart.
			bootstrap.Periodic{What: "consent keys refresh", Every: keysRefresh(cfg), Logger: log, Run: keys.refresh}.Task,
		},
		Close: svc.Close,
	}, nil
}

// busPort is the platform's bus as app.Bus, with the bank revocation
// worker's retry policy: a bank that did not accept is asked again after
// a second, doubling up to five minutes, without end.
type busPort struct{ bus *events.Bus }

func (p busPort) Consume(ctx context.Context, durable string, f events.Filter, handle func(context.Context, events.Delivered) error) error {
	return p.bus.Consume(ctx, durable, f, handle, events.WithBackoff(time.Second, 5*time.Minute))
}

// verifyAccessLog checks the hash chain of one user's access log, or of
// every user's, and its head's signature, and prints what it found. A
// broken chain is an error, so the command exits non-zero. It reads the
// signing key's public versions from Vault.
func verifyAccessLog(ctx context.Context, cfg *config, user string, out io.Writer) error {
	if cfg.Vault.Address == "" {
		return errors.New("verify-access-log needs --vault-addr: access log heads are signed with a Vault Transit key, whose public versions it reads")
	}
	vault, err := credentials.New(ctx, cfg.Vault)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer func() { _ = vault.Close() }()
	key, err := vault.Transit(cfg.TransitMount, cfg.AccessLogKey)
	if err != nil {
		return err
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := store.New(ctx, db, nil, nil) // reads only: no events
	if err != nil {
		return err
	}
	svc, err := app.New(st, nil, app.Config{ConsentTTL: cfg.ConsentTTL, HeadSigner: signer.New(key), HeadSignGrace: cfg.AccessLogSignGrace})
	if err != nil {
		return err
	}
	if user != "" {
		err = svc.VerifyChain(ctx, user)
	} else {
		err = svc.VerifyAllChains(ctx)
	}
	var broken []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		broken = joined.Unwrap()
	} else if err != nil {
		broken = []error{err}
	}
	for _, e := range broken {
		ce, ok := errors.AsType[*app.ChainError](e)
		if !ok {
			return e // could not read; nothing was judged
		}
		fmt.Fprintf(out, "%s: %v\n", names.User(ce.User), ce)
	}
	if len(broken) > 0 {
		return fmt.Errorf("%d access log chain(s) broken", len(broken))
	}
	fmt.Fprintln(out, "access log intact")
	return nil
}
