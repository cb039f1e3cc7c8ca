package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestTraceIDComesBackInHeaders(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	t.Run("new trace", func(t *testing.T) {
		var hdr metadata.MD
		if _, err := e.balance.GetBalance(e.as(t, "alice"), aliceBalance, grpc.Header(&hdr)); err != nil {
			t.Fatal(err)
		}
		got := hdr.Get(server.TraceIDHeader)
		if len(got) != 1 || len(got[0]) != 32 {
			t.Fatalf("%s = %v, want one 32-hex trace id", server.TraceIDHeader, got)
		}
		// The server ends its span after the answer is on the wire, so the
		// client may read the answer first.
		found := testkit.Within(5*time.Second, func() bool {
			for _, s := range e.spans.GetSpans() {
				if s.SpanContext.TraceID().String() == got[0] && s.Name == "bankbridge.balance.v1.BalanceService/GetBalance" {
					return true
				}
			}
			return false
		})
		if !found {
			t.Errorf("no exported server span has trace id %s", got[0])
		}
	})
	t.Run("caller's trace continues", func(t *testing.T) {
		traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
		parent := trace.ContextWithSpanContext(e.as(t, "alice"), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true,
		}))
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(parent, carrier)
		ctx := metadata.AppendToOutgoingContext(parent, "traceparent", carrier["traceparent"])
		var hdr metadata.MD
		if _, err := e.balance.GetBalance(ctx, aliceBalance, grpc.Header(&hdr)); err != nil {
			t.Fatal(err)
		}
		if got := hdr.Get(server.TraceIDHeader); len(got) != 1 || got[0] != traceID.String() {
			t.Fatalf("%s = %v, want the caller's %s", server.TraceIDHeader, got, traceID)
		}
	})
}

func TestMetricsExposeRPCs(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	if _, err := e.balance.GetBalance(e.as(t, "alice"), aliceBalance); err != nil {
		t.Fatal(err)
	}
	// The server records the call's duration when the call ends, which is
	// after the answer is on the wire: look until it is there.
	var code int
	var text string
	found := testkit.Within(5*time.Second, func() bool {
		resp, err := http.Get("http://" + e.srv.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		code, text = resp.StatusCode, string(body)
		return code == http.StatusOK && strings.Contains(text, "rpc_server_") && strings.Contains(text, `rpc_server_call_duration_seconds_count{`) && strings.Contains(text, `rpc_method="bankbridge.balance.v1.BalanceService/GetBalance"`)
	})
	if !found {
		t.Fatalf("/metrics (%d) has no RPC server metric for GetBalance:\n%s", code, grepLines(text, "rpc"))
	}
}

// TestNoPersonalDataInTelemetry makes calls whose requests, replies and
// errors carry fixture personal data, then scans every exported span
// attribute, event attribute and log line for it.
func TestNoPersonalDataInTelemetry(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	token := metadataToken(t, ctx)
	_, _ = e.balance.GetBalance(ctx, aliceBalance)
	_, _ = e.balance.GetAccount(ctx, getAccount("users/alice/accounts/sandbox~a1"))
	_, _ = e.balance.GetAccount(ctx, getAccount("users/alice/accounts/sandbox~panic"))
	_, _ = e.balance.GetAccount(ctx, getAccount("users/alice/accounts/sandbox~plainerr"))
	_, _ = e.balance.GetBalance(e.as(t, "bob"), aliceBalance)

	forbidden := []string{fixtureLast4, fmt.Sprint(fixtureAmountUnits), "4111111111111111", "hunter2", token, "users/alice"}
	// Each server span ends after its answer is sent: wait for all five.
	testkit.Within(5*time.Second, func() bool { return len(e.spans.GetSpans()) >= 5 })
	spans := e.spans.GetSpans()
	if len(spans) < 5 {
		t.Fatalf("only %d spans exported", len(spans))
	}
	for _, s := range spans {
		var values []string
		for _, kv := range s.Attributes {
			values = append(values, string(kv.Key)+"="+kv.Value.Emit())
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				values = append(values, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		for _, v := range values {
			for _, f := range forbidden {
				if strings.Contains(v, f) {
					t.Errorf("span %q carries %q in %s", s.Name, f, v)
				}
			}
		}
	}
	// The cause of an unexpected error is logged under its incident id (that
	// is what the id is for), scrubbed of what looks like a secret or
	// personal data: the password in it is not.
	logs := testkit.WithoutRandomFields(e.logs.String())
	for _, f := range forbidden {
		if strings.Contains(logs, f) {
			t.Errorf("logs carry %q", f)
		}
	}
	if !strings.Contains(logs, `"error":"db password=[redacted]"`) {
		t.Errorf("the unexpected error's cause is not logged, scrubbed:\n%s", logs)
	}
}

// TestCallersBaggageIsNotTakenIn: W3C baggage a caller sends with a call
// is not in the handler's context (so no call the service makes passes it
// on), while its trace context is.
func TestCallersBaggageIsNotTakenIn(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	ctx := metadata.AppendToOutgoingContext(e.as(t, "alice"),
		"traceparent", "00-"+traceID.String()+"-00f067aa0ba902b7-01",
		"baggage", "user.iban=DE89370400440532013000,amount=2387.11")
	var hdr metadata.MD
	resp, err := e.balance.GetAccount(ctx, getAccount("users/alice/accounts/sandbox~baggage"), grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if inContext := resp.GetAccount().GetDisplayName(); inContext != "" {
		t.Errorf("the handler's context carries the caller's baggage %q", inContext)
	}
	if got := hdr.Get(server.TraceIDHeader); len(got) != 1 || got[0] != traceID.String() {
		t.Errorf("%s = %v, want the caller's trace %s", server.TraceIDHeader, got, traceID)
	}
}

func metadataToken(t *testing.T, ctx context.Context) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	v := md.Get("authorization")
	if len(v) != 1 {
		t.Fatal("no token in context")
	}
	return strings.TrimPrefix(v[0], "Bearer ")
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
