package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
)

// BenchmarkConversationMessages measures messages through support
// conversations on the dev stack: 200 users by default
// (BANKBRIDGE_BENCH_CONVERSATIONS), each with a VALID link as the sandbox's
// alice, one conversation and its StreamConversation open, over gRPC
// straight to the one support instance. 32 senders send b.N messages
// (-benchtime Nx) round-robin over the users; a user has one message in
// flight at a time, as a person typing has, so a sender waits for its
// message's reply before sending the next. The message is "thanks", which
// the assistant answers from its rules alone (no bank, no balance
// service), so the figure is the service's own path: the kit's checks,
// the store, the outbox, the relay, the bus and the stream. A message is
// through when the assistant's reply reaches its user's stream; it
// reports messages/s, the latency from the send to that reply (p50, p99),
// and that of the SendMessage call alone. The users are set up once, and
// the sub-benchmark sends. Run it with `make bench`.
func BenchmarkConversationMessages(b *testing.B) {
	users := benchCount("BANKBRIDGE_BENCH_CONVERSATIONS", 200)
	const senders, conns, purpose = 32, 32, "CUSTOMER_SUPPORT"
	pool := make([]*grpc.ClientConn, conns)
	for i := range pool {
		pool[i] = dial(b, shared.stack.Addr("support"))
	}
	chats := make([]*benchChat, users)
	inParallel(users, 16, func(i int) {
		user := fmt.Sprintf("chat%04d", i)
		tok := devToken(b, user)
		linkFor(b, tok, user, "alice", supportScopes, supportPurposes)
		c := supportv1.NewSupportServiceClient(pool[i%conns])
		resp, err := c.CreateConversation(grpcCtx(tok, purpose), &supportv1.CreateConversationRequest{
			Parent: "users/" + user, Conversation: &supportv1.Conversation{BankId: "sandbox"}, IdempotencyKey: randomKey(),
		})
		if err != nil {
			b.Errorf("create conversation: %v", err)
			return
		}
		chats[i] = &benchChat{client: c, token: tok, name: resp.GetConversation().GetName(), ended: make(chan struct{}), waiting: map[string]chan time.Time{}}
	})
	if b.Failed() {
		b.FailNow()
	}

	// Every conversation's stream, open (headers) before the first send.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var retried atomic.Int64
	inParallel(users, 64, func(i int) {
		c := chats[i]
		st, retries, err := openStream(func() (grpc.ServerStreamingClient[supportv1.StreamConversationResponse], error) {
			return c.client.StreamConversation(authCtx(ctx, c.token, purpose), &supportv1.StreamConversationRequest{Name: c.name})
		})
		retried.Add(int64(retries))
		if err != nil {
			b.Errorf("open the stream of conversation %d: %v", i, err)
			return
		}
		go c.read(st)
	})
	if b.Failed() {
		b.FailNow()
	}

	b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
		latencies := make([]time.Duration, b.N) // send to the reply on the stream
		calls := make([]time.Duration, b.N)     // SendMessage alone
		var next, sendRetries atomic.Int64
		var failMu sync.Mutex
		var failed error
		fail := func(err error) {
			failMu.Lock()
			failed = cmp.Or(failed, err)
			failMu.Unlock()
		}
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= b.N {
						return
					}
					call, through, retries, err := chats[i%users].send()
					sendRetries.Add(int64(retries))
					if err != nil {
						fail(fmt.Errorf("message %d: %w", i, err))
						return
					}
					calls[i], latencies[i] = call, through
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if failed != nil {
			for _, line := range logErrors(shared.logs.String(), 5) {
				b.Log(line)
			}
			b.Fatal(failed)
		}
		slices.Sort(latencies)
		slices.Sort(calls)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(millis(latencies[len(latencies)*50/100]), "p50-ms")
		b.ReportMetric(millis(latencies[len(latencies)*99/100]), "p99-ms")
		b.ReportMetric(millis(calls[len(calls)*50/100]), "send-p50-ms")
		b.ReportMetric(millis(calls[len(calls)*99/100]), "send-p99-ms")
		b.ReportMetric(float64(sendRetries.Load()), "send-retries")
		b.ReportMetric(float64(retried.Load()), "open-retries")
	})
}

// benchChat is one user's conversation in BenchmarkConversationMessages:
// its stream's reader hands each assistant reply to the sender waiting
// for it.
type benchChat struct {
	client supportv1.SupportServiceClient
	token  string
	name   string // users/{user}/conversations/{conversation}

	turn    sync.Mutex // held by the sender whose message is in flight
	mu      sync.Mutex
	waiting map[string]chan time.Time // by client_message_id
	ended   chan struct{}             // closed when the stream ends; err says why
	err     error
}

// expect registers a sender's wait for the reply to the message with
// client message id id; the channel receives when the reply was read.
func (c *benchChat) expect(id string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	return ch
}

