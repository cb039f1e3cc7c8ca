// Package bootstrap wires what every bankbridge data service starts with,
// so a service's main is config plus its own handlers: telemetry, the token
// verifier, the Vault credentials provider, the bank adapter registry, the
// consent check and audit hook, and the server kit.
package bootstrap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Config is the server kit's config plus the dependencies a data service
// reaches: Vault, the banks, the consent service, and the identity
// provider's token endpoint for service-to-service calls.
type Config struct {
	Server server.Config
	Vault  credentials.Config

	// BanksFile is banks.yaml; empty means the service talks to no bank.
	BanksFile string
	// ConsentAddr is the consent service; empty means no consent check
	// (only the consent service itself runs so).
	ConsentAddr string
	// ConsentCacheTTL is how long allowed consent decisions are reused
	// while the change stream is up; 0 asks every time.
	ConsentCacheTTL time.Duration

	// Service credentials (OAuth 2.0 client credentials) for internal calls.
	TokenURL     string
	ClientID     string
	ClientSecret credentials.Sensitive
}

// Defaults returns the config a service starts from.
func Defaults(name, grpcAddr, adminAddr string) Config {
	return Config{
		Server:          server.Defaults(name, grpcAddr, adminAddr),
		Vault:           credentials.Config{Auth: credentials.AuthConfig{Method: credentials.AuthToken}},
		ConsentCacheTTL: 2 * time.Second,
		ClientID:        name,
	}
}

// RegisterFlags binds every field to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Server.RegisterFlags(fs)
	c.Vault.RegisterFlags(fs)
	fs.StringVar(&c.BanksFile, "banks", c.BanksFile, "banks.yaml: the banks and how to reach their adapters")
	fs.StringVar(&c.ConsentAddr, "consent-addr", c.ConsentAddr, "consent service gRPC address")
	fs.DurationVar(&c.ConsentCacheTTL, "consent-cache-ttl", c.ConsentCacheTTL, "reuse allowed consent decisions this long while the change stream is up (0: never)")
	fs.StringVar(&c.TokenURL, "token-url", c.TokenURL, "identity provider token endpoint for this service's client credentials")
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "this service's client id at the identity provider")
	fs.Func("client-secret", "this service's client secret", func(s string) error {
		c.ClientSecret = credentials.Sensitive(s)
		return nil
	})
}

// Parse fills c from args and BANKBRIDGE_* environment variables.
func (c *Config) Parse(args []string) error {
	fs := flag.NewFlagSet(c.Server.Name, flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("BANKBRIDGE")); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Server.Validate(); err != nil {
		return err
	}
	if c.ConsentAddr != "" && c.TokenURL == "" {
		return errors.New("config: --token-url (BANKBRIDGE_TOKEN_URL) is required to call the consent service")
	}
	return nil
}

// Runtime is what Start wired. Fields are nil when not configured.
type Runtime struct {
	Config    Config
	Telemetry *telemetry.Telemetry
	Verifier  *auth.Verifier
	Vault     *credentials.Provider
	Banks     *adapters.Registry
	Consent   *consentcheck.Checker

	consentConn *grpc.ClientConn
	closers     []func()
}

