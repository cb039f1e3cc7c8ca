package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Log attribute keys; all pass the platform's telemetry allow-list.
const (
	attrVersion    = "bankbridge.secret_version"
	attrOldVersion = "bankbridge.secret_previous_version"
	attrAge        = "bankbridge.secret_age"
	attrStatus     = "http.response.status_code"
)

const (
	// refreshParallelism bounds the background re-reads in flight, so a
	// refresh of many banks neither queues behind one slow read nor floods
	// Vault.
	refreshParallelism = 8
	// maxFailedReadBackoff caps how long, after a failed read, a cached
	// secret is served without asking Vault again. Without it every call
	// during an outage would wait for Vault to fail.
	maxFailedReadBackoff = 10 * time.Second
)

// Provider serves bank and partner credentials from Vault through a cache.
// It is safe for concurrent use; Close releases it.
type Provider struct {
	cfg     Config
	client  *api.Client // reads and renewals; re-login swaps its token
	login   *api.Client // tokenless, so a login never presents a stale token
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	backoff time.Duration // after a failed read, see maxFailedReadBackoff

	ctx    context.Context // the provider's life: New's ctx, or until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reauth chan struct{} // a read was denied: check whether the token died
	logins atomic.Int64

	sf singleflight.Group

	mu      sync.Mutex
	closed  bool
	entries map[key]*entry
	reads   map[key]int64
}

// entry is the cached state of one secret.
type entry struct {
	secret   Secret    // its FetchedAt is the last successful read
	failedAt time.Time // last failed read since then; zero if none
	lastErr  error     // why that read failed
}

// New logs in to Vault and starts keeping the token alive and the cache
// fresh. ctx bounds the login and the provider's whole life: cancelling it
// stops the background work as Close does, so pass a long-lived context.
func New(ctx context.Context, cfg Config, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}

	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	login, err := client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	login.ClearToken()

	p := &Provider{
		cfg:     cfg,
		client:  client,
		login:   login,
		log:     o.logger,
		now:     o.now,
		backoff: min(cfg.RefreshInterval, maxFailedReadBackoff),
		reauth:  make(chan struct{}, 1),
		entries: make(map[key]*entry),
		reads:   make(map[key]int64),
	}
	if p.metrics, err = newMetrics(o.meterProvider, p.observeAges); err != nil {
		return nil, err
	}
	auth, err := p.logIn(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("log in to vault: %w", err), p.metrics.close())
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Go(func() { p.keepToken(auth) })
	p.wg.Go(p.refreshLoop)
	return p, nil
}

// newClient builds the Vault client. Address, timeout and retries come from
// cfg; TLS beyond CACert follows Vault's standard VAULT_* variables.
func newClient(cfg Config) (*api.Client, error) {
	vc := api.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client environment: %w", vc.Error)
	}
	vc.Address = cfg.Address
	vc.Timeout = cfg.RequestTimeout
	// The cache is the retry: a failed read is answered from the cache or
	// reported at once rather than made slower by retries in the client.
	vc.MaxRetries = 0
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault TLS: %w", err)
		}
	}
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// VAULT_TOKEN from the environment must not stand in for the configured
	// login.
	client.ClearToken()
	return client, nil
}

// Close stops token renewal and background refresh and waits for them and
// for reads in flight. Bank and Partner fail with ErrUnavailable after it.
// Close is idempotent.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return p.metrics.close()
}

// Bank returns the credentials of a bank, from <Mount>/banks/<bankID>.
// Errors match ErrNotFound or ErrUnavailable, or wrap ctx's error.
func (p *Provider) Bank(ctx context.Context, bankID string) (Secret, error) {
	return p.get(ctx, key{kind: kindBank, id: bankID})
}

// Partner returns the credentials of a partner, from
// <Mount>/partners/<partnerID>. Errors are as for Bank.
func (p *Provider) Partner(ctx context.Context, partnerID string) (Secret, error) {
	return p.get(ctx, key{kind: kindPartner, id: partnerID})
}

// Reads returns how many reads of a bank's secret were sent to Vault,
// failed ones included; tests assert on it that the cache works.
func (p *Provider) Reads(bankID string) int64 { return p.readCount(key{kind: kindBank, id: bankID}) }

// PartnerReads is Reads for a partner's secret.
func (p *Provider) PartnerReads(partnerID string) int64 {
	return p.readCount(key{kind: kindPartner, id: partnerID})
}

func (p *Provider) readCount(k key) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads[k]
}

// Logins returns how many times the provider logged in to Vault
// successfully, the first login included.
func (p *Provider) Logins() int64 { return p.logins.Load() }

func (p *Provider) get(ctx context.Context, k key) (Secret, error) {
	s, err := p.lookup(ctx, k)
	if err != nil {
		if ctx.Err() == nil {
			p.metrics.failure(ctx, k, err)
		}
		return Secret{}, fmt.Errorf("%s %q: %w", k.kind, k.id, err)
	}
	return s.clone(), nil
}

var errClosed = fmt.Errorf("provider closed: %w", ErrUnavailable)

