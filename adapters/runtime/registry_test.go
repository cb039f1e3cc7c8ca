package runtime_test

import (
	"fmt"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestNewRegistryRefuses(t *testing.T) {
	t.Parallel()
	inProcess := func(id, name string) runtime.Bank {
		return runtime.Bank{ID: id, DisplayName: "Bank", Kind: runtime.KindInProcess, InProcess: name}
	}
	remote := runtime.Bank{ID: "remote", DisplayName: "Remote Bank", Kind: runtime.KindRemote, Endpoint: "127.0.0.1:9400"}
	tests := []struct {
		name    string
		banks   []runtime.Bank
		opts    []runtime.Option
		wantErr string
	}{
		{
			name:    "duplicate ids",
			banks:   []runtime.Bank{inProcess("test", "test"), inProcess("test", "test")},
			opts:    []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{})},
			wantErr: `banks[1] (id "test"): id: duplicate of banks[0]`,
		},
		{
			name:    "in-process adapter not given",
			banks:   []runtime.Bank{inProcess("test", "missing")},
			opts:    []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{})},
			wantErr: `banks[0] (id "test"): in_process: no adapter "missing" given (WithInProcess)`,
		},
		{
			name:    "in-process adapter given twice",
			banks:   []runtime.Bank{inProcess("test", "test")},
			opts:    []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{}), runtime.WithInProcess("test", &adaptertest.TestBank{})},
			wantErr: `in-process adapter "test": given twice`,
		},
		{
			name:    "nil in-process adapter",
			banks:   []runtime.Bank{inProcess("test", "test")},
			opts:    []runtime.Option{runtime.WithInProcess("test", nil)},
			wantErr: `in-process adapter "test": nil`,
		},
		{
			name:    "remote bank without credentials",
			banks:   []runtime.Bank{remote},
			wantErr: `banks[0] (id "remote"): kind remote: no CredentialSource given (WithCredentials)`,
		},
		{
			name:    "adapter serving another bank",
			banks:   []runtime.Bank{inProcess("other", "test")},
			opts:    []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{})},
			wantErr: `banks[0] (id "other"): in_process: adapter "test" serves bank "test", not "other"`,
		},
		{
			name:  "adapter listing a capability it does not implement",
			banks: []runtime.Bank{inProcess("test", "test")},
			opts: []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{InfoCaps: []adapterv1.Capability{
				adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES, adapterv1.Capability_CAPABILITY_FRAUD,
			}})},
			wantErr: "adapter info lists capabilities it does not implement: FRAUD",
		},
		{
			name:  "adapter omitting a capability it implements",
			banks: []runtime.Bank{inProcess("test", "test")},
			opts: []runtime.Option{runtime.WithInProcess("test", &adaptertest.TestBank{InfoCaps: []adapterv1.Capability{
				adapterv1.Capability_CAPABILITY_ACCOUNTS,
			}})},
			wantErr: "adapter info omits capabilities it implements: BALANCES",
		},
		{
			name:    "invalid bank",
			banks:   []runtime.Bank{{ID: "dave", DisplayName: "Dave's Bank", Kind: runtime.KindRemote}},
			opts:    []runtime.Option{runtime.WithCredentials(adaptertest.NewCredentials(nil))},
			wantErr: `banks[0] (id "dave"): endpoint: required for kind remote`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := runtime.NewRegistry(tt.banks, tt.opts...)
			if err == nil {
				r.Close()
				t.Fatalf("want an error saying %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistryBanks(t *testing.T) {
	t.Parallel()
	banks := []runtime.Bank{
		{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindInProcess, InProcess: "test"},
		{ID: "remote", DisplayName: "Remote Bank", Kind: runtime.KindRemote, Endpoint: "127.0.0.1:9400", Timeout: 2 * time.Second,
			TLS: &runtime.TLS{ServerName: "bank.example"}},
	}
	r := adaptertest.NewRegistry(t, banks, runtime.WithInProcess("test", &adaptertest.TestBank{}), runtime.WithCredentials(adaptertest.NewCredentials(nil)))

	got := r.Banks()
	if len(got) != 2 || got[0].ID != "test" || got[1].ID != "remote" {
		t.Fatalf("Banks() = %+v, want test then remote", got)
	}
	b, ok := r.Bank("remote")
	if !ok {
		t.Fatal(`Bank("remote") not found`)
	}
	want := runtime.Bank{
		ID: "remote", DisplayName: "Remote Bank", Kind: runtime.KindRemote, Endpoint: "127.0.0.1:9400",
		VaultPath: "banks/remote", Timeout: 2 * time.Second,
		RateLimit:   runtime.RateLimit{PerSecond: 50, Burst: 100},
		Breaker:     runtime.Breaker{FailureRatio: 0.6, MinRequests: 40, Window: 10 * time.Second, OpenFor: 30 * time.Second},
		MaxInFlight: 64,
		Keepalive:   runtime.Keepalive{Time: 10 * time.Second, Timeout: 5 * time.Second},
		Retry:       runtime.Retry{Backoff: 50 * time.Millisecond},
	}
	if b.TLS == nil || b.TLS.ServerName != "bank.example" {
		t.Errorf("TLS = %+v", b.TLS)
	}
	b.TLS.ServerName = "changed.example" // a copy: the registry must not see it
	b.TLS = nil
	if b != want {
		t.Errorf("Bank(remote) = %+v, want %+v", b, want)
	}
	if again, _ := r.Bank("remote"); again.TLS.ServerName != "bank.example" {
		t.Error("changing a returned Bank changed the registry's")
	}
	if _, ok := r.Bank("nope"); ok {
		t.Error(`Bank("nope") found`)
	}
}

// TestCallerCannotChooseEndpoint shows that a caller names banks by id
// only: an address, even one where something listens, is no bank.
func TestCallerCannotChooseEndpoint(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()

	r := adaptertest.NewRegistry(t, []runtime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox"}},
		runtime.WithInProcess("sandbox", adaptertest.NewSandbox(t)))
	for _, id := range []string{lis.Addr().String(), "dns:///" + lis.Addr().String(), "../sandbox", "SANDBOX", ""} {
		_, err := r.Client(id)
		adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND)
		if strings.Contains(err.Error(), lis.Addr().String()) {
			t.Errorf("the error echoes the caller's input: %v", err)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the registry connected to an address a caller named (%d connections)", n)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	t.Parallel()
	r, err := runtime.NewRegistry([]runtime.Bank{{ID: "sandbox", DisplayName: "Sandbox Bank", Kind: runtime.KindInProcess, InProcess: "sandbox"}},
		runtime.WithInProcess("sandbox", adaptertest.NewSandbox(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := adaptertest.Client(t, r, "sandbox")
	if _, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
}

// TestRegistryRefusesBadPurchaseDetails shows that an adapter's purchase
// details that break the protocol's rules (here one line in another
// currency, rule purchase_details.single_currency) never reach a caller:
// the call fails as the bank's, naming the rule only, never the text the
// adapter sent.
func TestRegistryRefusesBadPurchaseDetails(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			c := tr.Reach(t, adaptertest.PurchaseBank{TestBank: &adaptertest.TestBank{}}, runtime.Bank{ID: "test", DisplayName: "Test Bank"})
			req := func(tx string) *adapterv1.GetPurchaseDetailsRequest {
				return &adapterv1.GetPurchaseDetailsRequest{BankConsentId: "ok", BankAccountId: "acc-1", TransactionId: tx}
			}
			if _, err := c.GetPurchaseDetails(t.Context(), req("tx-ok")); err != nil {
				t.Fatalf("valid purchase details: %v", err)
			}
			_, err := c.GetPurchaseDetails(t.Context(), req("tx-not-a-purchase"))
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

			resp, err := c.GetPurchaseDetails(t.Context(), req("tx-mixed-currency"))
			if resp != nil {
				t.Errorf("the caller got the invalid response: %v", resp)
			}
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			if retryDelay(err) <= 0 {
				t.Error("BANK_UNAVAILABLE without RetryInfo")
			}
			st := status.Convert(err)
			if !strings.Contains(st.Message(), "purchase_details.single_currency") {
				t.Errorf("message %q does not name the broken rule", st.Message())
			}
			if wire := fmt.Sprint(st.Proto()); strings.Contains(wire, "DE89") || strings.Contains(wire, "1234.56") || strings.Contains(wire, "32.49") {
				t.Errorf("the adapter's text reached the caller: %s", wire)
			}
		})
	}
}

// TestRegistryGuardsCards shows the card calls behind the registry's
// checks, in process and remote: a card number that breaks the masking
// rules never reaches a caller, and a bank's answers keep their reason and
// attempts_remaining but never its words.
func TestRegistryGuardsCards(t *testing.T) {
	t.Parallel()
	for _, tr := range adaptertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			c := tr.Reach(t, adaptertest.CardsBank{TestBank: &adaptertest.TestBank{}}, runtime.Bank{ID: "test", DisplayName: "Test Bank"})
			if resp, err := c.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: "ok"}); err != nil || len(resp.GetCards()) != 1 {
				t.Fatalf("ListCards: %v, %v", resp, err)
			}
			tests := []struct {
				name          string
				call          func() error
				want          commonv1.ErrorReason
				wantMessage   string
				wantRemaining string
			}{
				{
					name: "ListCards with a full card number",
					call: func() error {
						_, err := c.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: "bad-masked"})
						return err
					},
					want:        commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
					wantMessage: "cards[0].masked_number.last4",
				},
				{
					name: "StartCardUnblock refused",
					call: func() error {
						_, err := c.StartCardUnblock(t.Context(), &adapterv1.StartCardUnblockRequest{BankConsentId: "ok", BankCardId: "card-1", IdempotencyKey: "unblock-0001"})
						return err
					},
					want: commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
				},
				{
					name: "VerifyCardUnblock with a wrong code",
					call: func() error {
						_, err := c.VerifyCardUnblock(t.Context(), &adapterv1.VerifyCardUnblockRequest{
							BankConsentId: "ok", BankCardId: "card-1", ChallengeId: "ch-1", Code: "654321", IdempotencyKey: "verify-0001",
						})
						return err
					},
					want:          commonv1.ErrorReason_ERROR_REASON_SCA_FAILED,
					wantRemaining: "2",
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := tt.call()
					adaptertest.WantReason(t, err, tt.want)
					st := status.Convert(err)
					if !strings.Contains(st.Message(), tt.wantMessage) {
						t.Errorf("message %q does not say %q", st.Message(), tt.wantMessage)
					}
					if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != tt.wantRemaining {
						t.Errorf("attempts_remaining %q, want %q", got, tt.wantRemaining)
					}
					if wire := fmt.Sprint(st.Proto()); strings.Contains(wire, "DE89") || strings.Contains(wire, "1234.56") || strings.Contains(wire, "4111") {
						t.Errorf("the adapter's text reached the caller: %s", wire)
					}
				})
			}
		})
	}
}
