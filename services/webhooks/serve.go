package main

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/egress"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/secrets"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/store"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/transport"
)

// start wires the service on the dependencies bootstrap built: the gRPC
// handlers, and beside them the bus consumer and the dispatcher.
func start(ctx context.Context, cfg *config, d *bootstrap.Deps) (bootstrap.Service, error) {
	st, err := store.New(ctx, d.DB)
	if err != nil {
		return bootstrap.Service{}, err
	}
	sec, err := secrets.New(d.Vault, 0)
	if err != nil {
		return bootstrap.Service{}, err
	}
	// Dev mode lets endpoints be http and on 127.0.0.1; nowhere else.
	policy := egress.Policy{AllowPrivate: cfg.Server.DevMode}
	svc, err := app.New(app.Config{
		Store: st, Secrets: sec, URLs: policy, Poster: egress.NewPoster(policy, cfg.AttemptTimeout),
		Pages: d.PageTokens, Logger: d.Logger,
		RetryWindow: cfg.RetryWindow, BackoffBase: cfg.BackoffBase, BackoffCap: cfg.BackoffCap,
		AttemptTimeout: cfg.AttemptTimeout, Retention: cfg.Retention, Concurrency: cfg.Concurrency,
	})
	if err != nil {
		return bootstrap.Service{}, err
	}
	if policy.AllowPrivate {
		d.Logger.Warn("dev mode: webhook endpoints may be http and on private addresses")
	}
	h := transport.New(svc)
	return bootstrap.Service{
		GRPC: func(r grpc.ServiceRegistrar) { webhooksv1.RegisterWebhooksServiceServer(r, h) },
		Tasks: []func(context.Context) error{
			svc.Dispatch,
			func(ctx context.Context) error {
				d.Logger.Info("delivering events from the bus", slog.String("component", app.Durable))
				return svc.Consume(ctx, busConsumer{d.Bus})
			},
		},
	}, nil
}

// busConsumer is the platform's bus as the app's port.
type busConsumer struct{ b *events.Bus }

// Consume runs the durable consumer with the bus's default backoff.
func (c busConsumer) Consume(ctx context.Context, durable string, f events.Filter, handle func(context.Context, events.Delivered) error) error {
	return c.b.Consume(ctx, durable, f, handle)
}
