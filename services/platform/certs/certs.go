// Package certs is a bankbridge process's TLS identity: a certificate for
// its name, issued by Vault's PKI secrets engine (<mount>/issue/<role>,
// with the Vault login of platform/credentials), short-lived (an hour by
// default), renewed in the background at about two thirds of its life and
// handed to every new handshake without a restart; and the trust in the
// CA that issued it, which signs every other bankbridge process's
// certificate too.
//
// Servers take ServerTLS: tls.VerifyClientCertIfGiven on listeners that
// callers without a certificate also reach (product teams, probes), and
// tls.RequireAndVerifyClientCert where only bankbridge calls. Clients take
// ClientTLS, which presents the process's certificate (mutual TLS) and
// checks that the server's names the service it meant to reach. A
// certificate's identity is its subject common name: the process's name
// (consent, balance, gateway, sandbox, ...).
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

// Defaults applied by New to the zero fields of a Config.
const (
	// DefaultMount is where the PKI secrets engine is mounted.
	DefaultMount = "pki"
	// DefaultTTL is a certificate's requested lifetime.
	DefaultTTL = time.Hour
)

const (
	// renewAt is the share of a certificate's life after which it is
	// replaced: early enough that a Vault outage of a third of the life
	// (20 minutes for an hour) costs nothing.
	renewNum, renewDen = 2, 3
	// Failed renewals are retried between these bounds, doubling.
	minRetry = time.Second
	maxRetry = 30 * time.Second
	// sessionCacheSize bounds the TLS sessions a client keeps for
	// resumption: one per server it talks to is enough.
	sessionCacheSize = 256

	attrExpiresIn = "bankbridge.tls_expires_in"
	attrRetryIn   = "bankbridge.retry_in"
	attrName      = "bankbridge.tls_name"
)

// Issuer issues certificates from Vault's PKI secrets engine;
// *credentials.Provider is one, logged in and kept alive.
type Issuer interface {
	IssueCertificate(ctx context.Context, mount, role string, data map[string]any) (credentials.IssuedCertificate, error)
}

// Config says which certificate to ask for.
type Config struct {
	// Name is the process's name (balance, gateway, ...): the
	// certificate's common name and its identity. Required.
	Name string
	// Role is the PKI role it is issued under; default Name.
	Role string
	// Mount is where the PKI engine is mounted; default "pki".
	Mount string
	// TTL is the certificate's requested lifetime; default one hour. It is
	// renewed at about two thirds of it.
	TTL time.Duration
	// Hosts are the DNS names and IP addresses it must be valid for
	// besides Name, localhost and 127.0.0.1 (always included): the hosts
	// the process listens on and the names it is reached by, such as its
	// DNS name in a cluster.
	Hosts []string
	// CAFile is a PEM file of CAs trusted besides the issuing CA, e.g.
	// the next CA while the PKI's root is rotated; optional.
	CAFile string
}

// withDefaults returns c with its defaults applied.
func (c Config) withDefaults() Config {
	if c.Role == "" {
		c.Role = c.Name
	}
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	return c
}

