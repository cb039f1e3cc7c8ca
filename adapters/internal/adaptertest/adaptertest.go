// Package adaptertest holds the test doubles and fixtures that the SDK's
// tests (package adapters_test) and the runtime's tests (package
// runtime_test) share: test banks, a credential source, an API key set,
// helpers that serve an adapter or build a registry, and assertions on
// bankbridge errors. It is imported only by tests.
package adaptertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestAPIKey is the API key the remote Transport serves with and sends.
const TestAPIKey = "test-api-key-0001"

// Credentials is a CredentialSource standing in for the services' Vault
// provider; Set changes what the next call gets.
type Credentials struct {
	mu    sync.Mutex
	creds map[string]string
	err   error
}

// NewCredentials returns a Credentials that answers creds.
func NewCredentials(creds map[string]string) *Credentials { return &Credentials{creds: creds} }

// BankCredential answers what NewCredentials or the last Set gave.
func (c *Credentials) BankCredential(context.Context, runtime.Bank) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds, c.err
}

// Set changes what the next BankCredential call answers.
func (c *Credentials) Set(creds map[string]string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creds, c.err = creds, err
}

// KeySet is a mutable set of accepted API keys for WithAPIKeys.
type KeySet struct {
	mu sync.Mutex
	// Keys are the accepted keys; set them before the KeySet is shared.
	Keys []string
}

// Get returns a copy of the accepted keys; it is the function to pass to
// WithAPIKeys.
func (k *KeySet) Get() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.Keys...)
}

// Set replaces the accepted keys.
func (k *KeySet) Set(keys ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Keys = keys
}

// Serve serves a on 127.0.0.1:0 through adapters.NewServer.
func Serve(t *testing.T, a adapters.Adapter, opts ...adapters.ServerOption) string {
	t.Helper()
	return ServeWith(t, a, nil, opts...)
}

// ServeWith is Serve with grpcOpts for the gRPC server.
func ServeWith(t *testing.T, a adapters.Adapter, grpcOpts []grpc.ServerOption, opts ...adapters.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpcOpts...)
	logger := slog.New(slog.NewTextHandler(testOutput(t), nil))
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(a, append([]adapters.ServerOption{adapters.WithLogger(logger)}, opts...)...))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// testOutput is t.Output() until the test ends, then nothing: a handler
// still finishing after srv.Stop (which does not wait for handlers) logs
// its call, and the testing package panics on a write after the test.
func testOutput(t *testing.T) io.Writer {
	w := &closingWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.w = nil
	})
	return w
}

type closingWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *closingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// NewRegistry returns runtime.NewRegistry(banks, opts...), failing the test
// on an error and closing the registry when the test ends.
func NewRegistry(t *testing.T, banks []runtime.Bank, opts ...runtime.Option) *runtime.Registry {
	t.Helper()
	r, err := runtime.NewRegistry(banks, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Client returns r.Client(id), failing the test on an error.
func Client(t *testing.T, r *runtime.Registry, id string) adapterv1.BankAdapterServiceClient {
	t.Helper()
	c, err := r.Client(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewSandbox returns a sandbox bank with default options, closed when the
// test ends.
func NewSandbox(t *testing.T) *sandbox.Bank {
	t.Helper()
	b, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Transport is how a test reaches a Go adapter: in process, or served by
// NewServer on 127.0.0.1:0 with TestAPIKey.
type Transport struct {
	// Name names the transport, for subtest names.
	Name string
	// Reach returns a client of a, reached as bank.
	Reach func(t *testing.T, a adapters.Adapter, bank runtime.Bank) adapterv1.BankAdapterServiceClient
}

// Transports returns every Transport, for tests run once per transport.
func Transports() []Transport {
	return []Transport{
		{Name: "in-process", Reach: func(t *testing.T, a adapters.Adapter, bank runtime.Bank) adapterv1.BankAdapterServiceClient {
			bank.Kind, bank.InProcess = runtime.KindInProcess, "adapter"
			return Client(t, NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("adapter", a)), bank.ID)
		}},
		{Name: "remote", Reach: func(t *testing.T, a adapters.Adapter, bank runtime.Bank) adapterv1.BankAdapterServiceClient {
			bank.Kind, bank.Endpoint = runtime.KindRemote, Serve(t, a, adapters.WithAPIKeys(func() []string { return []string{TestAPIKey} }))
			creds := NewCredentials(map[string]string{"api_key": TestAPIKey})
			return Client(t, NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(creds)), bank.ID)
		}},
	}
}

// Link links the sandbox customer with login and returns the consent.
func Link(t *testing.T, c adapterv1.BankAdapterServiceClient, login string) string {
	t.Helper()
	start, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference:  "user-" + login,
		LoginHint:      login,
		Scopes:         []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS},
		ValidUntil:     timestamppb.New(time.Now().Add(time.Hour)),
		IdempotencyKey: fmt.Sprintf("link-%s-%d", login, time.Now().UnixNano()),
	})
	if err != nil {
		t.Fatalf("StartSca(%s): %v", login, err)
	}
	v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{
		BankConsentId: start.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: fmt.Sprintf("verify-%d", time.Now().UnixNano()),
	})
	if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("VerifySca(%s): %v, %v", login, v.GetStatus(), err)
	}
	return v.GetBankConsentId()
}

