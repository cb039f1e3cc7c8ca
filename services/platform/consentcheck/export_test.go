package consentcheck

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// CacheAllowed stores an allowed decision for user as a CheckConsent
// answer would, as if the change stream were up, without asking anyone.
func CacheAllowed(c *Checker, user string, scope commonv1.Scope, purpose commonv1.Purpose, expire time.Time) {
	c.mu.Lock()
	c.watching = true
	gen := c.generation
	c.mu.Unlock()
	c.store(key{user: user, bank: "sandbox", scope: scope, purpose: purpose}, &consentv1.CheckConsentResponse{
		Allowed: true, Link: names.User(user) + "/links/l1", BankConsentId: "bc-" + user, ExpireTime: timestamppb.New(expire),
		ValidFor: durationpb.New(expire.Sub(c.opts.Now())),
	}, gen, c.opts.Now())
}

// Watching reports whether the change stream is up, so decisions are
// cached.
func Watching(c *Checker) bool { return c.isWatching() }

// CachedUsers is how many users have decisions cached.
func CachedUsers(c *Checker) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decisions.Len()
}
