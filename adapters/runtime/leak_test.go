package runtime_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// leakyBank is testBank whose ListAccounts puts a number where the consent
// id says, and which streams one event that shows an IBAN between two that
// do not.
type leakyBank struct{ *adaptertest.TestBank }

func (b leakyBank) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := b.TestBank.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(b)
	return info, nil
}

const (
	leakedIBAN = "DE89 3704 0044 0532 0130 00"
	leakedCard = "4111 1111 1111 1111"
)

func (leakyBank) ListAccounts(_ context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	account := &adapterv1.Account{
		BankAccountId: "acc-1", DisplayName: "Everyday account", Type: adapterv1.AccountType_ACCOUNT_TYPE_CURRENT, CurrencyCode: "EUR",
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "3000", Display: "•••• 3000"},
	}
	switch req.GetBankConsentId() {
	case "ok":
	case "opaque-id":
		account.BankAccountId = "4111111111111111" // an id, which may be all digits
		account.MaskedNumber.Display = "****3000"
	case "iban-in-name":
		account.DisplayName = "Salary " + leakedIBAN
	case "iban-in-masked":
		account.MaskedNumber.Display = strings.ToLower(strings.ReplaceAll(leakedIBAN, " ", ""))
	case "card-in-masked":
		account.MaskedNumber.Display = leakedCard
	default:
		return nil, errors.New("unexpected consent")
	}
	return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{account}}, nil
}

func (leakyBank) StreamEvents(_ context.Context, _ *adapterv1.StreamEventsRequest, send func(*adapterv1.StreamEventsResponse) error) error {
	for i, text := range []string{"Hello, this is Anna", "Your IBAN is " + leakedIBAN, "Anything else?"} {
		err := send(&adapterv1.StreamEventsResponse{
			Cursor: string(rune('a' + i)), EventTime: timestamppb.Now(),
			Event: &adapterv1.StreamEventsResponse_AgentMessage{AgentMessage: &adapterv1.AgentMessage{
				CaseId: "case-1", MessageId: string(rune('a' + i)), AgentDisplayName: "Anna", Text: text,
			}},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// leakCounts reads bankbridge.adapter.leaks_refused by its attributes.
func leakCounts(t *testing.T, reader *sdkmetric.ManualReader) map[attribute.Distinct]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[attribute.Distinct]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "bankbridge.adapter.leaks_refused" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				out[dp.Attributes.Equivalent()] += dp.Value
			}
		}
	}
	return out
}

func leakAttrs(method, kind string) attribute.Distinct {
	set := attribute.NewSet(
		attribute.String("bankbridge.bank_id", "test"),
		attribute.String("rpc.method", method),
		attribute.String("bankbridge.leak_kind", kind),
	)
	return set.Equivalent()
}

// TestRegistryRefusesLeaks serves an adapter that shows full numbers, in
// process and remote, and checks what the registry's caller, its metrics
// and its log see.
func TestRegistryRefusesLeaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		consent  string
		wantPath string // "" for a response that passes
		wantKind string
	}{
		{consent: "ok"},
		{consent: "opaque-id"},
		{consent: "iban-in-name", wantPath: "accounts[0].display_name", wantKind: "iban"},
		{consent: "iban-in-masked", wantPath: "accounts[0].masked_number.display", wantKind: "iban"},
		{consent: "card-in-masked", wantPath: "accounts[0].masked_number.display", wantKind: "card"},
	}
	for _, tr := range []string{"in-process", "remote"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			reader := sdkmetric.NewManualReader()
			var logs adaptertest.SyncBuffer
			// A breaker that opens on the first failure: leaks must not
			// count as one.
			bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Breaker: runtime.Breaker{FailureRatio: 0.01, MinRequests: 1, OpenFor: time.Minute}}
			opts := []runtime.Option{
				runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
				runtime.WithRegistryLogger(slog.New(slog.NewTextHandler(&logs, nil))),
			}
			a := leakyBank{&adaptertest.TestBank{}}
			if tr == "in-process" {
				bank.Kind, bank.InProcess = runtime.KindInProcess, "leaky"
				opts = append(opts, runtime.WithInProcess("leaky", a))
			} else {
				bank.Kind, bank.Endpoint = runtime.KindRemote, adaptertest.Serve(t, a, adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))
				opts = append(opts, runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey})))
			}
			c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, opts...), "test")

			for _, tt := range tests {
				resp, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: tt.consent})
				if tt.wantPath == "" {
					if err != nil || len(resp.GetAccounts()) != 1 {
						t.Errorf("%s: %v, %v; want the account", tt.consent, resp, err)
					}
					continue
				}
				if resp != nil {
					t.Errorf("%s: the caller got the response %v", tt.consent, resp)
				}
				adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
				if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantPath) || !strings.Contains(msg, tt.wantKind) {
					t.Errorf("%s: message %q does not name %s and %s", tt.consent, msg, tt.wantPath, tt.wantKind)
				}
				if retryDelay(err) <= 0 {
					t.Errorf("%s: BANK_UNAVAILABLE without RetryInfo", tt.consent)
				}
				wire, _ := proto.Marshal(status.Convert(err).Proto())
				if leaked(string(wire)) {
					t.Errorf("%s: the number reached the caller: %q", tt.consent, wire)
				}
			}

			counts := leakCounts(t, reader)
			for attrs, want := range map[attribute.Distinct]int64{
				leakAttrs("ListAccounts", "iban"): 2,
				leakAttrs("ListAccounts", "card"): 1,
			} {
				if counts[attrs] != want {
					t.Errorf("leaks_refused%v = %d, want %d (all: %v)", attrs, counts[attrs], want, counts)
				}
			}
			out := logs.String()
			for _, want := range []string{"bankbridge.field_path=accounts[0].display_name", "bankbridge.leak_kind=iban", "bankbridge.bank_id=test", "rpc.method=ListAccounts"} {
				if !strings.Contains(out, want) {
					t.Errorf("log does not say %s:\n%s", want, out)
				}
			}
			if leaked(out) {
				t.Errorf("the number reached the log:\n%s", out)
			}

			// The bank is not blamed: with a breaker that opens on one
			// failure, the next call still reaches it.
			if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "ok"}); err != nil {
				t.Errorf("after the refused leaks: %v; leaks must not open the breaker", err)
			}

			// A stream loses the event that shows the IBAN, and only it.
			stream, err := c.StreamEvents(t.Context(), &adapterv1.StreamEventsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for {
				ev, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				texts = append(texts, ev.GetAgentMessage().GetText())
			}
			if strings.Join(texts, "|") != "Hello, this is Anna|Anything else?" {
				t.Errorf("stream gave %q, want the two events without a number", texts)
			}
			if n := leakCounts(t, reader)[leakAttrs("StreamEvents", "iban")]; n != 1 {
				t.Errorf("leaks_refused{StreamEvents, iban} = %d, want 1", n)
			}
		})
	}
}

// leaked reports whether s holds the test's IBAN or card number, in any of
// the forms the test bank wrote them.
func leaked(s string) bool {
	s = strings.ToUpper(s)
	for _, n := range []string{leakedIBAN, leakedCard} {
		if strings.Contains(s, n) || strings.Contains(s, strings.ReplaceAll(n, " ", "")) {
			return true
		}
	}
	return false
}
