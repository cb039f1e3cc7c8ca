package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// failing is the sandbox customer whose calls fail.
		failing  string
		wantOpen bool
		// wantReason is what each of the failing customer's calls answers.
		wantReason commonv1.ErrorReason
	}{
		{name: "bank failures open it", failing: "dave", wantOpen: true, wantReason: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
		{name: "business answers do not", failing: "carol", wantOpen: false, wantReason: commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
	}
	for _, tt := range tests {
		for _, tr := range adaptertest.Transports() {
			t.Run(tt.name+"/"+tr.Name, func(t *testing.T) {
				t.Parallel()
				bank := sandboxBank()
				bank.Breaker = runtime.Breaker{FailureRatio: 0.5, MinRequests: 3, OpenFor: 300 * time.Millisecond}
				c := tr.Reach(t, adaptertest.NewSandbox(t), bank)
				alice, failing := adaptertest.Link(t, c, "alice"), adaptertest.Link(t, c, tt.failing)

				for range 5 {
					_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: failing})
					adaptertest.WantReason(t, err, tt.wantReason)
					if strings.Contains(err.Error(), "circuit breaker") {
						break
					}
				}
				// A healthy customer of the same bank shows whether the
				// breaker is open: it is per bank.
				_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: alice})
				if !tt.wantOpen {
					if err != nil {
						t.Fatalf("breaker opened on business answers: %v", err)
					}
					return
				}
				adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
				if !strings.Contains(status.Convert(err).Message(), "circuit breaker open") {
					t.Errorf("want the open breaker's answer, got %q", status.Convert(err).Message())
				}
				if d := retryDelay(err); d <= 0 || d > 300*time.Millisecond {
					t.Errorf("RetryInfo %s, want the time left open (0, 300ms]", d)
				}
				if _, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{}); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
					t.Errorf("GetAdapterInfo with the breaker open: want BANK_UNAVAILABLE, got %v", err)
				}

				// After OpenFor one trial call goes through, and its success
				// closes the breaker.
				time.Sleep(350 * time.Millisecond)
				for i := range 3 {
					if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: alice}); err != nil {
						t.Fatalf("call %d after OpenFor: %v", i, err)
					}
				}
			})
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			bank := sandboxBank()
			bank.RateLimit = runtime.RateLimit{PerSecond: 2, Burst: 2}
			c := tr.Reach(t, adaptertest.NewSandbox(t), bank)
			for i := range 2 {
				if _, err := c.CheckHealth(t.Context(), &adapterv1.CheckHealthRequest{}); err != nil {
					t.Fatalf("call %d within the burst: %v", i, err)
				}
			}
			start := time.Now()
			_, err := c.CheckHealth(t.Context(), &adapterv1.CheckHealthRequest{})
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED)
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("RATE_LIMITED took %s: it must answer at once, not queue", d)
			}
			if d := retryDelay(err); d <= 0 || d > 500*time.Millisecond {
				t.Errorf("RetryInfo %s, want when the next token comes, (0, 500ms]", d)
			}
			time.Sleep(retryDelay(err))
			if _, err := c.CheckHealth(t.Context(), &adapterv1.CheckHealthRequest{}); err != nil {
				t.Errorf("call after RetryInfo's delay: %v", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		callerBudget time.Duration // 0: no caller deadline
		want         time.Duration
		// wantBlamed says whether the bank is blamed: with a breaker that
		// opens on the first failure, whether it opened.
		wantBlamed bool
	}{
		{name: "bank timeout", want: time.Second, wantBlamed: true},
		{name: "shorter caller deadline wins", callerBudget: 200 * time.Millisecond, want: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		for _, tr := range adaptertest.Transports() {
			t.Run(tt.name+"/"+tr.Name, func(t *testing.T) {
				t.Parallel()
				bank := sandboxBank()
				bank.Timeout = time.Second
				bank.Breaker.FailureRatio, bank.Breaker.MinRequests = 0.01, 1
				c := tr.Reach(t, adaptertest.NewSandbox(t), bank)
				erin := adaptertest.Link(t, c, "erin") // every data call of erin's takes 3s

				ctx := t.Context()
				if tt.callerBudget > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.callerBudget)
					defer cancel()
				}
				start := time.Now()
				_, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: erin})
				elapsed := time.Since(start)
				adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
				if retryDelay(err) <= 0 {
					t.Error("BANK_UNAVAILABLE without RetryInfo")
				}
				if elapsed < tt.want || elapsed > tt.want+time.Second {
					t.Errorf("answered after %s, want about %s", elapsed.Round(time.Millisecond), tt.want)
				}
				_, err = c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
				if blamed := err != nil; blamed != tt.wantBlamed {
					t.Errorf("breaker opened: %v, want %v (%v)", blamed, tt.wantBlamed, err)
				}
			})
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		consent string
		want    commonv1.ErrorReason
		// wantInMessage is a part of the message the caller must see.
		wantInMessage string
	}{
		{consent: "raw-error", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "incident"},
		{consent: "status-without-info", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "incident"},
		{consent: "deadline", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "in time"},
		{consent: "panic", want: commonv1.ErrorReason_ERROR_REASON_INTERNAL, wantInMessage: "incident"},
		{consent: "nil-response", want: commonv1.ErrorReason_ERROR_REASON_INTERNAL, wantInMessage: "incident"},
		{consent: "bad-response", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "accounts[0].masked_number.last4 (string.pattern)"},
		{consent: "unknown", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, wantInMessage: "link the bank again"},
		{consent: "revoked", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, wantInMessage: "link the bank again"},
		{consent: "unavailable", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "bank test is unavailable"},
		{consent: "leaky", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, wantInMessage: "does not cover"},
		{consent: "invalid", want: commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, wantInMessage: "refused the request"},
		{consent: "wrong-reason", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, wantInMessage: "outside the protocol (reason USER_MISMATCH)"},
	}
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			// A breaker that never opens, so that each case meets the bank.
			bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Breaker: runtime.Breaker{MinRequests: 1000}}
			c := tr.Reach(t, &adaptertest.TestBank{}, bank)
			for _, tt := range tests {
				t.Run(tt.consent, func(t *testing.T) {
					_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: tt.consent})
					adaptertest.WantReason(t, err, tt.want)
					msg := status.Convert(err).Message()
					if !strings.Contains(msg, tt.wantInMessage) {
						t.Errorf("message %q does not say %q", msg, tt.wantInMessage)
					}
					// Nowhere: not the message, metadata, descriptions or any
					// other detail.
					if wire := fmt.Sprint(status.Convert(err).Proto()); strings.Contains(wire, "DE89") || strings.Contains(wire, "1234.56") {
						t.Errorf("the bank's raw text leaked: %s", wire)
					}
					if d := retryDelay(err); d > time.Hour {
						t.Errorf("RetryInfo %s passed on; callers are asked to wait an hour at most", d)
					}
					if c := status.Code(err); (c == codes.Unavailable || c == codes.ResourceExhausted) && retryDelay(err) <= 0 {
						t.Errorf("%s without RetryInfo", c)
					}
				})
			}
		})
	}
}

