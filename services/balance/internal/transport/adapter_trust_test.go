package transport_test

// These tests put misbehaving bank adapters behind the real path a call
// takes: BalanceService over gRPC through the server kit, the app, the
// banks package, and the adapter SDK's registry with its checks. What an
// adapter says is input, not truth: an answer for an account the user does
// not have, an account list that names an account twice, and an error
// carrying the bank's own words must never reach the caller as data.

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/balance/internal/banks"
	"github.com/bankbridge/bankbridge/services/balance/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// promiscuousBank lists each customer's own accounts, but answers
// balances and transactions for any account id it is asked about, under
// any consent: a bank API that checks the id exists, not whose it is. It
// lists dave's account twice. It records the account ids it was asked
// about.
type promiscuousBank struct {
	mu    sync.Mutex
	asked []string
}

func (*promiscuousBank) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	return &adapterv1.GetAdapterInfoResponse{BankId: "loose", DisplayName: "Loose Bank", ProtocolVersion: adapters.ProtocolVersion,
		Capabilities: adapters.Capabilities(&promiscuousBank{})}, nil
}

func (*promiscuousBank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

func looseAccount(id string) *adapterv1.Account {
	return &adapterv1.Account{BankAccountId: id, DisplayName: "Everyday", Type: adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
		CurrencyCode: "EUR", MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "4821", Display: "•••• 4821"}}
}

func (*promiscuousBank) ListAccounts(_ context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	switch req.GetBankConsentId() {
	case "bc-alice-loose":
		return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{looseAccount("acc-alice")}}, nil
	case "bc-dave-loose":
		return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{looseAccount("acc-dave"), looseAccount("acc-dave")}}, nil
	}
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "unknown consent")
}

func (b *promiscuousBank) GetBalances(_ context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	b.record(req.GetBankAccountId())
	return &adapterv1.GetBalancesResponse{Balances: []*adapterv1.Balance{{
		Type: adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, AsOf: timestamppb.Now(),
		Amount: &commonv1.Money{CurrencyCode: "EUR", Units: 98765},
	}}}, nil
}

func (b *promiscuousBank) SyncTransactions(_ context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	b.record(req.GetBankAccountId())
	return &adapterv1.SyncTransactionsResponse{NextCursor: "end", Added: []*adapterv1.Transaction{{
		TransactionId: "tx-1", Status: adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED, BookingDate: "2026-11-20",
		Amount: &commonv1.Money{CurrencyCode: "EUR", Units: -98765}, Description: "rent",
	}}}, nil
}

func (b *promiscuousBank) record(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked = append(b.asked, id)
}

func (b *promiscuousBank) askedAbout() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.asked)
}

// rawSecret is a bank's raw answer: it must never reach a caller.
const rawSecret = "IBAN DE89370400440532013000 balance 98765.00 token sk_live_9f8e7d6c5b4a"

func holdsRawSecret(s string) bool {
	s = strings.ToUpper(s)
	for _, p := range []string{"DE89370400440532013000", "98765", "SK_LIVE_9F8E7D6C5B4A"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// rawBank is an adapter written without the SDK, in any language: it
// answers ListAccounts with an error in its own domain and its own words,
// in the status, its details, headers and trailers.
type rawBank struct {
	adapterv1.UnimplementedBankAdapterServiceServer
}

func (rawBank) ListAccounts(ctx context.Context, _ *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-bank-debug", rawSecret))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-bank-detail", rawSecret))
	st, err := status.New(codes.PermissionDenied, rawSecret).WithDetails(
		&errdetails.ErrorInfo{Domain: "api.bank.example", Reason: "CONSENT_REQUIRED", Metadata: map[string]string{"iban": rawSecret}},
		&errdetails.LocalizedMessage{Locale: "en", Message: rawSecret},
		&errdetails.DebugInfo{Detail: rawSecret})
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

// registryBanks is the registry as the server kit's view of banks.
type registryBanks struct{ reg *runtime.Registry }

func (r registryBanks) HasBank(id string) bool {
	_, ok := r.reg.Bank(id)
	return ok
}

type staticCredentials struct{}

func (staticCredentials) BankCredential(context.Context, runtime.Bank) (map[string]string, error) {
	return map[string]string{"api_key": "test-key-0001"}, nil
}

type trustEnv struct {
	client balancev1.BalanceServiceClient
	loose  *promiscuousBank
	as     func(t *testing.T, user string) context.Context
}

// startWithAdapters serves balance over two real adapters behind the
// registry: "loose" (promiscuousBank, in process) and "raw" (rawBank,
// remote on 127.0.0.1). alice and dave linked loose; erin linked raw.
func startWithAdapters(t *testing.T) *trustEnv {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raw := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(raw, rawBank{})
	go func() { _ = raw.Serve(lis) }()
	t.Cleanup(raw.Stop)

	loose := &promiscuousBank{}
	reg, err := runtime.NewRegistry([]runtime.Bank{
		{ID: "loose", DisplayName: "Loose Bank", Kind: runtime.KindInProcess, InProcess: "loose"},
		{ID: "raw", DisplayName: "Raw Bank", Kind: runtime.KindRemote, Endpoint: lis.Addr().String()},
	}, runtime.WithInProcess("loose", loose), runtime.WithCredentials(staticCredentials{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })

	consent := newFakeConsent()
	consent.link("alice", "loose")
	consent.link("dave", "loose")
	consent.link("erin", "raw")
	svc, err := app.New(banks.New(reg), appConsents{consent}, app.Config{Pages: pagetoken.Random()})
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent, Banks: registryBanks{reg}},
		func(r grpc.ServiceRegistrar) {
			balancev1.RegisterBalanceServiceServer(r, transport.NewBalanceServer(svc))
		},
		servertest.Options{Name: "balance"})
	e := &trustEnv{client: balancev1.NewBalanceServiceClient(srv.Conn), loose: loose}
	e.as = func(t *testing.T, user string) context.Context {
		t.Helper()
		tok, err := srv.Issuer.Mint(user, testClient, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "ACCOUNT_INFORMATION")
	}
	return e
}