// sans splits the names the certificate is for into DNS names and IP
// addresses, Name first, without duplicates.
func (c Config) sans() (dns, ips []string) {
	for _, h := range append([]string{c.Name, "localhost", "127.0.0.1"}, c.Hosts...) {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() && !slices.Contains(ips, ip.String()) {
				ips = append(ips, ip.String())
			}
			continue
		}
		if h != "" && !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// Option customizes a Source.
type Option func(*options)

type options struct {
	log           *slog.Logger
	meterProvider metric.MeterProvider
}

// WithLogger sets where renewals and their failures are logged; default
// slog.Default(). Lines name the certificate's name and expiry, never the
// key.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMeterProvider sets where the gauge bankbridge.tls.certificate.expiry
// (seconds until the served certificate expires) is reported; default
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// Source holds a process's current certificate and renews it until Close.
// It is safe for concurrent use.
type Source struct {
	cfg      Config
	issuer   Issuer
	log      *slog.Logger
	pool     *x509.CertPool
	caPEM    []string // what pool holds
	sessions tls.ClientSessionCache
	current  atomic.Pointer[issued]
	gauge    metric.Registration

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// issued is one certificate and when to replace it.
type issued struct {
	cert    *tls.Certificate
	renewAt time.Time
}

// New issues the first certificate, so a process that cannot get one
// fails at start, and renews it in the background until ctx ends or Close
// is called.
func New(ctx context.Context, issuer Issuer, cfg Config, opts ...Option) (*Source, error) {
	if cfg.Name == "" {
		return nil, errors.New("certs: Config.Name is required")
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("certs: TTL %s is negative", cfg.TTL)
	}
	cfg = cfg.withDefaults()
	o := options{log: slog.Default(), meterProvider: otel.GetMeterProvider()}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Source{
		cfg: cfg, issuer: issuer, log: o.log.With(slog.String(attrName, cfg.Name)),
		sessions: tls.NewLRUClientSessionCache(sessionCacheSize), done: make(chan struct{}),
	}
	first, ca, err := s.issue(ctx)
	if err != nil {
		return nil, err
	}
	if s.caPEM, err = trustedPEM(ca, cfg.CAFile); err != nil {
		return nil, err
	}
	if s.pool, err = poolOf(x509.NewCertPool(), s.caPEM); err != nil {
		return nil, err
	}
	s.current.Store(first)
	if s.gauge, err = s.observeExpiry(o.meterProvider); err != nil {
		return nil, err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go s.renew(ctx)
	return s, nil
}

// Close stops the renewal and waits for it. Close is idempotent; the last
// certificate is still served after it.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		err = s.gauge.Unregister()
	})
	return err
}

// issue asks Vault for a certificate and returns it with the PEM of the
// CAs Vault named as its issuers.
func (s *Source) issue(ctx context.Context) (*issued, []string, error) {
	dns, ips := s.cfg.sans()
	c, err := s.issuer.IssueCertificate(ctx, s.cfg.Mount, s.cfg.Role, map[string]any{
		"common_name": s.cfg.Name,
		"alt_names":   strings.Join(dns, ","),
		"ip_sans":     strings.Join(ips, ","),
		"ttl":         strconv.Itoa(int(s.cfg.TTL/time.Second)) + "s",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate for %s from Vault %s/issue/%s: %w", s.cfg.Name, s.cfg.Mount, s.cfg.Role, err)
	}
	cas := c.CAChain
	if len(cas) == 0 {
		cas = []string{c.IssuingCA}
	}
	chain := c.Certificate
	for _, ca := range cas {
		if !selfSigned(ca) { // intermediates travel with the leaf; roots are the peer's to know
			chain += "\n" + ca
		}
	}
	pair, err := tls.X509KeyPair([]byte(chain), []byte(c.PrivateKey))
	if err != nil {
		// X509KeyPair describes the PEM structure, never the key.
		return nil, nil, fmt.Errorf("TLS certificate for %s from Vault: %w", s.cfg.Name, err)
	}
	now := time.Now()
	life := pair.Leaf.NotAfter.Sub(now)
	if life <= 0 {
		return nil, nil, fmt.Errorf("TLS certificate for %s from Vault: expired on issue (%s)", s.cfg.Name, pair.Leaf.NotAfter.Format(time.RFC3339))
	}
	// Counted from now rather than NotBefore, which Vault backdates
	// (not_before_duration) to absorb clock skew.
	return &issued{cert: &pair, renewAt: now.Add(life * renewNum / renewDen)}, append(cas, c.IssuingCA), nil
}

// renew replaces the certificate at its renewal time, retrying with
// backoff while Vault fails; the current one is served meanwhile.
func (s *Source) renew(ctx context.Context) {
	defer close(s.done)
	for {
		cur := s.current.Load()
		if !sleep(ctx, time.Until(cur.renewAt)) {
			return
		}
		for delay := minRetry; ; delay = min(2*delay, maxRetry) {
			next, _, err := s.issue(ctx)
			if err == nil {
				s.current.Store(next)
				s.log.Info("TLS certificate renewed", slog.Duration(attrExpiresIn, time.Until(next.cert.Leaf.NotAfter).Round(time.Second)))
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("TLS certificate renewal failed; serving the current one and retrying",
				slog.Any("error", err), slog.Duration(attrRetryIn, delay),
				slog.Duration(attrExpiresIn, time.Until(cur.cert.Leaf.NotAfter).Round(time.Second)))
			if !sleep(ctx, delay) {
				return
			}
		}
	}
}

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Source) observeExpiry(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter("bankbridge/certs")
	g, err := m.Float64ObservableGauge("bankbridge.tls.certificate.expiry", metric.WithUnit("s"),
		metric.WithDescription("Seconds until the TLS certificate this process serves expires; it is renewed at two thirds of its life, so a value below a third of it means renewals fail."))
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(g, time.Until(s.current.Load().cert.Leaf.NotAfter).Seconds())
		return nil
	}, g)
}