// read follows the stream until it ends. A conversation's events arrive in
// order, and the assistant's answer is written in the transaction that
// stores the user's message, right after it: the assistant message that
// follows a user message is its reply.
func (c *benchChat) read(st grpc.ServerStreamingClient[supportv1.StreamConversationResponse]) {
	var asked string // client_message_id of the user message awaiting its reply
	for {
		resp, err := st.Recv()
		if err != nil {
			c.err = err
			close(c.ended)
			return
		}
		at := time.Now()
		m := resp.GetMessageAdded()
		switch m.GetSenderRole() {
		case supportv1.ParticipantRole_PARTICIPANT_ROLE_USER:
			asked = m.GetClientMessageId()
		case supportv1.ParticipantRole_PARTICIPANT_ROLE_ASSISTANT:
			if asked == "" {
				continue // the greeting, published just before the stream opened
			}
			c.mu.Lock()
			ch := c.waiting[asked]
			delete(c.waiting, asked)
			c.mu.Unlock()
			if ch != nil {
				ch <- at
			}
			asked = ""
		}
	}
}

// send sends the user's next message, once the previous one has its
// reply, and waits for this one's. It returns how long the SendMessage
// call took, how long until the reply was read from the stream, and how
// many retries the call took.
func (c *benchChat) send() (call, through time.Duration, retries int, err error) {
	c.turn.Lock()
	defer c.turn.Unlock()
	id := randomKey()
	reply := c.expect(id)
	t0 := time.Now()
	retries, err = c.sendThanks(id)
	call = time.Since(t0)
	if err != nil {
		return call, 0, retries, err
	}
	select {
	case at := <-reply:
		return call, at.Sub(t0), retries, nil
	case <-c.ended:
		return call, 0, retries, fmt.Errorf("the conversation's stream ended: %w", c.err)
	case <-time.After(30 * time.Second):
		return call, 0, retries, errors.New("no reply on the conversation's stream within 30s")
	}
}

// sendThanks sends "thanks" with client message id id, again with the
// same id after a refusal that says to retry, and returns how many
// retries it took.
func (c *benchChat) sendThanks(id string) (int, error) {
	for attempt := 1; ; attempt++ {
		_, err := c.client.SendMessage(grpcCtx(c.token, "CUSTOMER_SUPPORT"), &supportv1.SendMessageRequest{
			Parent: c.name, Message: &supportv1.Message{Text: "thanks", ClientMessageId: id},
		})
		if err == nil || status.Code(err) != codes.Unavailable || attempt == 5 {
			return attempt - 1, err
		}
		time.Sleep(cmp.Or(apierr.RetryDelay(err), 100*time.Millisecond))
	}
}