// TestAnAdapterAnsweringForAnotherAccountIsNotBelieved: alice names an
// account of the bank that is not among those it listed under her consent.
// The bank would answer for it; balance never asks it, and she gets
// NOT_FOUND, as for any account she does not have.
func TestAnAdapterAnsweringForAnotherAccountIsNotBelieved(t *testing.T) {
	t.Parallel()
	e := startWithAdapters(t)
	alice := e.as(t, "alice")
	const own, other = "users/alice/accounts/loose~acc-alice", "users/alice/accounts/loose~acc-bob"

	// Her own account: served.
	b, err := e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: own + "/balance"})
	if err != nil || len(b.GetBalance().GetBalances()) != 1 {
		t.Fatalf("her own balance = %v, %v", b, err)
	}
	if _, err := e.client.ListTransactions(alice, &balancev1.ListTransactionsRequest{Parent: own}); err != nil {
		t.Fatalf("her own transactions: %v", err)
	}

	// Another account, however asked.
	calls := []struct {
		name string
		call func() (proto.Message, error)
	}{
		{"GetBalance", func() (proto.Message, error) {
			return e.client.GetBalance(alice, &balancev1.GetBalanceRequest{Name: other + "/balance"})
		}},
		{"ListTransactions", func() (proto.Message, error) {
			return e.client.ListTransactions(alice, &balancev1.ListTransactionsRequest{Parent: other})
		}},
		{"GetTransaction", func() (proto.Message, error) {
			return e.client.GetTransaction(alice, &balancev1.GetTransactionRequest{Name: other + "/transactions/tx-1"})
		}},
		{"SyncTransactions", func() (proto.Message, error) {
			return e.client.SyncTransactions(alice, &balancev1.SyncTransactionsRequest{Parent: other})
		}},
		{"GetAccount", func() (proto.Message, error) {
			return e.client.GetAccount(alice, &balancev1.GetAccountRequest{Name: other})
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			resp, err := c.call()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
			if resp != nil && proto.Size(resp) > 0 {
				t.Errorf("the caller got %v", resp)
			}
		})
	}
	for _, id := range e.loose.askedAbout() {
		if id != "acc-alice" {
			t.Errorf("the bank was asked about %s, which it never listed for alice", id)
		}
	}
}

// TestAnAccountListedTwiceIsRefused: a bank that lists an account twice
// has answered what cannot be true; dave gets BANK_UNAVAILABLE, and none
// of the account's data.
func TestAnAccountListedTwiceIsRefused(t *testing.T) {
	t.Parallel()
	e := startWithAdapters(t)
	dave := e.as(t, "dave")

	resp, err := e.client.ListAccounts(dave, &balancev1.ListAccountsRequest{Parent: "users/dave", BankId: "loose"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	if len(resp.GetAccounts()) > 0 {
		t.Errorf("listed %v", resp.GetAccounts())
	}
	if apierr.RetryDelay(err) <= 0 {
		t.Error("BANK_UNAVAILABLE without RetryInfo")
	}
	// Across banks too: the only bank failed, so the call fails rather
	// than list nothing.
	_, err = e.client.ListAccounts(dave, &balancev1.ListAccountsRequest{Parent: "users/dave"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	b, err := e.client.GetBalance(dave, &balancev1.GetBalanceRequest{Name: "users/dave/accounts/loose~acc-dave/balance"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	if b != nil {
		t.Errorf("the caller got %v", b)
	}
	if asked := e.loose.askedAbout(); len(asked) > 0 {
		t.Errorf("the bank was asked about %v under a list it got wrong", asked)
	}
}

// TestABankErrorsWordsNeverReachTheCaller: erin's bank answers in its own
// domain and words. Over balance's gRPC, she gets BANK_UNAVAILABLE in
// bankbridge's words; no byte of the bank's reaches her status, its
// details, or the response's headers and trailers.
func TestABankErrorsWordsNeverReachTheCaller(t *testing.T) {
	t.Parallel()
	e := startWithAdapters(t)
	var header, trailer metadata.MD
	_, err := e.client.ListAccounts(e.as(t, "erin"), &balancev1.ListAccountsRequest{Parent: "users/erin", BankId: "raw"},
		grpc.Header(&header), grpc.Trailer(&trailer))
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	st := status.Convert(err)
	if want := "bank raw is unavailable: the call failed (PermissionDenied)"; st.Message() != want {
		t.Errorf("message %q, want bankbridge's %q", st.Message(), want)
	}
	wire, merr := proto.Marshal(st.Proto())
	if merr != nil {
		t.Fatal(merr)
	}
	if holdsRawSecret(string(wire)) {
		t.Errorf("the bank's words reached the caller's status: %q", wire)
	}
	for _, md := range []metadata.MD{header, trailer} {
		for k, vs := range md {
			if holdsRawSecret(k + strings.Join(vs, " ")) {
				t.Errorf("the bank's words reached the caller's metadata: %s: %q", k, vs)
			}
		}
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() != apierr.Domain || len(d.GetMetadata()) > 0 {
				t.Errorf("ErrorInfo %v passed", d)
			}
		case *errdetails.RetryInfo:
		default:
			t.Errorf("detail %T passed", d)
		}
	}
}