// TestErrorDetailsThatPass checks the details of an adapter's answer that
// bankbridge vouches for and passes on.
func TestErrorDetailsThatPass(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			c := tr.Reach(t, &adaptertest.TestBank{}, runtime.Bank{ID: "test", DisplayName: "Test Bank"})
			_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "invalid"})
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			var fields []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField()+" "+v.GetReason())
					}
				}
			}
			if want := []string{"bank_consent_id bank.consent_format"}; !slices.Equal(fields, want) {
				t.Errorf("field violations %q, want %q: the path and rule of a well-formed one only", fields, want)
			}
			_, err = c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "unavailable"})
			if d := retryDelay(err); d != time.Second {
				t.Errorf("RetryInfo %s, want the adapter's 1s", d)
			}
		})
	}
}

// TestRestartedSandboxForgetsConsents is the scenario: the sandbox
// restarts, keeps no consents, and a call on one granted before reads as
// the bank no longer honouring it, in bankbridge's words.
func TestRestartedSandboxForgetsConsents(t *testing.T) {
	t.Parallel()
	first := adaptertest.NewSandbox(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	keys := adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} })
	srv := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(first, keys))
	go func() { _ = srv.Serve(lis) }()
	bank := runtime.Bank{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindRemote, Endpoint: addr}
	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey}))), "sandbox")
	consent := adaptertest.Link(t, c, "alice")
	if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv = grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(adaptertest.NewSandbox(t), keys))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	var lastErr error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, lastErr = c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
		if !apierr.Is(lastErr, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
			break // reconnected
		}
		time.Sleep(50 * time.Millisecond)
	}
	adaptertest.WantReason(t, lastErr, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	msg := status.Convert(lastErr).Message()
	if strings.Contains(msg, "knows no such consent") || !strings.Contains(msg, "link the bank again") {
		t.Errorf("message %q: want bankbridge's words for the reason, not the bank's", msg)
	}
}

