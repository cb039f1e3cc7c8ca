// Package limits holds bankbridge's per-client and per-user rate limits:
// token buckets by method class (ClassOf, from the contract) and scope
// (the call's user and its client), in each process's memory
// (golang.org/x/time/rate, idle buckets evicted) or, with --redis-url, in
// a Redis every replica shares (GCRA, github.com/go-redis/redis_rate).
//
// When Redis fails (unreachable, slow, erroring) the limiter fails open
// to each replica's own memory: every replica then enforces the limits on
// its own, so a caller may get up to N times its limit across N replicas
// for as long as Redis is out, but no call is refused because Redis is
// out, and no caller is unlimited. Each decision made without Redis counts
// in bankbridge.ratelimit.redis.failures, and a warning is logged (at most
// once every 10 s); the limiter asks Redis again a second after a failure.
// A payment platform cannot refuse every call while a cache blips; it can
// afford a looser limit for a while.
//
// A call over its limit is refused with RESOURCE_EXHAUSTED, RATE_LIMITED
// (Refusal.Err): a RetryInfo with the delay, and in ErrorInfo.metadata the
// policy that refused it (MetaPolicy: "user" or "client"), its quota
// (MetaQuota, calls per window) and window (MetaWindowSeconds), which the
// gateway turns into Retry-After, RateLimit-Policy and RateLimit headers.
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The ErrorInfo.metadata keys of a refusal.
const (
	// MetaPolicy is the policy that refused the call: "user" or "client".
	MetaPolicy = "rate_limit_policy"
	// MetaClass is the method's class: read, write, stream or partner.
	MetaClass = "rate_limit_class"
	// MetaQuota is the policy's quota: calls per window.
	MetaQuota = "rate_limit_quota"
	// MetaWindowSeconds is the policy's window, in seconds.
	MetaWindowSeconds = "rate_limit_window_seconds"
)

// DefaultMaxKeys bounds the buckets kept in memory (about 200 bytes each).
const DefaultMaxKeys = 100_000

// Options are what a Limiter needs besides its Config.
type Options struct {
	// Service is the service's name. Each service has its own buckets: a
	// user's reads of balances do not use up their reads of receipts.
	Service string
	// Logger gets the warnings of a failing Redis; default slog.Default().
	Logger *slog.Logger
	// MeterProvider gets bankbridge.ratelimit.redis.failures; default
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// KeyPrefix starts every Redis key (after redis_rate's own "rate:");
	// default "bankbridge:".
	KeyPrefix string
	// RedisTimeout bounds each decision asked of Redis; default 100ms.
	RedisTimeout time.Duration
	// MaxKeys bounds the buckets kept in memory; default DefaultMaxKeys.
	MaxKeys int
	// Now is the clock of the in-memory buckets; default time.Now.
	Now func() time.Time
	// UserKey names a user in Redis keys, so that Redis holds no user id:
	// the server kit passes the pseudonymous subject id (a keyed hash,
	// the same on every replica). Required with a Redis URL.
	UserKey func(user string) string
}

// Limiter decides whether a call is within its limits.
type Limiter struct {
	cfg   Config
	store store
	close func() error
}

// store keeps the buckets.
type store interface {
	// take takes one call from the bucket k, limited to r.
	take(ctx context.Context, k key, r Rate) decision
}

// key names one bucket.
type key struct {
	Bucket
	id string
}

// decision is a store's answer: the call is allowed, or may be retried
// after retryAfter.
type decision struct {
	allowed    bool
	retryAfter time.Duration
}

// New returns the limiter of cfg: in memory, or in the Redis of
// cfg.RedisURL. A Redis that does not answer at start is only a warning:
// the limiter fails open to memory until it does.
func New(cfg Config, o Options) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "bankbridge:"
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = 100 * time.Millisecond
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	mem := newMemory(o.MaxKeys, o.Now)
	if cfg.RedisURL == "" {
		return &Limiter{cfg: cfg, store: mem, close: func() error { return nil }}, nil
	}
	if o.UserKey == nil {
		return nil, errors.New("limits: Options.UserKey is required with --redis-url: Redis must not hold user ids")
	}
	rs, err := newRedis(cfg.RedisURL, mem, o)
	if err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, store: rs, close: rs.close}, nil
}

// Close releases the Redis connections, if any.
func (l *Limiter) Close() error { return l.close() }

// Allow takes one call of the given class from user's bucket (when user is
// not empty) and then from client's, and returns nil when both allow it, or
// the refusal of the first that does not.
func (l *Limiter) Allow(ctx context.Context, class Class, client, user string) *Refusal {
	// The user first: a user over their limit does not use up their
	// client's.
	for _, k := range [2]key{{Bucket{class, ScopeUser}, user}, {Bucket{class, ScopeClient}, client}} {
		if k.id == "" {
			continue
		}
		r, ok := l.cfg.Rate(k.Bucket)
		if !ok {
			continue
		}
		if d := l.store.take(ctx, k, r); !d.allowed {
			return &Refusal{Bucket: k.Bucket, Rate: r, RetryAfter: d.retryAfter}
		}
	}
	return nil
}

// Refusal says which limit refused a call, and when to retry.
type Refusal struct {
	Bucket
	Rate       Rate
	RetryAfter time.Duration
}

// Err is the refusal as the caller gets it: RESOURCE_EXHAUSTED,
// RATE_LIMITED, with RetryInfo and the policy in ErrorInfo.metadata.
func (r *Refusal) Err() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
		fmt.Sprintf("too many %s calls for this %s; retry after the delay in RetryInfo", r.Class, r.Scope),
		apierr.WithRetryAfter(r.RetryAfter),
		apierr.WithMetadata(MetaPolicy, string(r.Scope)),
		apierr.WithMetadata(MetaClass, string(r.Class)),
		apierr.WithMetadata(MetaQuota, strconv.Itoa(r.Rate.Count)),
		apierr.WithMetadata(MetaWindowSeconds, strconv.FormatInt(r.Rate.WindowSeconds(), 10)),
	)
}