// BenchmarkAlertFanout opens one WatchAlerts stream per user on the one
// support instance of the dev stack — 1,000 users by default
// (BANKBRIDGE_BENCH_ALERT_WATCHERS), each with a VALID link as the sandbox
// customer alice covering fraud alerts — then has the sandbox bank raise
// a fraud alert for alice through its admin endpoint: one alert per VALID
// consent of alice's, each a FraudAlert event on the bank's event stream,
// which the support replica holding the bank's lease applies one by one.
// Other benchmarks' and tests' users link as alice too and get alerts of
// their own; only this benchmark's streams are counted. It reports how
// many streams received their alert, the latency from just before the
// trigger to receipt (p50, p99, max), how many alerts the trigger raised
// in all, and the support process's resident memory with every stream
// open. Run it with `make bench`.
func BenchmarkAlertFanout(b *testing.B) {
	watchers := benchCount("BANKBRIDGE_BENCH_ALERT_WATCHERS", 1000)
	const workers, conns, purpose = 16, 32, "FRAUD_PREVENTION"
	pool := make([]*grpc.ClientConn, conns)
	for i := range pool {
		pool[i] = dial(b, shared.stack.Addr("support"))
	}
	user := func(i int) string { return fmt.Sprintf("alerts%05d", i) }
	tokens := make([]string, watchers)
	inParallel(watchers, workers, func(i int) {
		tok := devToken(b, user(i))
		linkFor(b, tok, user(i), "alice", supportScopes, supportPurposes)
		tokens[i] = tok
	})
	if b.Failed() {
		b.FailNow()
	}

	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		type receipt struct {
			watcher int
			alertID string
			at      time.Time
		}
		got := make(chan receipt, 2*watchers)
		var endedMu sync.Mutex
		ended := map[string]int{} // streams that ended before their alert, by status
		end := func(err error) {
			endedMu.Lock()
			ended[status.Code(err).String()+" "+apierr.ReasonString(apierr.Reason(err))]++
			endedMu.Unlock()
		}
		var retried atomic.Int64
		// At most a few hundred opens in flight, as users come and go: the
		// streams are concurrent, not their openings.
		inParallel(watchers, 256, func(i int) {
			c := supportv1.NewSupportServiceClient(pool[i%conns])
			st, retries, err := openStream(func() (grpc.ServerStreamingClient[supportv1.WatchAlertsResponse], error) {
				return c.WatchAlerts(authCtx(ctx, tokens[i], purpose), &supportv1.WatchAlertsRequest{Parent: "users/" + user(i)})
			})
			retried.Add(int64(retries))
			if err != nil {
				end(err)
				return
			}
			prefix := "users/" + user(i) + "/alerts/sandbox~"
			go func() {
				for {
					resp, err := st.Recv()
					if err != nil {
						end(err)
						return
					}
					at := time.Now()
					if id, ok := strings.CutPrefix(resp.GetAlert().GetName(), prefix); ok && resp.GetAlert().GetState() == supportv1.AlertState_ALERT_STATE_NEW {
						select {
						case got <- receipt{watcher: i, alertID: id, at: at}:
						default:
						}
					}
				}
			}()
		})
		rss := residentMiB(b, "support")

		raised := time.Now()
		ids := raiseFraudAlerts(b, "alice")
		ours := make(map[string]bool, len(ids))
		for _, id := range ids {
			ours[id] = true
		}
		var latencies []time.Duration
		received := make([]bool, watchers)
		timeout := time.After(2 * time.Minute)
	collect:
		for len(latencies) < watchers {
			select {
			case r := <-got:
				if ours[r.alertID] && !received[r.watcher] {
					received[r.watcher] = true
					latencies = append(latencies, r.at.Sub(raised))
				}
			case <-timeout:
				break collect
			}
		}
		cancel()
		endedMu.Lock()
		for why, n := range ended {
			if !strings.HasPrefix(why, "Canceled") {
				b.Logf("%d streams ended before their alert: %s", n, why)
				for _, line := range logErrors(shared.logs.String(), 5) {
					b.Log(line)
				}
			}
		}
		endedMu.Unlock()
		if len(latencies) == 0 {
			b.Fatal("no stream received its alert")
		}
		slices.Sort(latencies)
		b.ReportMetric(float64(watchers), "streams")
		b.ReportMetric(float64(len(latencies)), "delivered")
		b.ReportMetric(float64(len(ids)), "alerts-raised")
		b.ReportMetric(float64(retried.Load()), "open-retries")
		b.ReportMetric(millis(latencies[len(latencies)*50/100]), "p50-ms")
		b.ReportMetric(millis(latencies[len(latencies)*99/100]), "p99-ms")
		b.ReportMetric(millis(latencies[len(latencies)-1]), "max-ms")
		b.ReportMetric(rss, "rss-MiB")
	}
}

// raiseFraudAlerts has the sandbox bank raise a fraud alert for the
// customer with the login, one per VALID consent of theirs covering fraud
// alerts, and returns the alerts' ids.
func raiseFraudAlerts(tb testing.TB, login string) []string {
	tb.Helper()
	resp, err := shared.http.Post("https://"+shared.stack.AdminAddr("sandbox")+"/admin/fraud-alerts?user="+login, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AlertIDs []string `json:"alert_ids"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("trigger fraud alerts: %d %v", resp.StatusCode, err)
	}
	return out.AlertIDs
}

// openStream opens a server stream as a client does, and returns once the
// server has subscribed it (its headers came): a refusal that says to
// retry (UNAVAILABLE, with RetryInfo) is retried after its delay, at most
// 4 times. It returns the stream and how many retries it took.
func openStream[Resp any](open func() (grpc.ServerStreamingClient[Resp], error)) (grpc.ServerStreamingClient[Resp], int, error) {
	for attempt := 1; ; attempt++ {
		st, err := open()
		if err == nil {
			// Header hides a refusal (nil, nil); Recv reports it.
			var md metadata.MD
			if md, err = st.Header(); err == nil && md == nil {
				if _, err = st.Recv(); err == nil {
					err = errors.New("the stream sent a message before its headers")
				}
			}
		}
		if err == nil {
			return st, attempt - 1, nil
		}
		if status.Code(err) != codes.Unavailable || attempt == 5 {
			return nil, attempt - 1, err
		}
		time.Sleep(cmp.Or(apierr.RetryDelay(err), 100*time.Millisecond))
	}
}

// authCtx is grpcCtx under parent, for a stream that ends with parent.
func authCtx(parent context.Context, token, purpose string) context.Context {
	return metadata.AppendToOutgoingContext(parent, "authorization", "Bearer "+token, "bankbridge-purpose", purpose)
}

// inParallel calls f for 0..n-1 from at most workers goroutines at once,
// and returns when every call has. f may fail its benchmark with Error,
// or with Fatal, which ends that call only.
func inParallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				done := make(chan struct{})
				// A Fatal in f ends its goroutine (runtime.Goexit), not the worker.
				go func() { defer close(done); f(i) }()
				<-done
			}
		})
	}
	wg.Wait()
}

// benchCount is the positive integer in the environment variable, or def.
func benchCount(env string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
