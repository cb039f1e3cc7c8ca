package limits

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Rate is one limit: Count calls per Per, with bursts of up to Burst calls
// (a token bucket of Burst tokens refilled at Count per Per). It is written
// <count>/<per>[:<burst>], e.g. 20/1s:40 or 600/1m; the burst defaults to
// the count. Per is a whole number of seconds, because the
// RateLimit-Policy header states its window in seconds.
type Rate struct {
	Count int
	Per   time.Duration
	Burst int
}

var _ flag.Value = (*Rate)(nil)

// ParseRate reads <count>/<per>[:<burst>]. Per is a Go duration ("1s",
// "10s", "1m", "1h") or a bare unit ("s", "m", "h").
func ParseRate(s string) (Rate, error) {
	bad := func(why string) (Rate, error) {
		return Rate{}, fmt.Errorf("rate %q: %s; want <count>/<per>[:<burst>], e.g. 20/1s:40", s, why)
	}
	countText, rest, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return bad("no /")
	}
	perText, burstText, hasBurst := strings.Cut(rest, ":")
	count, err := strconv.Atoi(countText)
	if err != nil || count < 1 {
		return bad("the count is not a whole number of at least 1")
	}
	switch perText {
	case "s", "m", "h":
		perText = "1" + perText
	}
	per, err := time.ParseDuration(perText)
	if err != nil {
		return bad("the period is not a duration")
	}
	burst := count
	if hasBurst {
		if burst, err = strconv.Atoi(burstText); err != nil || burst < 1 {
			return bad("the burst is not a whole number of at least 1")
		}
	}
	r := Rate{Count: count, Per: per, Burst: burst}
	if err := r.check(); err != nil {
		return bad(err.Error())
	}
	return r, nil
}

func (r Rate) check() error {
	switch {
	case r.Count < 1 || r.Burst < 1:
		return errors.New("count and burst must be at least 1")
	case r.Per < time.Second || r.Per%time.Second != 0:
		return errors.New("the period must be a whole number of seconds")
	}
	return nil
}

// String is the rate as ParseRate reads it.
func (r Rate) String() string {
	if r == (Rate{}) {
		return ""
	}
	return fmt.Sprintf("%d/%s:%d", r.Count, shortDuration(r.Per), r.Burst)
}

// Set parses s into r, for flags.
func (r *Rate) Set(s string) error {
	parsed, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// WindowSeconds is Per in seconds, the w of RateLimit-Policy.
func (r Rate) WindowSeconds() int64 { return int64(r.Per / time.Second) }

// limit is the refill rate in tokens per second.
func (r Rate) limit() rate.Limit { return rate.Limit(float64(r.Count) / r.Per.Seconds()) }

// shortDuration prints 1s, 1m and 1h as Go does, without the trailing
// zero units ("1m" rather than "1m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
