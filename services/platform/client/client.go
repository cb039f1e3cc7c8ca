// Package client dials other bankbridge services and bank adapters the one
// way: OpenTelemetry on every call, a deadline on every call, retries only
// for reads that are safe to repeat, and keepalive that fits the server
// kit's enforcement policy.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Options shape one connection.
type Options struct {
	// DefaultTimeout bounds a call whose context has no deadline; default 5s.
	DefaultTimeout time.Duration
	// RetryMethods are the full method names ("/pkg.Service/Method") that are
	// safe to retry: reads. Every other method is never retried.
	RetryMethods []string
	// MaxAttempts for a retried call, including the first; default 3, max 5.
	MaxAttempts int
	// TransportCredentials secure the connection: bankbridge's binaries
	// pass bootstrap.Deps.TransportCredentials, mutual TLS with their
	// certificate from Vault's PKI engine (platform/certs), whose TLS
	// sessions are resumed when the connection is made again. Nil is
	// plaintext: for --plaintext in dev mode, and tests.
	TransportCredentials credentials.TransportCredentials
	// PerRPCCredentials, e.g. an adapter's API key.
	PerRPCCredentials credentials.PerRPCCredentials
	// ConnectTimeout bounds one attempt to connect (TCP, TLS, HTTP/2
	// handshake); default DefaultConnectTimeout. Once an attempt has failed,
	// calls that do not wait for ready (the default) fail at once with
	// UNAVAILABLE until a connection is up, instead of each waiting out its
	// deadline against an address that never answers.
	ConnectTimeout time.Duration
	// Extra dial options, appended last.
	Extra []grpc.DialOption
}

// DefaultConnectTimeout is Options.ConnectTimeout's default: far above a
// handshake on a working network, far below gRPC's own 20s.
const DefaultConnectTimeout = 2 * time.Second

// reconnectBackoff spaces attempts to reconnect: gRPC's default but for the
// longest wait, 5s instead of 120s, so a dependency that comes back (a
// restarted consent service) is used again within seconds.
var reconnectBackoff = backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}

// Keepalive pings every 30s: above the server kit's 10s minimum.
var keepaliveParams = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// serviceConfig is gRPC's JSON service config: retry UNAVAILABLE only, with
// backoff, for the listed methods; retry throttling stops retries when more
// than half of recent calls fail, so a struggling backend is not hammered.
type serviceConfig struct {
	MethodConfig    []methodConfig   `json:"methodConfig,omitempty"`
	RetryThrottling *retryThrottling `json:"retryThrottling,omitempty"`
}

type methodConfig struct {
	Name        []methodName `json:"name"`
	RetryPolicy retryPolicy  `json:"retryPolicy"`
}

type methodName struct {
	Service string `json:"service"`
	Method  string `json:"method"`
}

type retryPolicy struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

type retryThrottling struct {
	MaxTokens  int     `json:"maxTokens"`
	TokenRatio float64 `json:"tokenRatio"`
}

func buildServiceConfig(methods []string, attempts int) (string, error) {
	sc := serviceConfig{RetryThrottling: &retryThrottling{MaxTokens: 10, TokenRatio: 0.1}}
	if len(methods) > 0 {
		mc := methodConfig{RetryPolicy: retryPolicy{
			MaxAttempts:          attempts,
			InitialBackoff:       "0.1s",
			MaxBackoff:           "1s",
			BackoffMultiplier:    2,
			RetryableStatusCodes: []string{"UNAVAILABLE"},
		}}
		for _, full := range methods {
			rest, ok := strings.CutPrefix(full, "/")
			i := strings.LastIndex(rest, "/")
			if !ok || i <= 0 || i == len(rest)-1 {
				return "", fmt.Errorf("retry method %q: want /package.Service/Method", full)
			}
			mc.Name = append(mc.Name, methodName{Service: rest[:i], Method: rest[i+1:]})
		}
		sc.MethodConfig = []methodConfig{mc}
	}
	b, err := json.Marshal(sc)
	return string(b), err
}

// Dial returns a client connection to target with the kit's defaults. Make
// one per target and share it: calls multiplex over its HTTP/2
// connection, so they pay no TCP or TLS handshake.
func Dial(target string, t *telemetry.Telemetry, o Options) (*grpc.ClientConn, error) {
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxAttempts > 5 {
		return nil, fmt.Errorf("dial %s: MaxAttempts %d is above gRPC's limit of 5", target, o.MaxAttempts)
	}
	if o.TransportCredentials == nil {
		o.TransportCredentials = insecure.NewCredentials()
	}
	sc, err := buildServiceConfig(o.RetryMethods, o.MaxAttempts)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(o.TransportCredentials),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(t.TracerProvider),
			otelgrpc.WithMeterProvider(t.MeterProvider),
			otelgrpc.WithPropagators(t.Propagator),
		)),
		grpc.WithChainUnaryInterceptor(defaultDeadlineUnary(o.DefaultTimeout)),
		grpc.WithDefaultServiceConfig(sc),
		grpc.WithKeepaliveParams(keepaliveParams),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: o.ConnectTimeout}),
	}
	if o.PerRPCCredentials != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(o.PerRPCCredentials))
	}
	opts = append(opts, o.Extra...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

// defaultDeadlineUnary gives a call without a deadline the default one, so no
// outbound call can hang forever. Streams are long-lived by design and keep
// the caller's context.
func defaultDeadlineUnary(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
