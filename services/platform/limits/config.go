package limits

import (
	"flag"
	"fmt"
	"time"
)

// Config is the limits of one service, the same on every replica. The
// server kit binds it to flags (RegisterFlags): --rate-limit-<class>-<scope>
// for each bucket, and --redis-url.
type Config struct {
	ReadUser, ReadClient     Rate
	WriteUser, WriteClient   Rate
	StreamUser, StreamClient Rate
	// PartnerClient limits each partner's pushes; partners act for no
	// user, so there is no per-user partner limit.
	PartnerClient Rate
	// RedisURL is redis://[:password@]host:port[/db] (rediss:// for TLS)
	// of the Redis every replica shares; empty keeps the limits in each
	// process's memory, right for a single replica only.
	RedisURL string
}

// Defaults are limits for production: a person in a chat reads a few
// screens a second and writes far less, and opens a handful of streams,
// with bursts of up to 100 calls (a screen of pages, a script's first
// run); a client (a product team's app) carries all its users, so its
// limits are a safety net against a runaway client rather than a quota.
// Streams are limited when they open; a client's burst covers a reconnect
// storm of 20,000 streams (after a deploy, say). Load tests and benchmarks
// that hammer one user set their own limits (the dev stack does).
func Defaults() Config {
	return Config{
		ReadUser:      Rate{Count: 20, Per: time.Second, Burst: 100},
		ReadClient:    Rate{Count: 2000, Per: time.Second, Burst: 4000},
		WriteUser:     Rate{Count: 5, Per: time.Second, Burst: 100},
		WriteClient:   Rate{Count: 500, Per: time.Second, Burst: 1000},
		StreamUser:    Rate{Count: 5, Per: time.Second, Burst: 50},
		StreamClient:  Rate{Count: 1000, Per: time.Second, Burst: 20000},
		PartnerClient: Rate{Count: 500, Per: time.Second, Burst: 1000},
	}
}

// Bucket names one limit: a class of methods, counted per user or per
// client.
type Bucket struct {
	Class Class
	Scope Scope
}

// Flag is the bucket's flag name, rate-limit-<class>-<scope>.
func (b Bucket) Flag() string { return "rate-limit-" + string(b.Class) + "-" + string(b.Scope) }

// Buckets lists every bucket a Config holds, in flag order.
func Buckets() []Bucket {
	return []Bucket{
		{ClassRead, ScopeUser}, {ClassRead, ScopeClient},
		{ClassWrite, ScopeUser}, {ClassWrite, ScopeClient},
		{ClassStream, ScopeUser}, {ClassStream, ScopeClient},
		{ClassPartner, ScopeClient},
	}
}

// rate returns the field of b, or nil for a bucket that does not exist
// (a partner's per-user limit).
func (c *Config) rate(b Bucket) *Rate {
	switch b {
	case Bucket{ClassRead, ScopeUser}:
		return &c.ReadUser
	case Bucket{ClassRead, ScopeClient}:
		return &c.ReadClient
	case Bucket{ClassWrite, ScopeUser}:
		return &c.WriteUser
	case Bucket{ClassWrite, ScopeClient}:
		return &c.WriteClient
	case Bucket{ClassStream, ScopeUser}:
		return &c.StreamUser
	case Bucket{ClassStream, ScopeClient}:
		return &c.StreamClient
	case Bucket{ClassPartner, ScopeClient}:
		return &c.PartnerClient
	}
	return nil
}

// Rate is the limit of b; false for a bucket that does not exist.
func (c Config) Rate(b Bucket) (Rate, bool) {
	r := c.rate(b)
	if r == nil {
		return Rate{}, false
	}
	return *r, true
}

var classUsage = map[Class]string{
	ClassRead:    "reads (google.api.http GET)",
	ClassWrite:   "writes (POST, DELETE, ...)",
	ClassStream:  "stream opens (server streaming)",
	ClassPartner: "partner pushes (AUDIENCE_PARTNER)",
}

// RegisterFlags binds every field to fs, with c's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, b := range Buckets() {
		fs.Var(c.rate(b), b.Flag(), fmt.Sprintf("rate limit of %s per %s, a `<count>/<per>[:<burst>]` token bucket", classUsage[b.Class], b.Scope))
	}
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis shared by every replica for the rate limits, redis://host:6379/0 (rediss:// for TLS); empty keeps them in memory, per process; if Redis fails, each replica enforces the limits on its own")
}

// Validate reports the first limit that cannot work.
func (c Config) Validate() error {
	for _, b := range Buckets() {
		if err := c.rate(b).check(); err != nil {
			return fmt.Errorf("config: --%s: %w", b.Flag(), err)
		}
	}
	return nil
}
