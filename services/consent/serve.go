package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/banks"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/consent/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// serve wires the service and serves until ctx ends: telemetry, token
// verifier, database, Vault, bank adapters, then the gRPC server, the
// change feed and the sweeper side by side. It tears down in reverse.
func serve(ctx context.Context, cfg config, ready func(grpcAddr string)) error {
	// Telemetry, the token verifier, Vault and the bank registry are wired
	// the way every service wires them; the consent service is the one that
	// answers consent checks, so it has none of its own.
	rt, err := bootstrap.Start(ctx, bootstrap.Config{Server: cfg.Server, Vault: cfg.Vault, BanksFile: cfg.BanksFile})
	if err != nil {
		return err
	}
	defer rt.Close()
	tel, verifier, reg := rt.Telemetry, rt.Verifier, rt.Banks
	log := tel.Logger

	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := store.New(ctx, db, log)
	if err != nil {
		return err
	}

	svc, err := app.New(st, banks.New(reg), app.Config{ConsentTTL: cfg.ConsentTTL, Logger: log})
	if err != nil {
		return err
	}
	defer svc.Close() // before the registry closes: revocations at banks may be in flight

	g, gctx := errgroup.WithContext(ctx)
	check := transport.NewCheckServer(svc, log, gctx.Done())
	srv, err := server.New(cfg.Server, server.Deps{
		Telemetry: tel,
		Verifier:  verifier,
		Recorder:  transport.NewRecorder(check),
	}, func(r grpc.ServiceRegistrar) {
		consentv1.RegisterConsentServiceServer(r, transport.NewConsentServer(svc))
		consentv1.RegisterConsentCheckServiceServer(r, check)
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
