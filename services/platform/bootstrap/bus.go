package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
)

// devSubjectKey keys the users' references on the bus in dev mode, where
// --subject-key may be unset: the same value platform/server uses for the
// access log's subject ids, so every dev service agrees.
const devSubjectKey = "bankbridge-dev-subject-key"

// buildBus connects the event bus (embedding a NATS server without
// --nats-url) and, with storage, sets up the outbox and its relay.
func (b *builder) buildBus(life context.Context) error {
	c, log := b.cfg, b.deps.Logger
	url := c.NATSURL
	if url == "" {
		srv, err := events.Embedded(c.NATSDir)
		if err != nil {
			return err
		}
		b.closers = append(b.closers, srv.Close)
		url = srv.URL()
		log.Info("embedded NATS server for the event bus", slog.String("addr", url))
	}
	key := c.Server.SubjectKey
	if key == "" {
		key = devSubjectKey // dev mode only: server.Config.Validate requires a key otherwise
	}
	cfg := events.Config{URL: url, Name: c.Server.Name, SubjectKey: []byte(key), Stream: c.Events, Logger: log}
	if c.NATSURL != "" && b.deps.Vault != nil {
		get, err := natsCredentials(life, b.deps.Vault, log)
		if err != nil {
			return err
		}
		cfg.Credentials = get
	}
	bus, err := events.Connect(life, cfg)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, bus.Close)
	b.deps.Bus = bus
	if b.deps.DB == nil {
		return nil
	}
	if err := events.Migrate(life, b.deps.DB); err != nil {
		return err
	}
	outbox := events.NewOutbox(b.deps.DB)
	b.deps.Outbox = outbox
	if err := outbox.ObserveLag(b.deps.Telemetry.MeterProvider); err != nil {
		return err
	}
	relay := events.NewRelay(outbox, bus, events.RelayConfig{Retention: c.OutboxRetention, Logger: log})
	b.tasks = append(b.tasks, relay.Run)
	return nil
}

// natsCredentials reads the NATS credentials from Vault (bankbridge/nats)
// once, to check them, and returns how the bus reads them at each
// connection; nil, with a warning, when Vault holds none.
func natsCredentials(ctx context.Context, p *credentials.Provider, log *slog.Logger) (func(context.Context) (events.Credentials, error), error) {
	if _, err := p.NATS(ctx); err != nil {
		if errors.Is(err, credentials.ErrNotFound) {
			log.Warn("no NATS credentials in Vault at bankbridge/" + credentials.NATSPath + "; connecting to NATS without")
			return nil, nil
		}
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	return func(ctx context.Context) (events.Credentials, error) {
		s, err := p.NATS(ctx)
		if err != nil {
			return events.Credentials{}, err
		}
		return events.Credentials{Creds: s.Data["creds"], Token: s.Data["token"], User: s.Data["user"], Password: s.Data["password"]}, nil
	}, nil
}