// WantReason fails the test unless err is a bankbridge error with reason
// (and so its code).
func WantReason(t *testing.T, err error, reason commonv1.ErrorReason) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s (%s), got success", apierr.Code(reason), apierr.ReasonString(reason))
	}
	if got := apierr.Reason(err); got != reason || status.Code(err) != apierr.Code(reason) {
		t.Fatalf("want %s (%s), got %s (%s): %v", apierr.Code(reason), apierr.ReasonString(reason), status.Code(err), apierr.ReasonString(got), err)
	}
}

// TestBank is an integrator's minimal adapter: ACCOUNTS and BALANCES
// only. What ListAccounts does depends on the consent id, so that one
// adapter can misbehave in every way a test needs; it records the metadata
// of the last call.
type TestBank struct {
	id string
	// InfoCaps, when set, is what Info lists instead of the truth.
	InfoCaps []adapterv1.Capability

	mu     sync.Mutex
	lastMD metadata.MD
}

// Info answers the test bank's info, listing its capabilities (or InfoCaps).
func (b *TestBank) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	caps := b.InfoCaps
	if caps == nil {
		caps = adapters.Capabilities(b)
	}
	id := b.id
	if id == "" {
		id = "test"
	}
	return &adapterv1.GetAdapterInfoResponse{BankId: id, DisplayName: "Test Bank", ProtocolVersion: adapters.ProtocolVersion, Capabilities: caps}, nil
}

// CheckHealth always answers SERVING.
func (b *TestBank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

// secretText is what a bank's raw error might say; it must never reach a
// caller.
const secretText = "IBAN DE89370400440532013000 has balance 1234.56"

// ListAccounts records the call's metadata and answers as the consent id
// says.
func (b *TestBank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	b.lastMD = md
	b.mu.Unlock()
	account := &adapterv1.Account{
		BankAccountId: "acc-1", DisplayName: "Everyday account", Type: adapterv1.AccountType_ACCOUNT_TYPE_CURRENT, CurrencyCode: "EUR",
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "4821", Display: "•••• 4821"},
	}
	switch req.GetBankConsentId() {
	case "ok":
		return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{account}}, nil
	case "raw-error":
		return nil, fmt.Errorf("bank API: %s", secretText)
	case "status-without-info":
		return nil, status.Error(codes.NotFound, secretText)
	case "deadline":
		return nil, context.DeadlineExceeded
	case "panic":
		panic(secretText)
	case "nil-response":
		return nil, nil
	case "bad-response":
		account.MaskedNumber.Last4 = "48211" // not four characters
		return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{account}}, nil
	case "unavailable":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank down: "+secretText, apierr.WithRetryAfter(time.Second))
	case "revoked":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the customer revoked it: "+secretText)
	case "leaky":
		// A business answer whose every free-text part carries the bank's
		// raw words.
		st, _ := status.New(codes.PermissionDenied, secretText).WithDetails(
			&errdetails.ErrorInfo{Reason: "CONSENT_REQUIRED", Domain: apierr.Domain, Metadata: map[string]string{"iban": secretText}},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(48 * time.Hour)})
		return nil, st.Err()
	case "invalid":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid: "+secretText,
			apierr.WithFieldViolations(
				apierr.FieldViolation{Field: "bank_consent_id", Description: secretText, Reason: "bank.consent_format"},
				apierr.FieldViolation{Field: secretText, Description: "x", Reason: "bank.rule"}))
	case "wrong-reason":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, secretText)
	}
	// A consent the bank does not know, as the protocol says to answer it.
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
}

// GetBalances answers a balance of account acc-1 under consent ok, and a
// bankbridge error otherwise.
func (b *TestBank) GetBalances(_ context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	switch {
	case req.GetBankConsentId() != "ok":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
	case req.GetBankAccountId() != "acc-1":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank knows no such account under this consent")
	}
	return &adapterv1.GetBalancesResponse{Balances: []*adapterv1.Balance{{
		Type:   adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED,
		Amount: &commonv1.Money{CurrencyCode: "EUR", Units: 10},
		AsOf:   timestamppb.Now(),
	}}}, nil
}