// lookup answers from the cache when it can and otherwise joins the one read
// of k in flight, starting it if need be.
func (p *Provider) lookup(ctx context.Context, k key) (Secret, error) {
	if err := validID(k.id); err != nil {
		return Secret{}, err
	}
	p.mu.Lock()
	if p.closed || p.ctx.Err() != nil {
		p.mu.Unlock()
		return Secret{}, errClosed
	}
	if r, ok := p.cachedLocked(k); ok {
		p.mu.Unlock()
		return r.secret, r.err
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return Secret{}, err
	}
	// The read runs on its own goroutine, bound to the provider rather than
	// to ctx: other callers share it, and one caller giving up must not fail
	// them all. Adding to wg under mu keeps Close from waiting too early.
	done := make(chan result, 1)
	p.wg.Go(func() {
		v, err, _ := p.sf.Do(k.path(), func() (any, error) { return p.refresh(k, false) })
		done <- result{secret: v.(Secret), err: err}
	})
	p.mu.Unlock()
	select {
	case r := <-done:
		return r.secret, r.err
	case <-ctx.Done():
		return Secret{}, ctx.Err()
	}
}

// cachedLocked answers from the cache when no Vault read is due: the secret
// is younger than RefreshInterval, or a read of it failed moments ago. p.mu
// must be held.
func (p *Provider) cachedLocked(k key) (result, bool) {
	e := p.entries[k]
	if e == nil {
		return result{}, false
	}
	now := p.now()
	if now.Sub(e.secret.FetchedAt) < p.cfg.RefreshInterval {
		return result{secret: e.secret}, true
	}
	if !e.failedAt.IsZero() && now.Sub(e.failedAt) < p.backoff {
		s, err := p.staleLocked(e, now)
		return result{secret: s, err: err}, true
	}
	return result{}, false
}

type result struct {
	secret Secret
	err    error
}

// refresh reads k from Vault and updates the cache. When the read fails for
// want of Vault, it answers with the cached secret while that is younger
// than MaxStale. Callers run it under singleflight, so at most one read of a
// secret is in flight. Unless forced, it first checks the cache again: a
// caller that missed the cache may get here just after another read of k
// finished, and must not cause a second one.
func (p *Provider) refresh(k key, force bool) (Secret, error) {
	if !force {
		p.mu.Lock()
		r, ok := p.cachedLocked(k)
		p.mu.Unlock()
		if ok {
			return r.secret, r.err
		}
	}
	fresh, err := p.read(k)
	if err == nil {
		p.store(k, fresh)
		return fresh, nil
	}

	now := p.now()
	p.mu.Lock()
	e := p.entries[k]
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrPermissionDenied):
		// Vault has answered: the secret was deleted or is no longer ours.
		// Serving a cached copy would undo the deletion or the revocation.
		delete(p.entries, k)
		p.mu.Unlock()
		if errors.Is(err, ErrPermissionDenied) {
			p.checkToken()
		}
		return Secret{}, err
	case e == nil:
		p.mu.Unlock()
		return Secret{}, err
	}
	e.failedAt, e.lastErr = now, err
	s, staleErr := p.staleLocked(e, now)
	p.mu.Unlock()
	if staleErr == nil {
		p.log.Warn("credentials read failed; serving the cached version", append([]any{k.logAttr(),
			slog.Int(attrVersion, s.Version), slog.Duration(attrAge, now.Sub(s.FetchedAt))}, errorAttrs(err)...)...)
	}
	return s, staleErr
}

// staleLocked returns the cached secret of e while it is younger than
// MaxStale, and otherwise why it may not be served. p.mu must be held.
func (p *Provider) staleLocked(e *entry, now time.Time) (Secret, error) {
	if age := now.Sub(e.secret.FetchedAt); age >= p.cfg.MaxStale {
		return Secret{}, fmt.Errorf("cached version %d is %s old, past MaxStale %s: %w",
			e.secret.Version, age.Round(time.Second), p.cfg.MaxStale, e.lastErr)
	}
	return e.secret, nil
}

// store caches a freshly read secret and logs when its version changed.
func (p *Provider) store(k key, s Secret) {
	p.mu.Lock()
	old := p.entries[k]
	p.entries[k] = &entry{secret: s}
	p.mu.Unlock()

	if old == nil || old.secret.Version == s.Version {
		return
	}
	p.log.Info("credentials rotated", k.logAttr(),
		slog.Int(attrOldVersion, old.secret.Version), slog.Int(attrVersion, s.Version))
}

// read fetches the current version of k from Vault.
func (p *Provider) read(k key) (Secret, error) {
	p.mu.Lock()
	p.reads[k]++
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	defer cancel()
	s, err := p.readVault(ctx, k)
	p.metrics.read(ctx, k, err)
	if err != nil {
		return Secret{}, fmt.Errorf("read %s/%s: %w", p.cfg.Mount, k.path(), err)
	}
	return s, nil
}

func (p *Provider) readVault(ctx context.Context, k key) (Secret, error) {
	return p.readPath(ctx, k.id, k.path())
}

