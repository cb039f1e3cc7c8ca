package faults

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestMatchAccessLog: a served call needs an allowed entry of its own
// method with its trace id, each entry covering one call; an untraced call
// is covered by a spare entry of its method in its window; failed calls
// need none.
func TestMatchAccessLog(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	read, write := loggedMethod["read"], loggedMethod["write"]
	const a, b = "0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"
	ok := func(op, trace string, s int) Call {
		return Call{Op: op, TraceID: trace, Start: at(s), Latency: 50 * time.Millisecond}
	}
	tests := []struct {
		name    string
		calls   []Call
		entries []LogEntry
		want    LogMatch
	}{
		{
			name:    "every call has its entry",
			calls:   []Call{ok("read", a, 1), ok("write", b, 2)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(1)}, {Method: write, TraceID: b, Time: at(2)}},
			want:    LogMatch{ByTrace: 2},
		},
		{
			name:    "a served read without an entry",
			calls:   []Call{ok("read", a, 1), ok("read", b, 2)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(1)}},
			want:    LogMatch{ByTrace: 1, Unlogged: 1},
		},
		{
			name:    "an entry of another method does not cover a call",
			calls:   []Call{ok("write", a, 1)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(1)}},
			want:    LogMatch{Unlogged: 1},
		},
		{
			name:    "the method is matched with or without its leading slash",
			calls:   []Call{ok("read", a, 1)},
			entries: []LogEntry{{Method: read[1:], TraceID: a, Time: at(1)}},
			want:    LogMatch{ByTrace: 1},
		},
		{
			name:    "one entry covers one call only",
			calls:   []Call{ok("read", a, 1), ok("read", a, 1)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(1)}},
			want:    LogMatch{ByTrace: 1, Unlogged: 1},
		},
		{
			name:    "failed calls need no entry",
			calls:   []Call{{Op: "read", Start: at(1), Code: codes.Unavailable, Reason: "AUDIT_UNAVAILABLE"}},
			entries: nil,
			want:    LogMatch{},
		},
		{
			name:    "untraced calls are counted against spare entries in their window",
			calls:   []Call{ok("read", "", 10), ok("read", "", 11)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(10)}, {Method: read, TraceID: b, Time: at(11)}},
			want:    LogMatch{ByCount: 2},
		},
		{
			name:    "an entry already matched by trace does not count for an untraced call",
			calls:   []Call{ok("read", a, 10), ok("read", "", 10)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(10)}},
			want:    LogMatch{ByTrace: 1, Unlogged: 1},
		},
		{
			name:    "an entry outside the untraced calls' window does not count",
			calls:   []Call{ok("read", "", 10)},
			entries: []LogEntry{{Method: read, TraceID: a, Time: at(5)}, {Method: read, TraceID: b, Time: at(20)}},
			want:    LogMatch{Unlogged: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchAccessLog(tt.calls, tt.entries); got != tt.want {
				t.Errorf("MatchAccessLog = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestServedCallsTake: only successful calls of known users are kept, and
// a take empties the collection for the next row.
func TestServedCallsTake(t *testing.T) {
	t.Parallel()
	u := &User{ID: "fu0001"}
	var s servedCalls
	s.add([]Call{
		{Op: "read", User: u.ID},
		{Op: "write", User: u.ID, Code: codes.Unavailable},
		{Op: "read", Code: codes.ResourceExhausted, Reason: "CLIENT_BACKLOG"},
	}, []*User{u})
	byUser, n := s.take()
	if n != 1 || len(byUser[u]) != 1 {
		t.Fatalf("took %d calls, %v; want the one successful call", n, byUser)
	}
	if _, n := s.take(); n != 0 {
		t.Errorf("second take has %d calls, want none", n)
	}
}