// PurchaseBank is TestBank with TRANSACTIONS and PURCHASE_DETAILS. What
// GetPurchaseDetails answers depends on the transaction id, so that it can
// answer outside the protocol.
type PurchaseBank struct{ *TestBank }

// Info is TestBank's Info listing PurchaseBank's capabilities.
func (b PurchaseBank) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := b.TestBank.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(b)
	return info, nil
}

// SyncTransactions answers no transactions.
func (PurchaseBank) SyncTransactions(context.Context, *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	return &adapterv1.SyncTransactionsResponse{NextCursor: "end"}, nil
}

// GetPurchaseDetails answers as the transaction id says.
func (PurchaseBank) GetPurchaseDetails(_ context.Context, req *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error) {
	eur := func(cents int64) *commonv1.Money {
		return &commonv1.Money{CurrencyCode: "EUR", Units: cents / 100, Nanos: int32(cents%100) * 10_000_000}
	}
	resp := &adapterv1.GetPurchaseDetailsResponse{
		MerchantName: "Nordic Outdoor Online",
		OrderNumber:  "NO-100234",
		PurchaseTime: timestamppb.Now(),
		LineItems: []*adapterv1.PurchaseLineItem{
			{Title: "Trail running socks", Quantity: 2, UnitPrice: eur(12_50)},
			{Title: "Headlamp 300 lm", Quantity: 1, UnitPrice: eur(29_99)},
		},
		Subtotal:     eur(54_99),
		ShippingCost: eur(5_00),
		Total:        eur(59_99),
	}
	switch req.GetTransactionId() {
	case "tx-ok":
		return resp, nil
	case "tx-mixed-currency":
		// A converted line, and the bank's raw words in the text.
		resp.MerchantName = secretText
		resp.LineItems[1].UnitPrice = &commonv1.Money{CurrencyCode: "USD", Units: 32, Nanos: 490_000_000}
		resp.LineItems[1].Subtitle = secretText
		return resp, nil
	}
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank has no purchase details for this transaction")
}

// Metadata returns the incoming metadata of the last ListAccounts call.
func (b *TestBank) Metadata() metadata.MD {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastMD
}

// ContainsStr reports whether sub is within s.
func ContainsStr(s, sub string) bool { return strings.Contains(s, sub) }

// CardsBank is TestBank with CARDS. What its calls answer depends on the
// consent id and the code, so that it can answer outside the protocol and
// with the bank's raw words.
type CardsBank struct{ *TestBank }

// Info is TestBank's Info listing CardsBank's capabilities.
func (b CardsBank) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := b.TestBank.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(b)
	return info, nil
}

// ListCards answers as the consent id says.
func (CardsBank) ListCards(_ context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	card := &adapterv1.Card{
		BankCardId: "card-1", BankAccountId: "acc-1", State: adapterv1.CardState_CARD_STATE_ACTIVE,
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "1043", Display: "•••• 1043"},
	}
	switch req.GetBankConsentId() {
	case "ok":
	case "bad-masked":
		card.MaskedNumber = &commonv1.MaskedAccountNumber{Last4: "4111111111111111", Display: secretText}
	default:
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
	}
	return &adapterv1.ListCardsResponse{Cards: []*adapterv1.Card{card}}, nil
}

// BlockCard always blocks.
func (CardsBank) BlockCard(context.Context, *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	return &adapterv1.BlockCardResponse{Status: adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED}, nil
}

// StartCardUnblock always refuses, in the bank's raw words.
func (CardsBank) StartCardUnblock(context.Context, *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error) {
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "card reported stolen: "+secretText)
}

// VerifyCardUnblock finalises with code 123456 and fails otherwise.
func (CardsBank) VerifyCardUnblock(_ context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error) {
	if req.GetCode() != "123456" {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "wrong code for "+secretText,
			apierr.WithMetadata("attempts_remaining", "2"), apierr.WithMetadata("iban", secretText))
	}
	return &adapterv1.VerifyCardUnblockResponse{Status: adapterv1.ScaStatus_SCA_STATUS_FINALISED}, nil
}

// OldFraudBank is TestBank written against the SDK before CARDS: a
// FraudAdapter of ReportFraud and BlockCard, with no AnswerFraudAlert. It
// implements neither FRAUD nor CARDS.
type OldFraudBank struct{ *TestBank }

// ReportFraud is never called.
func (OldFraudBank) ReportFraud(context.Context, *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error) {
	return nil, errors.New("never called: not a capability")
}

// BlockCard is never called.
func (OldFraudBank) BlockCard(context.Context, *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	return nil, errors.New("never called: not a capability")
}

// SyncBuffer is a bytes.Buffer that a logger on several goroutines and the
// test may use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
