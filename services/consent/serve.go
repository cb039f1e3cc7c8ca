package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/banks"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/consent/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// serve wires the service and serves until ctx ends: telemetry, token
// verifier, database, Vault, bank adapters, then the gRPC server, the
// change feed and the sweeper side by side. It tears down in reverse.
func serve(ctx context.Context, cfg config, ready func(grpcAddr string)) error {
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: cfg.Server.Name, ServiceVersion: cfg.Server.Version, LogLevel: cfg.Server.LogLevel,
	})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	log := tel.Logger

	verifier, err := auth.NewVerifier(ctx, auth.Config{
		Issuer: cfg.Server.Issuer, Audience: cfg.Server.Audience, JWKSURL: cfg.Server.JWKSURL,
	})
	if err != nil {
		return err
	}
	defer func() { _ = verifier.Close(context.WithoutCancel(ctx)) }()

	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := store.New(ctx, db, log)
	if err != nil {
		return err
	}

	reg, closeBanks, err := openBanks(ctx, cfg, tel)
	if err != nil {
		return err
	}
	defer closeBanks()

	svc, err := app.New(st, banks.New(reg), app.Config{ConsentTTL: cfg.ConsentTTL, Logger: log})
	if err != nil {
		return err
	}
	defer svc.Close() // before the registry closes: revocations at banks may be in flight

	g, gctx := errgroup.WithContext(ctx)
	srv, err := server.New(cfg.Server, server.Deps{
		Telemetry: tel,
		Verifier:  verifier,
		Consent:   transport.PurposeGate{},
		Auditor:   transport.NewAuditor(svc, log),
	}, func(r grpc.ServiceRegistrar) {
		consentv1.RegisterConsentServiceServer(r, transport.NewConsentServer(svc))
		consentv1.RegisterConsentCheckServiceServer(r, transport.NewCheckServer(svc, log, gctx.Done()))
	})
	if err != nil {
		return err
	}
	log.Info("consent service starting on "+string(db.Dialect()), slog.String("addr", srv.GRPCAddr()))
	if ready != nil {
		ready(srv.GRPCAddr())
	}
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return st.Run(gctx) })
	g.Go(func() error {
		svc.RunSweeper(gctx, cfg.SweepInterval)
		return nil
	})
	return g.Wait()
}

// openBanks loads banks.yaml and builds the adapter registry, with the
// Vault provider as the credential source when Vault is configured.
func openBanks(ctx context.Context, cfg config, tel *telemetry.Telemetry) (*adapters.Registry, func(), error) {
	list, err := adapters.LoadConfig(cfg.BanksFile)
	if err != nil {
		return nil, nil, err
	}
	opts := []adapters.Option{adapters.WithDialOptions(grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tel.TracerProvider),
		otelgrpc.WithMeterProvider(tel.MeterProvider),
		otelgrpc.WithPropagators(tel.Propagator),
	)))}
	var provider *credentials.Provider
	if cfg.Vault.Address != "" {
		provider, err = credentials.New(ctx, cfg.Vault,
			credentials.WithLogger(tel.Logger), credentials.WithMeterProvider(tel.MeterProvider))
		if err != nil {
			return nil, nil, fmt.Errorf("vault: %w", err)
		}
		opts = append(opts, adapters.WithCredentials(banks.NewVaultCredentials(provider)))
	}
	reg, err := adapters.NewRegistry(list, opts...)
	if err != nil {
		if provider != nil {
			_ = provider.Close()
		}
		return nil, nil, err
	}
	return reg, func() {
		_ = reg.Close()
		if provider != nil {
			_ = provider.Close()
		}
	}, nil
}

// verifyAccessLog checks the hash chain of one user's access log, or of
// every user's, and prints what it found. A broken chain is an error, so
// the command exits non-zero.
func verifyAccessLog(ctx context.Context, cfg config, user string, out io.Writer) error {
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := store.New(ctx, db, nil)
	if err != nil {
		return err
	}
	svc, err := app.New(st, nil, app.Config{ConsentTTL: cfg.ConsentTTL})
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
		fmt.Fprintf(out, "users/%s: %v\n", ce.User, ce)
	}
	if len(broken) > 0 {
		return fmt.Errorf("%d access log chain(s) broken", len(broken))
	}
	fmt.Fprintln(out, "access log intact")
	return nil
}
