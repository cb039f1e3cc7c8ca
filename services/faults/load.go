package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

// Call is the record of one call of the load.
type Call struct {
	Op      string // "read" (GetBalance) or "write" (CreateShipment)
	User    string
	Start   time.Time
	Latency time.Duration
	Code    codes.Code
	// Reason is the ErrorInfo reason of an error, "" without one.
	Reason string
	// RetryHint says an error carried a RetryInfo.
	RetryHint bool
	// Stale says a balance was served from the last known value.
	Stale bool
	// TraceID is the x-trace-id the stack returned, "" without one.
	TraceID string
}

// Key is how a call is counted among errors: its reason, else its code.
func (c Call) Key() string {
	switch {
	case c.Code == codes.OK:
		return "OK"
	case c.Reason != "":
		return c.Reason
	}
	return c.Code.String()
}

// Refused says the call was turned away on purpose, at once, for the
// caller to retry later: load shedding, not a failure.
func (c Call) Refused() bool {
	switch c.Reason {
	case "OVERLOADED", "RATE_LIMITED", "CLIENT_BACKLOG":
		return true
	}
	return false
}

// Write is one CreateShipment the load made: a fresh tracking number and
// idempotency key, retried once with the same key when the first answer
// says the call may not have arrived.
type Write struct {
	User     *User
	Key      string
	Tracking string
	// Acked says the caller got OK: the shipment must exist, once.
	Acked bool
	Name  string
}

// Load is one run of load against the stack.
type Load struct {
	// Duration of the run.
	Duration time.Duration
	// Workers, in a closed loop (each calls again as soon as it has its
	// answer), when Rate is 0.
	Workers int
	// Rate, when set, is an open loop: calls per second whatever the
	// answers, each in its own goroutine, at most MaxInFlight at once
	// (beyond, the call is counted as refused by the client itself,
	// CLIENT_BACKLOG).
	Rate        float64
	MaxInFlight int
	// WriteShare is the share of calls that are writes.
	WriteShare float64
	// Users are whom the calls are for, in turn; default every harness
	// user.
	Users []*User
	// Deadline of each call; default 10 s.
	Deadline time.Duration
}

// Result is what a load run recorded.
type Result struct {
	Start, End time.Time
	Calls      []Call
	Writes     []*Write
}

// RunLoad runs l until its Duration is over or ctx ends.
func (h *Harness) RunLoad(ctx context.Context, l Load) *Result {
	if l.Users == nil {
		l.Users = h.Users
	}
	if l.Deadline == 0 {
		l.Deadline = 10 * time.Second
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = 2000
	}
	res := &Result{Start: time.Now()}
	var mu sync.Mutex
	record := func(c Call, w *Write) {
		mu.Lock()
		defer mu.Unlock()
		res.Calls = append(res.Calls, c)
		if w != nil {
			res.Writes = append(res.Writes, w)
		}
	}
	var turn atomic.Int64
	one := func() {
		u := l.Users[int(turn.Add(1)-1)%len(l.Users)]
		if l.WriteShare > 0 && rand.Float64() < l.WriteShare {
			c, w := h.write(ctx, u, l.Deadline)
			record(c, w)
			return
		}
		record(h.read(ctx, u, l.Deadline), nil)
	}
	// The run's end stops new calls; calls in flight finish with their
	// own deadline, or they would count as failures of the row.
	running, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	var wg sync.WaitGroup
	if l.Rate <= 0 {
		for range max(l.Workers, 1) {
			wg.Go(func() {
				for running.Err() == nil {
					one()
				}
			})
		}
	} else {
		sem := make(chan struct{}, l.MaxInFlight)
		interval := time.Duration(float64(time.Second) / l.Rate)
		next := time.Now()
		for running.Err() == nil {
			select {
			case sem <- struct{}{}:
				wg.Go(func() {
					defer func() { <-sem }()
					one()
				})
			default:
				record(Call{Op: "read", Start: time.Now(), Code: codes.ResourceExhausted, Reason: "CLIENT_BACKLOG"}, nil)
			}
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	wg.Wait()
	res.End = time.Now()
	h.served.add(res.Calls, l.Users) // for the row's access-log check
	return res
}

// userCtx is an outgoing context with u's token and purpose.
func userCtx(ctx context.Context, u *User, purpose string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+u.Token, "bankbridge-purpose", purpose)
}

// BalanceName is the balance every load user reads: the sandbox checking
// account of the customer they linked as.
func BalanceName(u *User, login string) string {
	return "users/" + u.ID + "/accounts/sandbox~acc-" + login + "-checking/balance"
}

func (h *Harness) read(ctx context.Context, u *User, deadline time.Duration) Call {
	c := Call{Op: "read", User: u.ID, Start: time.Now()}
	ctx, cancel := context.WithTimeout(userCtx(ctx, u, "ACCOUNT_INFORMATION"), deadline)
	defer cancel()
	login := "alice"
	if strings.HasPrefix(u.ID, "dave") {
		login = "dave"
	}
	var hdr metadata.MD
	resp, err := balancev1.NewBalanceServiceClient(h.Conn("balance")).GetBalance(ctx, &balancev1.GetBalanceRequest{Name: BalanceName(u, login)}, grpc.Header(&hdr))
	c.Latency = time.Since(c.Start)
	c.fill(err)
	c.TraceID = traceIDOf(hdr)
	c.Stale = resp.GetBalance().GetStale()
	return c
}

func (h *Harness) write(ctx context.Context, u *User, deadline time.Duration) (Call, *Write) {
	w := &Write{User: u, Key: randomHex(12), Tracking: TrackingNumber()}
	c := Call{Op: "write", User: u.ID, Start: time.Now()}
	client := shippingv1.NewShippingServiceClient(h.Conn("shipping"))
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(userCtx(ctx, u, "ORDER_TRACKING"), deadline)
		var hdr metadata.MD
		resp, err := client.CreateShipment(actx, &shippingv1.CreateShipmentRequest{
			Parent: "users/" + u.ID, Shipment: &shippingv1.Shipment{TrackingNumber: w.Tracking}, IdempotencyKey: w.Key,
		}, grpc.Header(&hdr))
		cancel()
		c.fill(err)
		c.TraceID = traceIDOf(hdr)
		if err == nil {
			w.Acked, w.Name = true, resp.GetShipment().GetName()
		}
		// A caller retries, with the same key, an answer that leaves it
		// unsure whether the write arrived.
		if attempt > 0 || ctx.Err() != nil || (c.Code != codes.Unavailable && c.Code != codes.DeadlineExceeded) {
			break
		}
		if d := apierr.RetryDelay(err); d > 0 && d < time.Second {
			time.Sleep(d)
		}
	}
	c.Latency = time.Since(c.Start)
	return c, w
}

