package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/protocol"
)

// CredentialSource gives the current credential of a bank, a key/value map
// such as {"api_key": "..."}. bankbridge's services implement it with their
// Vault provider, which caches and rotates; the registry asks on every call,
// so a rotated credential is used on the next call without reconnecting.
type CredentialSource interface {
	// BankCredential returns the credential stored for bank (at
	// bank.VaultPath). Its error text is never shown to callers.
	BankCredential(ctx context.Context, bank Bank) (map[string]string, error)
}

// Option configures [NewRegistry].
type Option func(*registryOptions)

type registryOptions struct {
	credentials CredentialSource
	log         *slog.Logger
	inProcess   map[string]adapters.Adapter
	dialOptions []grpc.DialOption
	// clientCert is the calling service's own certificate
	// (WithClientCertificate).
	clientCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// meterProvider gets the registry's metrics (WithMeterProvider).
	meterProvider metric.MeterProvider
	errs          []error
}

// WithCredentials sets where the credentials of remote banks come from.
// Required when a remote bank is configured.
func WithCredentials(c CredentialSource) Option {
	return func(o *registryOptions) { o.credentials = c }
}

// WithInProcess gives the registry a Go adapter that banks of kind
// inprocess name in their in_process field. It is served through
// [adapters.NewServer] over an in-memory connection, so it sees exactly what a
// remote adapter sees, minus the credentials: an in-process adapter gets
// its configuration from its constructor.
func WithInProcess(name string, a adapters.Adapter) Option {
	return func(o *registryOptions) {
		switch {
		case a == nil:
			o.errs = append(o.errs, fmt.Errorf("in-process adapter %q: nil", name))
		case o.inProcess[name] != nil:
			o.errs = append(o.errs, fmt.Errorf("in-process adapter %q: given twice", name))
		default:
			o.inProcess[name] = a
		}
	}
}

// WithRegistryLogger sets where the registry tells operators what callers
// are not told, such as a bank rejecting bankbridge's credentials. Default
// slog.Default().
func WithRegistryLogger(l *slog.Logger) Option {
	return func(o *registryOptions) {
		if l != nil {
			o.log = l
		}
	}
}

// WithDialOptions adds gRPC dial options to every bank's connection, e.g.
// an OpenTelemetry stats handler. Interceptors given here run outside the
// registry's own, so they see the mapped errors and not the credentials.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *registryOptions) { o.dialOptions = append(o.dialOptions, opts...) }
}

// Registry holds one client per configured bank. Callers name a bank by id;
// where it is comes only from the configuration. It is safe for concurrent
// use.
type Registry struct {
	banks     []Bank
	byID      map[string]*bankClient
	gauges    metric.Registration // breaker state and calls in flight
	closeOnce sync.Once
	closeErr  error
}

// infoCheckTimeout bounds the start-up check of an in-process adapter's
// Info, which must not call the bank.
const infoCheckTimeout = 5 * time.Second

// NewRegistry validates banks (as ParseConfig does, plus: in-process
// adapters that were not given, remote banks without WithCredentials, an
// in-process adapter whose Info is invalid or names another bank) and
// prepares a client for each. Connections are made on first use.
func NewRegistry(banks []Bank, opts ...Option) (*Registry, error) {
	o := registryOptions{inProcess: map[string]adapters.Adapter{}, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	validator, err := protocol.NewValidator()
	if err != nil {
		return nil, err
	}
	leaks, err := newLeakCounter(o.meterProvider)
	if err != nil {
		return nil, err
	}
	calls, err := newCallMetrics(o.meterProvider)
	if err != nil {
		return nil, err
	}
	errs := o.errs
	prepared := make([]Bank, 0, len(banks))
	for i, b := range banks {
		b = b.withDefaults()
		err := b.validate()
		if err == nil {
			err = o.check(b, validator)
		}
		if err != nil {
			errs = append(errs, bankError(i, b.ID, err))
		}
		prepared = append(prepared, b)
	}
	errs = append(errs, duplicateIDs(prepared)...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bank registry: %w", err)
	}

	r := &Registry{banks: prepared, byID: make(map[string]*bankClient, len(prepared))}
	for i, b := range prepared {
		bc, err := newBankClient(b, &o, validator, leaks, calls)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("bank registry: %w", bankError(i, b.ID, err))
		}
		r.byID[b.ID] = bc
	}
	if r.gauges, err = r.observe(o.meterProvider); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("bank registry: %w", err)
	}
	return r, nil
}

