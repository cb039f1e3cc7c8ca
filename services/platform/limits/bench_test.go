package limits

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// BenchmarkAllow measures one decision (a user's bucket, then its
// client's) over 10,000 users, in memory and in Redis, with every caller
// within its limits.
//
//	go test -run '^$' -bench Allow ./platform/limits/
func BenchmarkAllow(b *testing.B) {
	cfg := Defaults()
	for _, bk := range Buckets() {
		*cfg.rate(bk) = Rate{Count: 1_000_000_000, Per: time.Second, Burst: 1_000_000_000}
	}
	run := func(b *testing.B, l *Limiter) {
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r := l.Allow(context.Background(), ClassRead, "app", strconv.Itoa(int(n.Add(1)%10_000))); r != nil {
					b.Fatal(r)
				}
			}
		})
	}
	b.Run("memory", func(b *testing.B) {
		l, err := New(cfg, Options{Service: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		run(b, l)
	})
	b.Run("redis", func(b *testing.B) {
		c := cfg
		c.RedisURL = testkit.RealRedis(b)
		l, err := New(c, Options{Service: "bench", KeyPrefix: "bbbench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":", UserKey: pseudonym})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		run(b, l)
	})
}