// Certificate returns the certificate currently served.
func (s *Source) Certificate() *tls.Certificate { return s.current.Load().cert }

// Pool returns the CAs a peer's certificate must chain to.
func (s *Source) Pool() *x509.CertPool { return s.pool }

// SystemPool returns the system's roots and the CAs of Pool: for a server
// that may have a public certificate or one of bankbridge's, such as the
// identity provider (bankbridge's gateway in dev mode).
func (s *Source) SystemPool() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, fmt.Errorf("certs: system roots: %w", err)
	}
	return poolOf(pool, s.caPEM)
}

// ServerTLS is a listener's TLS config: the current certificate at every
// handshake, and client certificates checked against the CA as auth says
// (tls.VerifyClientCertIfGiven where callers without one are welcome,
// tls.RequireAndVerifyClientCert where only bankbridge calls).
func (s *Source) ServerTLS(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.Certificate(), nil
		},
		ClientAuth: auth,
		ClientCAs:  s.pool,
	}
}

// ClientTLS is a client's TLS config for reaching peer, the bankbridge
// process whose name its certificate must bear (as well as the host
// dialled, which the usual hostname check covers); "" accepts any
// certificate of the CA valid for the host. The client presents the
// current certificate when asked, and resumes TLS sessions, so a
// reconnection skips the full handshake.
func (s *Source) ClientTLS(peer string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    s.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.Certificate(), nil
		},
		ClientSessionCache: s.sessions,
	}
	if peer != "" {
		// Runs after the chain and hostname checks, on resumed
		// connections too.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if name := cs.PeerCertificates[0].Subject.CommonName; name != peer {
				return fmt.Errorf("certs: the server's certificate names %q, not %q", name, peer)
			}
			return nil
		}
	}
	return cfg
}

// trustedPEM is the issuing CAs' PEM and caFile's.
func trustedPEM(cas []string, caFile string) ([]string, error) {
	if caFile == "" {
		return cas, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("certs: CA file: %w", err)
	}
	return append(slices.Clone(cas), string(pem)), nil
}

// poolOf adds the PEM certificates to pool.
func poolOf(pool *x509.CertPool, pems []string) (*x509.CertPool, error) {
	for _, p := range pems {
		if !pool.AppendCertsFromPEM([]byte(p)) {
			return nil, errors.New("certs: a trusted CA (Vault's issuing CA, or the CA file) is not a PEM certificate")
		}
	}
	return pool, nil
}

// selfSigned reports whether the PEM certificate is a root: one that
// signs itself. Anything unreadable counts as a root, so it is not sent.
func selfSigned(pemCert string) bool {
	block, _ := pem.Decode([]byte(pemCert))
	if block == nil {
		return true
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return true
	}
	return c.CheckSignatureFrom(c) == nil
}