// Gauges on-call reads per bank (label bank_id, as the call metrics').
const (
	breakerStateGauge = "bankbridge.adapter.breaker_state"
	inFlightGauge     = "bankbridge.adapter.inflight"
)

// observe registers the gauges of every bank's breaker state (0 closed, 1
// half-open, 2 open) and calls in flight, read when the meter collects.
func (r *Registry) observe(mp metric.MeterProvider) (metric.Registration, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	state, err := m.Int64ObservableGauge(breakerStateGauge, metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state of each bank: 0 closed, 1 half-open (one trial call), 2 open (calls refused)"))
	if err != nil {
		return nil, fmt.Errorf("breaker state gauge: %w", err)
	}
	inFlight, err := m.Int64ObservableGauge(inFlightGauge, metric.WithUnit("{call}"),
		metric.WithDescription("Unary calls in flight to each bank, at most its max_in_flight"))
	if err != nil {
		return nil, fmt.Errorf("in-flight gauge: %w", err)
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for id, bc := range r.byID {
			attrs := metric.WithAttributes(attribute.String(labelBankID, id))
			o.ObserveInt64(state, breakerStateValue(bc.breaker.State()), attrs)
			o.ObserveInt64(inFlight, int64(len(bc.slots)), attrs)
		}
		return nil
	}, state, inFlight)
}

func breakerStateValue(s gobreaker.State) int64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// check is what NewRegistry adds to a bank's own validation: what the
// options must provide for it.
func (o *registryOptions) check(b Bank, v protovalidate.Validator) error {
	switch b.Kind {
	case KindRemote:
		if o.credentials == nil {
			return errors.New("kind remote: no CredentialSource given (WithCredentials)")
		}
		if b.TLS != nil && b.TLS.ClientCertFromService && o.clientCert == nil {
			return errors.New("tls.client_cert_from_service: this process has no certificate of its own (WithClientCertificate; not with --plaintext)")
		}
		return nil
	case KindInProcess:
		a := o.inProcess[b.InProcess]
		if a == nil {
			return fmt.Errorf("in_process: no adapter %q given (WithInProcess)", b.InProcess)
		}
		ctx, cancel := context.WithTimeout(context.Background(), infoCheckTimeout)
		defer cancel()
		info, err := a.Info(ctx)
		if err != nil {
			return fmt.Errorf("in_process: adapter %q: info: %w", b.InProcess, err)
		}
		if err := v.Validate(info); err != nil {
			return fmt.Errorf("in_process: adapter %q: info breaks the protocol at %s", b.InProcess, protocol.DescribeViolations(err))
		}
		if err := protocol.CheckCapabilities(info, adapters.Capabilities(a)); err != nil {
			return fmt.Errorf("in_process: adapter %q: %w", b.InProcess, err)
		}
		if info.GetBankId() != b.ID {
			return fmt.Errorf("in_process: adapter %q serves bank %q, not %q", b.InProcess, info.GetBankId(), b.ID)
		}
	}
	return nil
}

// Bank returns the configuration of the bank with id, defaults applied.
func (r *Registry) Bank(id string) (Bank, bool) {
	bc, ok := r.byID[id]
	if !ok {
		return Bank{}, false
	}
	return bc.bank.clone(), true
}

// Banks returns every configured bank, in configuration order.
func (r *Registry) Banks() []Bank {
	out := make([]Bank, len(r.banks))
	for i, b := range r.banks {
		out[i] = b.clone()
	}
	return out
}

// Client returns the adapter of the bank with id as a gRPC client, remote
// or in-process alike, behind the bank's resilience layer. An unknown id
// fails with NOT_FOUND (BANK_NOT_FOUND).
func (r *Registry) Client(id string) (adapterv1.BankAdapterServiceClient, error) {
	bc, ok := r.byID[id]
	if !ok {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank with this id is configured")
	}
	return bc.client, nil
}