func TestUnreachableBank(t *testing.T) {
	t.Parallel()
	bank := runtime.Bank{ID: "gone", DisplayName: "Gone Bank", Kind: runtime.KindRemote, Endpoint: closedPort(t)}
	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(nil))), "gone")
	_, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	if retryDelay(err) <= 0 {
		t.Error("BANK_UNAVAILABLE without RetryInfo")
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	newBank := func(t *testing.T, breaker runtime.Breaker, opts ...runtime.Option) (*adaptertest.TestBank, *adaptertest.KeySet, *adaptertest.Credentials, adapterv1.BankAdapterServiceClient) {
		tb := &adaptertest.TestBank{}
		keys := &adaptertest.KeySet{Keys: []string{adaptertest.TestAPIKey}}
		creds := adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey, "Client_ID": "bankbridge-dev"})
		bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindRemote,
			Endpoint: adaptertest.Serve(t, tb, adapters.WithAPIKeys(keys.Get)), Breaker: breaker}
		opts = append(opts, runtime.WithCredentials(creds))
		return tb, keys, creds, adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, opts...), "test")
	}
	listOK := func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
		_, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: "ok"})
		return err
	}

	t.Run("sent as metadata with the caller's own", func(t *testing.T) {
		t.Parallel()
		tb, _, _, c := newBank(t, runtime.Breaker{})
		ctx := metadata.AppendToOutgoingContext(t.Context(),
			"bankbridge-purpose", "ACCOUNT_INFORMATION",
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			adapters.APIKeyMetadata, "forged-by-the-caller")
		if err := listOK(ctx, c); err != nil {
			t.Fatal(err)
		}
		md := tb.Metadata()
		for key, want := range map[string]string{
			"bankbridge-purpose":              "ACCOUNT_INFORMATION",
			"traceparent":                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			adapters.APIKeyMetadata:           adaptertest.TestAPIKey,
			"bankbridge-credential-client_id": "bankbridge-dev",
		} {
			if got := md.Get(key); len(got) != 1 || got[0] != want {
				t.Errorf("metadata %s = %q, want [%q]", key, got, want)
			}
		}
	})

	t.Run("rotation is used on the next call", func(t *testing.T) {
		t.Parallel()
		_, keys, creds, c := newBank(t, runtime.Breaker{})
		if err := listOK(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		keys.Set("rotated-key-0002")
		creds.Set(map[string]string{"api_key": "rotated-key-0002"}, nil)
		if err := listOK(t.Context(), c); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	})

	t.Run("a rejected key is CREDENTIALS_UNAVAILABLE for callers, logged for operators, and spares the breaker", func(t *testing.T) {
		t.Parallel()
		var logs bytes.Buffer // written only by the calls below, read after them
		_, _, creds, c := newBank(t, runtime.Breaker{FailureRatio: 0.01, MinRequests: 1, OpenFor: time.Minute},
			runtime.WithRegistryLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		creds.Set(map[string]string{"api_key": "wrong-key-0000"}, nil)
		for range 3 {
			err := listOK(t.Context(), c)
			// Not UNAUTHENTICATED: the caller's token is fine; bankbridge's key is not.
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE)
			if retryDelay(err) <= 0 {
				t.Error("CREDENTIALS_UNAVAILABLE without RetryInfo")
			}
		}
		if !strings.Contains(logs.String(), "bank rejected bankbridge's credentials") || !strings.Contains(logs.String(), "bankbridge.bank_id=test") {
			t.Errorf("no log line naming the bank whose key was rejected:\n%s", logs.String())
		}
		creds.Set(map[string]string{"api_key": adaptertest.TestAPIKey}, nil)
		if err := listOK(t.Context(), c); err != nil {
			t.Fatalf("after the key was fixed: %v", err)
		}
	})

	t.Run("a failing source is CREDENTIALS_UNAVAILABLE and spares the breaker", func(t *testing.T) {
		t.Parallel()
		_, _, creds, c := newBank(t, runtime.Breaker{FailureRatio: 0.01, MinRequests: 1, OpenFor: time.Minute})
		creds.Set(nil, context.DeadlineExceeded)
		for range 3 {
			err := listOK(t.Context(), c)
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE)
			if retryDelay(err) <= 0 {
				t.Error("CREDENTIALS_UNAVAILABLE without RetryInfo")
			}
		}
		creds.Set(map[string]string{"api_key": adaptertest.TestAPIKey}, nil)
		if err := listOK(t.Context(), c); err != nil {
			t.Fatalf("after the source recovered: %v", err)
		}
	})

	t.Run("a key that cannot be metadata is refused before the call", func(t *testing.T) {
		t.Parallel()
		tb, _, creds, c := newBank(t, runtime.Breaker{})
		creds.Set(map[string]string{"api_key": adaptertest.TestAPIKey, "bad key": "x"}, nil)
		adaptertest.WantReason(t, listOK(t.Context(), c), commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE)
		if tb.Metadata() != nil {
			t.Error("the adapter was called")
		}
	})
}

