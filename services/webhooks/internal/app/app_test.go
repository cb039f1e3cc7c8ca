package app

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBackoffIsFullJitterUnderADoublingCeiling(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{BackoffBase: 100 * time.Millisecond, BackoffCap: time.Second}}
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 80: time.Second} {
		var lo, hi time.Duration = ceiling, 0
		for range 500 {
			d := s.backoff(n)
			if d <= 0 || d > ceiling {
				t.Fatalf("retry %d waits %s, outside (0, %s]", n, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceiling/4 || hi < ceiling*3/4 {
			t.Errorf("retry %d: waits span [%s, %s], not the whole (0, %s]", n, lo, hi, ceiling)
		}
	}
}

func TestScheduleStopsAtTheDeadline(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{BackoffBase: time.Hour, BackoffCap: time.Hour}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d := Due{Delivery: Delivery{Deadline: now.Add(time.Minute)}}
	if st, next := s.schedule(d, now, OutcomeHTTPError); st != DeliveryPending || next.After(d.Delivery.Deadline) {
		t.Errorf("before the deadline: %v at %v; want a retry no later than the deadline", st, next)
	}
	if st, _ := s.schedule(d, now.Add(time.Minute), OutcomeTimeout); st != DeliveryFailed {
		t.Errorf("at the deadline: %v, want FAILED", st)
	}
	if st, _ := s.schedule(d, now.Add(time.Minute), OutcomeSucceeded); st != DeliverySucceeded {
		t.Errorf("a success at the deadline: %v", st)
	}
}

func TestRotationKeepsTheSigningSecretsForTheOverlap(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s0, s1, s2 := NewSecret(t0), NewSecret(t0.Add(time.Hour)), NewSecret(t0.Add(2*time.Hour))
	set := SecretSet{s0}.Rotate(t0.Add(time.Hour), 24*time.Hour, s1)
	if len(set.Signing(t0.Add(2*time.Hour))) != 2 || !set.PreviousExpire(t0.Add(time.Hour)).Equal(t0.Add(25*time.Hour)) {
		t.Fatalf("after one rotation: %+v", set)
	}
	// A second rotation within the overlap keeps both older secrets
	// signing, never longer than they were promised.
	set = set.Rotate(t0.Add(2*time.Hour), 48*time.Hour, s2)
	if got := set.Signing(t0.Add(3 * time.Hour)); len(got) != 3 || got[0].Value != s2.Value {
		t.Fatalf("after two rotations: %+v", got)
	}
	if got := set.Signing(t0.Add(26 * time.Hour)); len(got) != 2 || got[1].Value != s1.Value {
		t.Errorf("past the first overlap, %d secrets sign; want s2 and s1", len(got))
	}
	if got := set.Signing(t0.Add(51 * time.Hour)); len(got) != 1 {
		t.Errorf("past every overlap, %d secrets sign", len(got))
	}
	if got := set.Rotate(t0.Add(3*time.Hour), 0, NewSecret(t0)); len(got) != 1 {
		t.Errorf("a rotation without overlap keeps %d secrets", len(got))
	}
	back, err := DecodeSecrets(mustEncode(t, set))
	if err != nil || len(back) != 3 || !back[1].ExpireTime.Equal(set[1].ExpireTime) {
		t.Errorf("decode(encode) = %+v, %v", back, err)
	}
}

func mustEncode(t *testing.T, s SecretSet) string {
	t.Helper()
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestPayloadIsThinAndStable(t *testing.T) {
	t.Parallel()
	e := Event{ID: "evt-1", Type: "consent.link.expiring", Resource: "users/alice/links/l1",
		Time: time.Date(2030, 1, 1, 0, 0, 0, 123000, time.UTC), Data: []byte(`{"bankId":"sandbox","id":"spoofed"}`)}
	b, err := Payload(e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"consent.link.expiring","timestamp":"2030-01-01T00:00:00.000123Z","data":{"bankId":"sandbox","id":"evt-1","resource":"users/alice/links/l1"}}`
	if string(b) != want {
		t.Errorf("payload\n got %s\nwant %s", b, want)
	}
	e.Data = []byte(`[1,2]`)
	b, _ = Payload(e)
	var body struct{ Data map[string]any }
	if err := json.Unmarshal(b, &body); err != nil || len(body.Data) != 2 {
		t.Errorf("a payload that is no object: %s", b)
	}
}