// Close closes every connection and stops the in-process adapters' servers.
// Calls made after Close fail with UNAVAILABLE (BANK_UNAVAILABLE).
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.gauges != nil {
			errs = append(errs, r.gauges.Unregister())
		}
		for _, bc := range r.byID {
			bc.stop()
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

func (b Bank) clone() Bank {
	if b.TLS != nil {
		t := *b.TLS
		b.TLS = &t
	}
	return b
}

// bankClient is one bank's connection and resilience state.
type bankClient struct {
	bank      Bank
	creds     CredentialSource // nil for in-process banks: they get none
	log       *slog.Logger
	validator protovalidate.Validator
	leaks     metric.Int64Counter // responses refused for an unmasked number (leak.go)
	metrics   callMetrics         // every call, by outcome (observe.go)
	stats     bankStats           // what /banks shows (observe.go)
	limiter   *rate.Limiter
	// slots is the bulkhead: one token per call in flight, MaxInFlight
	// at most.
	slots    chan struct{}
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]
	openedAt atomic.Int64 // unix nanoseconds of the last time the breaker opened
	tlsCert  certCache
	ownCert  func(*tls.CertificateRequestInfo) (*tls.Certificate, error) // tls.client_cert_from_service

	client adapterv1.BankAdapterServiceClient
	stop   func() // closes the connection (and an in-process adapter's server)
}

// breakerBuckets is how many buckets the breaker's window rolls in.
const breakerBuckets = 10

// readyToTrip opens the breaker on the share of failed calls in the
// window, once enough calls ended in it to judge: counting failures in a
// row instead opens on a bank failing half its calls within a few calls,
// and cuts every caller off a bank that answers most of them.
func (br Breaker) readyToTrip(c gobreaker.Counts) bool {
	ended := c.TotalSuccesses + c.TotalFailures // calls in flight, and excluded ones, say nothing yet
	return ended >= br.MinRequests && float64(c.TotalFailures) > br.FailureRatio*float64(ended)
}

func newBankClient(b Bank, o *registryOptions, v protovalidate.Validator, leaks metric.Int64Counter, calls callMetrics) (*bankClient, error) {
	bc := &bankClient{
		bank:      b,
		log:       o.log,
		validator: v,
		leaks:     leaks,
		metrics:   calls,
		limiter:   rate.NewLimiter(rate.Limit(b.RateLimit.PerSecond), b.RateLimit.Burst),
		slots:     make(chan struct{}, b.MaxInFlight),
	}
	bc.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:    b.ID,
		Timeout: b.Breaker.OpenFor,
		// A rolling window of ten buckets: old calls leave it a tenth at a
		// time, rather than all at once at the end of a fixed interval.
		Interval:     b.Breaker.Window,
		BucketPeriod: b.Breaker.Window / breakerBuckets,
		ReadyToTrip:  b.Breaker.readyToTrip,
		IsExcluded:   func(err error) bool { return errors.Is(err, errNotCounted) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				bc.openedAt.Store(time.Now().UnixNano())
			}
		},
	})

	var target string
	var dialOpts []grpc.DialOption
	switch b.Kind {
	case KindRemote:
		bc.creds = o.credentials
		bc.ownCert = o.clientCert
		tc, err := bc.transportCredentials()
		if err != nil {
			return nil, err
		}
		target = b.Endpoint
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(tc),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{
				Time: b.Keepalive.Time, Timeout: b.Keepalive.Timeout,
				// Idle connections too: a connection dropped while idle is
				// then found before a caller's call waits on it.
				PermitWithoutStream: true,
			}))
	}
	dialOpts = append(dialOpts, o.dialOptions...)
	dialOpts = append(dialOpts,
		// observe outermost of the registry's layers: it sees every call
		// as the caller does, the breaker's refusals included.
		grpc.WithChainUnaryInterceptor(bc.observeUnary, bc.unaryInterceptor),
		grpc.WithChainStreamInterceptor(bc.observeStream, bc.streamInterceptor),
	)
	if b.Kind == KindInProcess {
		// Served through the SDK's server wrapper over the SDK's in-memory
		// connection: exactly what a remote adapter sees, minus the network
		// and the credentials.
		srv := adapters.NewServer(o.inProcess[b.InProcess], adapters.WithQuietLogs())
		bc.client, bc.stop = adapters.NewInMemoryClient(srv, dialOpts...)
		return bc, nil
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	bc.client = adapterv1.NewBankAdapterServiceClient(conn)
	bc.stop = func() { _ = conn.Close() }
	return bc, nil
}