func TestInProcessGetsNoCredentials(t *testing.T) {
	t.Parallel()
	tb := &adaptertest.TestBank{}
	bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindInProcess, InProcess: "test"}
	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank},
		runtime.WithInProcess("test", tb), runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey}))), "test")
	ctx := metadata.AppendToOutgoingContext(t.Context(), "bankbridge-purpose", "ACCOUNT_INFORMATION", adapters.APIKeyMetadata, "forged")
	if _, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: "ok"}); err != nil {
		t.Fatal(err)
	}
	md := tb.Metadata()
	if got := md.Get("bankbridge-purpose"); len(got) != 1 {
		t.Errorf("purpose did not pass through: %v", md)
	}
	if got := adapters.Credentials(metadata.NewIncomingContext(t.Context(), md)); len(got) != 0 {
		t.Errorf("an in-process adapter got credentials: %v", got)
	}
}

func TestStreamErrorsAreMapped(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			c := tr.Reach(t, adaptertest.NewSandbox(t), sandboxBank())
			stream, err := c.StreamEvents(t.Context(), &adapterv1.StreamEventsRequest{ResumeCursor: "not-a-cursor"})
			if err == nil {
				_, err = stream.Recv()
			}
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)

			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			stream, err = c.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("a stream ended by the caller's deadline: want DEADLINE_EXCEEDED, got %v", err)
			}
		})
	}
}
