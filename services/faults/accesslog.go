package faults

// The access-log check. Issue 14 promises that, whatever the fault, no
// access is served without a matching entry in the user's access log. The
// kit appends an allowed entry, with the call's trace id, before the data
// leaves; this file checks it from outside, as the user would: after each
// row it reads, through ConsentService.ListAccessLog with the user's own
// token, the access logs of a sample of the users the row's load served,
// and matches every successful call of theirs to an allowed entry.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/server"
)

const (
	// accessLogSample is at most how many of the users a row's load
	// served have their access log read after the row (all their
	// successful calls are checked): every user at the default 1,000,
	// whose logs read in about a second, a sample beyond.
	accessLogSample = 1000
	// accessLogSlack widens the window an untraced call is counted in, for
	// the time between the access decision and the caller's clock.
	accessLogSlack = time.Second
	// accessLogSkew is how far before a row's first call the log is read
	// from: the clock-skew row runs a service up to 5 min off.
	accessLogSkew = 10 * time.Minute
)

// loggedMethod is the access-log method of each operation of the load.
var loggedMethod = map[string]string{
	"read":  balancev1.BalanceService_GetBalance_FullMethodName,
	"write": shippingv1.ShippingService_CreateShipment_FullMethodName,
}

// LogEntry is what the check needs of an allowed access-log entry.
type LogEntry struct {
	Method, TraceID string
	Time            time.Time
}

// LogMatch is how a user's successful calls matched their access log.
type LogMatch struct {
	// ByTrace are calls matched to an entry with their trace id, ByCount
	// untraced calls covered by as many entries of their method in their
	// time window, Unlogged calls served without an entry.
	ByTrace, ByCount, Unlogged int
}

// MatchAccessLog matches one user's successful calls to the allowed
// entries of their access log. A call with a trace id needs an entry of its
// method with that trace id, each entry matching one call; the calls
// without one (a stack that returned no x-trace-id) are counted: the
// entries of their method left over, within the calls' window, must be at
// least as many as the calls.
func MatchAccessLog(calls []Call, entries []LogEntry) LogMatch {
	var m LogMatch
	type key struct{ method, trace string }
	byTrace := map[key]int{}
	for _, e := range entries {
		byTrace[key{strings.TrimPrefix(e.Method, "/"), e.TraceID}]++
	}
	untraced := map[string][]Call{}
	for _, c := range calls {
		if c.Code != codes.OK {
			continue
		}
		method := strings.TrimPrefix(loggedMethod[c.Op], "/")
		if c.TraceID == "" {
			untraced[method] = append(untraced[method], c)
			continue
		}
		k := key{method, c.TraceID}
		if byTrace[k] > 0 {
			byTrace[k]--
			m.ByTrace++
		} else {
			m.Unlogged++
		}
	}
	for method, cs := range untraced {
		from, to := cs[0].Start, cs[0].Start.Add(cs[0].Latency)
		for _, c := range cs {
			from, to = minTime(from, c.Start), maxTime(to, c.Start.Add(c.Latency))
		}
		from, to = from.Add(-accessLogSlack), to.Add(accessLogSlack)
		left := 0
		for _, e := range entries {
			k := key{strings.TrimPrefix(e.Method, "/"), e.TraceID}
			if k.method == method && byTrace[k] > 0 && !e.Time.Before(from) && e.Time.Before(to) {
				byTrace[k]--
				left++
			}
		}
		covered := min(left, len(cs))
		m.ByCount += covered
		m.Unlogged += len(cs) - covered
	}
	return m
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// traceIDOf is the trace id the stack returned with a call, "" without one.
func traceIDOf(md metadata.MD) string {
	if v := md.Get(server.TraceIDHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// servedCalls collects the successful calls of every load run until the
// matrix takes them after a row.
type servedCalls struct {
	mu    sync.Mutex
	calls []Call
	users map[string]*User
}

// add keeps the successful calls of a load run over users.
func (s *servedCalls) add(calls []Call, users []*User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]*User{}
	}
	for _, u := range users {
		s.users[u.ID] = u
	}
	for _, c := range calls {
		if c.Code == codes.OK && c.User != "" {
			s.calls = append(s.calls, c)
		}
	}
}

// take returns the calls kept since the last take, by user.
func (s *servedCalls) take() (map[*User][]Call, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byUser := map[*User][]Call{}
	for _, c := range s.calls {
		if u := s.users[c.User]; u != nil {
			byUser[u] = append(byUser[u], c)
		}
	}
	n := len(s.calls)
	s.calls = nil
	return byUser, n
}

// AccessLog is u's allowed access-log entries from since on, read as u.
// A read that fails is retried for about 10 s: the consent service may be
// on its way back from the row's fault.
func (h *Harness) AccessLog(ctx context.Context, u *User, since time.Time) ([]LogEntry, error) {
	client := consentv1.NewConsentServiceClient(h.Conn("consent"))
	var out []LogEntry
	token := ""
	for {
		var resp *consentv1.ListAccessLogResponse
		var err error
		for try := 0; ; try++ {
			cctx, cancel := context.WithTimeout(userCtx(ctx, u, "CONSENT_MANAGEMENT"), 10*time.Second)
			resp, err = client.ListAccessLog(cctx, &consentv1.ListAccessLogRequest{
				Parent: "users/" + u.ID, PageSize: 100, PageToken: token,
				StartTime: timestamppb.New(since), Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
			})
			cancel()
			if err == nil || try == 20 || ctx.Err() != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return out, err
		}
		for _, e := range resp.GetEntries() {
			if e.GetOutcome() != consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED {
				continue // the filter is the server's; a denial never covers a served call
			}
			out = append(out, LogEntry{Method: e.GetMethod(), TraceID: e.GetTraceId(), Time: e.GetAccessTime().AsTime()})
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// checkAccessLog sets o.Unlogged from the access logs of a sample of the
// users the row's load served, and fails the row when a served call has
// no entry.
func (m *Matrix) checkAccessLog(ctx context.Context, o *Outcome) {
	byUser, served := m.H.served.take()
	if o.NotDone != "" || served == 0 {
		return
	}
	users := make([]*User, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	rand.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	users = users[:min(len(users), accessLogSample)]

	start := time.Now()
	var (
		mu      sync.Mutex
		total   LogMatch
		checked int
		readErr error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, u := range users {
		calls := byUser[u]
		g.Go(func() error {
			since := calls[0].Start
			for _, c := range calls {
				since = minTime(since, c.Start)
			}
			entries, err := m.H.AccessLog(gctx, u, since.Add(-accessLogSkew))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if readErr == nil {
					readErr = fmt.Errorf("%s's: %w", u.ID, err)
				}
				return err // the log is unreadable: stop, rather than wait on every user
			}
			r := MatchAccessLog(calls, entries)
			total.ByTrace += r.ByTrace
			total.ByCount += r.ByCount
			total.Unlogged += r.Unlogged
			checked += len(calls)
			return nil
		})
	}
	_ = g.Wait()
	o.Unlogged += total.Unlogged
	o.note("access log: %d of %d served calls checked (%d of %d users sampled, in %s): %d matched by trace id, %d by count, %d unlogged",
		checked, served, len(users), len(byUser), time.Since(start).Round(100*time.Millisecond), total.ByTrace, total.ByCount, total.Unlogged)
	if total.Unlogged > 0 {
		o.fail("%d accesses served without an access-log entry", total.Unlogged)
	}
	if readErr != nil {
		o.fail("reading the access log: %v", readErr)
	}
}