// readPath reads the current version of the secret at <Mount>/<path>, for
// id.
func (p *Provider) readPath(ctx context.Context, id, path string) (Secret, error) {
	raw, err := p.client.Logical().ReadWithContext(ctx, p.cfg.Mount+"/data/"+path)
	if err != nil {
		return Secret{}, vaultError(err)
	}
	// Vault answers 404 without a body for a path never written, and with
	// the metadata but null data for a deleted or destroyed version.
	if raw == nil || raw.Data == nil || raw.Data["data"] == nil {
		return Secret{}, ErrNotFound
	}
	meta, _ := raw.Data["metadata"].(map[string]any)
	version, err := kvVersion(meta)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", err, ErrUnavailable)
	}
	data, ok := raw.Data["data"].(map[string]any)
	if !ok {
		return Secret{}, fmt.Errorf("version %d: data is %s, want an object: %w", version, jsonKind(raw.Data["data"]), ErrUnavailable)
	}
	values, err := stringData(data)
	if err != nil {
		return Secret{}, fmt.Errorf("version %d: %w: %w", version, err, ErrUnavailable)
	}
	return Secret{ID: id, Version: version, Data: values, FetchedAt: p.now(), CreatedAt: kvCreated(meta)}, nil
}

// kvCreated is when Vault wrote the version read (KV v2's
// metadata.created_time); zero when the answer lacks it, which only
// leaves the version-age gauge unreported.
func kvCreated(meta map[string]any) time.Time {
	s, _ := meta["created_time"].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// kvVersion extracts the version from a KV v2 read's metadata.
func kvVersion(meta map[string]any) (int, error) {
	n, ok := meta["version"].(json.Number)
	if !ok {
		return 0, errors.New("answer has no metadata version; is the mount KV version 2?")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("metadata version %q is not an integer", n.String())
	}
	return int(v), nil
}

// refreshLoop re-reads every cached secret each RefreshInterval, so a
// rotation reaches the cache even for a bank nobody asked about lately.
func (p *Provider) refreshLoop() {
	t := time.NewTicker(p.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.refreshAll()
		}
	}
}

func (p *Provider) refreshAll() {
	p.mu.Lock()
	keys := slices.Collect(maps.Keys(p.entries))
	p.mu.Unlock()

	var g errgroup.Group
	g.SetLimit(refreshParallelism)
	for _, k := range keys {
		g.Go(func() error {
			if _, err, _ := p.sf.Do(k.path(), func() (any, error) { return p.refresh(k, true) }); err != nil && p.ctx.Err() == nil {
				// Nobody waits for this read, so here is where its failure
				// is handled.
				p.log.Warn("background refresh of credentials failed", append([]any{k.logAttr()}, errorAttrs(err)...)...)
			}
			return nil
		})
	}
	_ = g.Wait() // the functions above never return an error
}

// observeAges reports, for every cached secret, how long ago it was read
// from Vault and how long ago the version in use was written there (zero
// when Vault did not say).
func (p *Provider) observeAges(observe func(id attribute.KeyValue, cached, version float64)) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.entries {
		var version float64
		if !e.secret.CreatedAt.IsZero() {
			version = now.Sub(e.secret.CreatedAt).Seconds()
		}
		observe(k.attr(), now.Sub(e.secret.FetchedAt).Seconds(), version)
	}
}

// kind says whether a secret belongs to a bank or to a partner.
type kind uint8

const (
	kindBank kind = iota
	kindPartner
)

func (k kind) String() string {
	if k == kindPartner {
		return "partner"
	}
	return "bank"
}

// key names one cached secret.
type key struct {
	kind kind
	id   string
}

// path is the secret's path under the mount.
func (k key) path() string {
	if k.kind == kindPartner {
		return "partners/" + k.id
	}
	return "banks/" + k.id
}

// attr labels metrics with the id: bank_id, as every per-bank metric is
// labelled (the adapter calls', the breaker's), so one on-call query joins
// them; a partner's keeps its own key.
func (k key) attr() attribute.KeyValue {
	if k.kind == kindPartner {
		return attribute.String(attrPartnerID, k.id)
	}
	return attribute.String(metricBankID, k.id)
}

// logAttr labels logs with the id.
func (k key) logAttr() slog.Attr {
	if k.kind == kindPartner {
		return slog.String(attrPartnerID, k.id)
	}
	return slog.String(telemetry.AttrBankID, k.id)
}

const maxIDLen = 128

var errInvalidID = fmt.Errorf("not a valid id: %w", ErrNotFound)

// validID accepts one path segment of letters, digits, '-', '_' and '.', so
// that no id can reach another secret's path (such as "a/../b").
func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > maxIDLen {
		return errInvalidID
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return errInvalidID
		}
	}
	return nil
}

// errorAttrs labels a log line with a failure: the error and, when Vault
// answered, its status code.
func errorAttrs(err error) []any {
	attrs := []any{slog.Any("error", err)}
	if code := vaultStatus(err); code != 0 {
		attrs = append(attrs, slog.Int(attrStatus, code))
	}
	return attrs
}

// isForbidden reports whether Vault answered err with 403.
func isForbidden(err error) bool {
	re, ok := errors.AsType[*api.ResponseError](err)
	return ok && re.StatusCode == http.StatusForbidden
}
