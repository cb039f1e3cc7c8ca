package faults

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestSummarize: refusals are counted apart from availability and
// latency; errors are counted by reason, else by code; the window keeps
// the calls that started in it.
func TestSummarize(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	calls := []Call{
		{Start: at(0), Latency: 10 * time.Millisecond},
		{Start: at(1), Latency: 20 * time.Millisecond, Stale: true},
		{Start: at(1), Latency: 900 * time.Millisecond, Code: codes.Unavailable, Reason: "BANK_UNAVAILABLE"},
		{Start: at(2), Latency: time.Millisecond, Code: codes.ResourceExhausted, Reason: "OVERLOADED"},
		{Start: at(3), Latency: 5 * time.Second, Code: codes.DeadlineExceeded},
		{Start: at(9), Latency: time.Millisecond},
	}
	s := Summarize(calls, at(0), at(5))
	if s.Calls != 5 || s.OK != 2 || s.Refused != 1 || s.Stale != 1 {
		t.Fatalf("counts %+v", s)
	}
	if want := 2.0 / 4; s.Availability != want {
		t.Errorf("availability %v, want %v (refusals apart)", s.Availability, want)
	}
	if s.P50 != 900*time.Millisecond {
		t.Errorf("p50 %s, want 900ms: a refusal's latency is not a served call's", s.P50)
	}
	if s.P99 != 5*time.Second {
		t.Errorf("p99 %s, want the slowest served call", s.P99)
	}
	if got, want := s.ErrorsText(), "BANK_UNAVAILABLE=1 DeadlineExceeded=1 OVERLOADED=1"; got != want {
		t.Errorf("errors %q, want %q", got, want)
	}
}

// TestSelect: quick picks the CI subset, names pick rows, an unknown name
// is an error.
func TestSelect(t *testing.T) {
	rows := Rows()
	quick, err := Select(rows, "quick")
	if err != nil || len(quick) == 0 || len(quick) >= len(rows) {
		t.Fatalf("quick: %d rows, %v", len(quick), err)
	}
	for _, r := range quick {
		if !r.Quick {
			t.Errorf("quick has %s", r.Name)
		}
	}
	two, err := Select(rows, "bank-reset, dup-writes")
	if err != nil || len(two) != 2 || two[0].Name != "bank-reset" || two[1].Name != "dup-writes" {
		t.Fatalf("two rows: %v %v", two, err)
	}
	if _, err := Select(rows, "no-such-row"); err == nil {
		t.Error("an unknown row was accepted")
	}
	names := map[string]bool{}
	for _, r := range rows {
		if names[r.Name] || r.Hypothesis == "" || r.Run == nil {
			t.Errorf("row %q: duplicate name, or no hypothesis or run", r.Name)
		}
		names[r.Name] = true
	}
}