// Start builds the runtime.
func Start(ctx context.Context, cfg Config) (rt *Runtime, err error) {
	rt = &Runtime{Config: cfg}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	if rt.Telemetry, err = telemetry.Setup(ctx, telemetry.Config{
		ServiceName: cfg.Server.Name, ServiceVersion: cfg.Server.Version, LogLevel: cfg.Server.LogLevel,
	}); err != nil {
		return rt, err
	}
	rt.closers = append(rt.closers, func() { _ = rt.Telemetry.Shutdown(context.WithoutCancel(ctx)) })

	if rt.Verifier, err = auth.NewVerifier(ctx, auth.Config{
		Issuer: cfg.Server.Issuer, Audience: cfg.Server.Audience, JWKSURL: cfg.Server.JWKSURL,
	}); err != nil {
		return rt, err
	}
	rt.closers = append(rt.closers, func() { _ = rt.Verifier.Close(context.WithoutCancel(ctx)) })

	if cfg.Vault.Address != "" {
		if rt.Vault, err = credentials.New(ctx, cfg.Vault,
			credentials.WithLogger(rt.Telemetry.Logger),
			credentials.WithMeterProvider(rt.Telemetry.MeterProvider),
		); err != nil {
			return rt, fmt.Errorf("vault: %w", err)
		}
		rt.closers = append(rt.closers, func() { _ = rt.Vault.Close() })
	}

	if cfg.BanksFile != "" {
		banks, err := adapters.LoadConfig(cfg.BanksFile)
		if err != nil {
			return rt, err
		}
		opts := []adapters.Option{adapters.WithDialOptions(grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(rt.Telemetry.TracerProvider),
			otelgrpc.WithMeterProvider(rt.Telemetry.MeterProvider),
			otelgrpc.WithPropagators(rt.Telemetry.Propagator),
		)))}
		if rt.Vault != nil {
			opts = append(opts, adapters.WithCredentials(VaultCredentials{Provider: rt.Vault}))
		}
		if rt.Banks, err = adapters.NewRegistry(banks, opts...); err != nil {
			return rt, err
		}
		rt.closers = append(rt.closers, func() { _ = rt.Banks.Close() })
	}

	if cfg.ConsentAddr != "" {
		token := client.NewServiceToken(ctx, cfg.TokenURL, cfg.ClientID, string(cfg.ClientSecret))
		if rt.consentConn, err = client.Dial(cfg.ConsentAddr, rt.Telemetry, client.Options{
			PerRPCCredentials: token,
			RetryMethods:      []string{consentv1.ConsentCheckService_CheckConsent_FullMethodName},
		}); err != nil {
			return rt, err
		}
		rt.closers = append(rt.closers, func() { _ = rt.consentConn.Close() })
		rt.Consent = consentcheck.New(consentv1.NewConsentCheckServiceClient(rt.consentConn), consentcheck.Options{
			CacheTTL: cfg.ConsentCacheTTL, Logger: rt.Telemetry.Logger,
		})
	}
	return rt, nil
}

// Serve runs the service's gRPC server through the kit until ctx ends, with
// the consent check and audit hook when a consent service is configured.
func (rt *Runtime) Serve(ctx context.Context, register func(grpc.ServiceRegistrar)) error {
	deps := server.Deps{Telemetry: rt.Telemetry, Verifier: rt.Verifier}
	if rt.Banks != nil {
		deps.Banks = configuredBanks{rt.Banks}
	}
	if rt.Consent != nil {
		deps.Consent, deps.Recorder = rt.Consent, rt.Consent
		if rt.Config.ConsentCacheTTL > 0 {
			go rt.Consent.Watch(ctx)
		}
	}
	srv, err := server.New(rt.Config.Server, deps, register)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// Close releases everything Start built, in reverse order.
func (rt *Runtime) Close() {
	for i := len(rt.closers) - 1; i >= 0; i-- {
		rt.closers[i]()
	}
}

// VaultCredentials serves adapter credentials from the Vault provider (KV v2
// bankbridge/<bank.VaultPath>, banks/<bank_id> by default), cached and
// rotated by the provider.
type VaultCredentials struct {
	Provider *credentials.Provider
}

// BankCredential returns the secret at the bank's VaultPath, which must be
// banks/<id> under the provider's mount. The error names the bank and the
// path, never a value.
func (v VaultCredentials) BankCredential(ctx context.Context, bank adapters.Bank) (map[string]string, error) {
	id, ok := strings.CutPrefix(bank.VaultPath, "banks/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("bank %s: vault path %q: the credentials provider reads banks/<id> only", bank.ID, bank.VaultPath)
	}
	s, err := v.Provider.Bank(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

// configuredBanks tells the server kit which banks the registry knows.
type configuredBanks struct{ r *adapters.Registry }

// HasBank reports whether bank id is configured.
func (b configuredBanks) HasBank(id string) bool {
	_, ok := b.r.Bank(id)
	return ok
}