// TrackingNumber is a fresh tracking number in the sandbox carrier's
// format ("SBX", nine digits, a Luhn check digit), which the shipping
// service detects as the sandbox's.
func TrackingNumber() string {
	digits := fmt.Sprintf("%09d", rand.IntN(1_000_000_000))
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 { // doubled: every other digit from the right, the last first
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return "SBX" + digits + fmt.Sprint((10-sum%10)%10)
}

func (c *Call) fill(err error) {
	c.Code, c.Reason, c.RetryHint = codes.OK, "", false
	if err == nil {
		return
	}
	st, _ := status.FromError(err)
	c.Code = st.Code()
	if errors.Is(err, context.DeadlineExceeded) {
		c.Code = codes.DeadlineExceeded
	}
	if info := apierr.Info(err); info != nil {
		c.Reason = info.GetReason()
	}
	c.RetryHint = apierr.RetryDelay(err) > 0
}

// Summary is a set of calls in figures.
type Summary struct {
	Calls, OK, Refused, Stale int
	// Availability is OK / (Calls - Refused): refusals with a retry hint
	// are the suite shedding load as designed, counted apart.
	Availability float64
	P50, P99     time.Duration
	// Goodput is successful calls per second.
	Goodput float64
	Errors  map[string]int
}

// Summarize counts calls that started in [from, to) (zero times: all).
func Summarize(calls []Call, from, to time.Time) Summary {
	s := Summary{Errors: map[string]int{}}
	var lat []time.Duration
	first, last := time.Time{}, time.Time{}
	for _, c := range calls {
		if (!from.IsZero() && c.Start.Before(from)) || (!to.IsZero() && !c.Start.Before(to)) {
			continue
		}
		if first.IsZero() || c.Start.Before(first) {
			first = c.Start
		}
		if end := c.Start.Add(c.Latency); end.After(last) {
			last = end
		}
		s.Calls++
		switch {
		case c.Code == codes.OK:
			s.OK++
			if c.Stale {
				s.Stale++
			}
		case c.Refused():
			s.Refused++
			s.Errors[c.Key()]++
			continue // not in the latency of served calls
		default:
			s.Errors[c.Key()]++
		}
		lat = append(lat, c.Latency)
	}
	if n := s.Calls - s.Refused; n > 0 {
		s.Availability = float64(s.OK) / float64(n)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		s.P50 = lat[len(lat)*50/100]
		s.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if d := last.Sub(first); d > 0 {
		s.Goodput = float64(s.OK) / d.Seconds()
	}
	return s
}

// ErrorsText is Errors as "REASON=n, ..." by count.
func (s Summary) ErrorsText() string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range s.Errors {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || (all[i].v == all[j].v && all[i].k < all[j].k) })
	var parts []string
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s=%d", e.k, e.v))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// CheckWrites reads back every user's shipments: lost are acknowledged
// writes not there, duplicated the tracking numbers there more than once.
func (h *Harness) CheckWrites(ctx context.Context, writes []*Write) (lost, duplicated int, err error) {
	byUser := map[*User][]*Write{}
	for _, w := range writes {
		byUser[w.User] = append(byUser[w.User], w)
	}
	client := shippingv1.NewShippingServiceClient(h.Conn("shipping"))
	for u, ws := range byUser {
		seen := map[string]int{}
		token := ""
		for {
			var resp *shippingv1.ListShipmentsResponse
			// The service may be on its way back from the row's fault.
			for try := 0; ; try++ {
				cctx, cancel := context.WithTimeout(userCtx(ctx, u, "ORDER_TRACKING"), 10*time.Second)
				resp, err = client.ListShipments(cctx, &shippingv1.ListShipmentsRequest{Parent: "users/" + u.ID, PageSize: 100, PageToken: token})
				cancel()
				if err == nil || try == 20 {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				return lost, duplicated, fmt.Errorf("list %s's shipments: %w", u.ID, err)
			}
			for _, s := range resp.GetShipments() {
				seen[s.GetTrackingNumber()]++
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		for _, w := range ws {
			if w.Acked && seen[w.Tracking] == 0 {
				lost++
			}
			if seen[w.Tracking] > 1 {
				duplicated += seen[w.Tracking] - 1
				seen[w.Tracking] = 1 // count each once
			}
		}
	}
	return lost, duplicated, nil
}
