package limits

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Rate
	}{
		{"20/1s:40", Rate{Count: 20, Per: time.Second, Burst: 40}},
		{"600/1m", Rate{Count: 600, Per: time.Minute, Burst: 600}},
		{"5/s", Rate{Count: 5, Per: time.Second, Burst: 5}},
		{"1000/h:10", Rate{Count: 1000, Per: time.Hour, Burst: 10}},
		{" 3/10s:1 ", Rate{Count: 3, Per: 10 * time.Second, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			again, err := ParseRate(got.String())
			if err != nil || again != got {
				t.Errorf("ParseRate(%q) (its String) = %+v, %v", got.String(), again, err)
			}
		})
	}
	for _, bad := range []string{"", "20", "0/1s", "-1/1s", "x/1s", "20/500ms", "20/1500ms", "20/0s", "20/1s:0", "20/1s:x", "20/parsec"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if r, err := ParseRate(bad); err == nil {
				t.Errorf("ParseRate(%q) = %+v, want an error", bad, r)
			}
		})
	}
}

func TestConfigFlags(t *testing.T) {
	t.Parallel()
	t.Run("defaults are valid and every bucket has a flag", func(t *testing.T) {
		c := Defaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c.RegisterFlags(fs)
		for _, b := range Buckets() {
			f := fs.Lookup(b.Flag())
			r, _ := c.Rate(b)
			if f == nil || f.DefValue != r.String() {
				t.Errorf("--%s: %+v, want default %s", b.Flag(), f, r)
			}
		}
		if fs.Lookup("redis-url") == nil {
			t.Error("no --redis-url")
		}
	})
	t.Run("a flag sets its bucket only", func(t *testing.T) {
		c := Defaults()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"--rate-limit-write-user=3/1m:7", "--redis-url=redis://r:6379/1"}); err != nil {
			t.Fatal(err)
		}
		want := Defaults()
		want.WriteUser, want.RedisURL = Rate{Count: 3, Per: time.Minute, Burst: 7}, "redis://r:6379/1"
		if c != want {
			t.Errorf("config = %+v, want %+v", c, want)
		}
	})
	t.Run("a bad rate is refused, naming the flag", func(t *testing.T) {
		c := Defaults()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"--rate-limit-stream-client=10/100ms"}); err == nil || !strings.Contains(err.Error(), "rate-limit-stream-client") {
			t.Errorf("parse: %v", err)
		}
		c.PartnerClient = Rate{}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--rate-limit-partner-client") {
			t.Errorf("Validate of an unset partner limit: %v", err)
		}
	})
	t.Run("no partner limit per user", func(t *testing.T) {
		if _, ok := Defaults().Rate(Bucket{ClassPartner, ScopeUser}); ok {
			t.Error("a partner bucket per user exists")
		}
	})
}
