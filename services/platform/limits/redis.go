package limits

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
)

const (
	// retryRedisAfter is how long the limiter decides in memory after
	// Redis failed, before it asks Redis again: a Redis that is down costs
	// one timeout a second, not one per call.
	retryRedisAfter = time.Second
	// warnEvery spaces the warnings of a failing Redis.
	warnEvery = 10 * time.Second
)

// redisStore keeps the buckets in Redis, shared by every replica, with
// redis_rate's GCRA script (one round trip per bucket; each key expires
// once its bucket is full again, so Redis holds only active callers). When
// Redis fails it fails open to the in-memory buckets of this process.
type redisStore struct {
	rdb      *redis.Client
	limiter  *redis_rate.Limiter
	prefix   string
	userKey  func(string) string
	timeout  time.Duration
	fallback *memory
	log      *slog.Logger
	failures metric.Int64Counter

	// downUntil (unix nanoseconds) is when to ask Redis again after a
	// failure; lastWarn when the last warning was logged; degraded is set
	// while decisions are made in memory.
	downUntil, lastWarn atomic.Int64
	degraded            atomic.Bool
}

func newRedis(rawURL string, fallback *memory, o Options) (*redisStore, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("config: --redis-url is not a redis:// or rediss:// URL")
	}
	// Each decision's context bounds its round trip (RedisTimeout), dial
	// and pool wait included.
	opts.ContextTimeoutEnabled = true
	failures, err := o.MeterProvider.Meter("bankbridge/limits").Int64Counter("bankbridge.ratelimit.redis.failures",
		metric.WithDescription("Rate-limit decisions Redis could not make (unreachable, slow, erroring), made instead by the replica alone from its in-memory limits: the limiter fails open."))
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opts)
	s := &redisStore{
		rdb: rdb, limiter: redis_rate.NewLimiter(rdb), prefix: o.KeyPrefix + o.Service + ":", userKey: o.UserKey,
		timeout: o.RedisTimeout, fallback: fallback, log: o.Logger, failures: failures,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		s.down(ctx, err)
	}
	return s, nil
}

func (s *redisStore) close() error { return s.rdb.Close() }

func (s *redisStore) take(ctx context.Context, k key, r Rate) decision {
	if time.Now().UnixNano() < s.downUntil.Load() {
		s.failures.Add(ctx, 1)
		return s.fallback.take(ctx, k, r)
	}
	id := k.id
	if k.Scope == ScopeUser {
		id = s.userKey(id)
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	res, err := s.limiter.Allow(rctx, s.prefix+string(k.Class)+":"+string(k.Scope)+":"+id,
		redis_rate.Limit{Rate: r.Count, Period: r.Per, Burst: r.Burst})
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		// The caller left; its call ends anyway, and Redis is not to blame.
		return decision{allowed: true}
	case err != nil:
		s.failures.Add(ctx, 1)
		s.down(ctx, err)
		return s.fallback.take(ctx, k, r)
	}
	if s.degraded.CompareAndSwap(true, false) {
		s.log.Info("rate limits: Redis answers again; the limits are shared by every replica again", slog.String("component", "limits"))
	}
	if res.Allowed > 0 {
		return decision{allowed: true}
	}
	return decision{retryAfter: res.RetryAfter}
}

// down stops asking Redis for retryRedisAfter, and warns, at most once
// every warnEvery.
func (s *redisStore) down(ctx context.Context, err error) {
	now := time.Now()
	s.downUntil.Store(now.Add(retryRedisAfter).UnixNano())
	s.degraded.Store(true)
	last := s.lastWarn.Load()
	if now.UnixNano()-last < int64(warnEvery) || !s.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.log.WarnContext(ctx, "rate limits: Redis failed; each replica enforces the limits on its own until it answers (fail open)",
		slog.String("component", "limits"), slog.String("error", err.Error()))
}
