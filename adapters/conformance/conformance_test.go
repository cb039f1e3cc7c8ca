package conformance_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestUnmaskedNumbers(t *testing.T) {
	t.Parallel()
	account := func(name, last4, display string) *adapterv1.Account {
		return &adapterv1.Account{
			BankAccountId: "4111111111111111", // ids are opaque: never flagged
			DisplayName:   name,
			MaskedNumber:  &commonv1.MaskedAccountNumber{Last4: last4, Display: display},
		}
	}
	tests := []struct {
		name string
		msg  *adapterv1.Account
		want []string
	}{
		{name: "masked", msg: account("Everyday account", "4821", "DE•• •••• •••• •••• ••48 21")},
		{name: "masked with IBAN check digits", msg: account("Everyday account", "3000", "DE89 •••• •••• •••• ••30 00")},
		{name: "dates and amounts", msg: account("Savings since 2024-01-15, 12345678 points", "4821", "•••• 4821")},
		{name: "card number in text", msg: account("Visa 4111 1111 1111 1111", "1111", "•••• 1111"), want: []string{"display_name"}},
		{name: "card number with hyphens", msg: account("Card 5500-0000-0000-0004", "0004", "•••• 0004"), want: []string{"display_name"}},
		{name: "IBAN in text", msg: account("Account DE89 3704 0044 0532 0130 00", "3000", "•••• 3000"), want: []string{"display_name"}},
		{name: "display shows too much", msg: account("Everyday account", "3000", "0532 0130 00"), want: []string{"masked_number.display"}},
		{name: "not a card number (Luhn)", msg: account("Reference 4111 1111 1111 1112", "4821", "•••• 4821")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := conformance.UnmaskedNumbers(tt.msg); !slices.Equal(got, tt.want) {
				t.Errorf("UnmaskedNumbers = %q, want %q", got, tt.want)
			}
		})
	}

	nested := &adapterv1.SyncTransactionsResponse{Added: []*adapterv1.Transaction{
		{TransactionId: "t1", Description: "ok"},
		{TransactionId: "t2", Description: "card 4111111111111111", MaskedCardNumber: &commonv1.MaskedAccountNumber{Last4: "1111", Display: "4111111111111111"}},
	}}
	want := []string{"added[1].description", "added[1].masked_card_number.display"}
	if got := conformance.UnmaskedNumbers(nested); !slices.Equal(got, want) {
		t.Errorf("nested: UnmaskedNumbers = %q, want %q", got, want)
	}
}

// brokenBank is a bank adapter written without the SDK, as one in another
// language might be, that gets several rules wrong.
type brokenBank struct {
	adapterv1.UnimplementedBankAdapterServiceServer // UNIMPLEMENTED without ErrorInfo
}

func (brokenBank) GetAdapterInfo(context.Context, *adapterv1.GetAdapterInfoRequest) (*adapterv1.GetAdapterInfoResponse, error) {
	return &adapterv1.GetAdapterInfoResponse{
		BankId: "broken", DisplayName: "Broken Bank", ProtocolVersion: "1.0",
		Capabilities: []adapterv1.Capability{adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES},
	}, nil
}

func (brokenBank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

func (brokenBank) ListAccounts(_ context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	if req.GetBankConsentId() != "consent-ok" {
		return nil, status.Error(codes.NotFound, "no such consent") // no ErrorInfo
	}
	return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{{
		BankAccountId: "acc-1", DisplayName: "Visa 4111 1111 1111 1111", Type: adapterv1.AccountType_ACCOUNT_TYPE_CARD, CurrencyCode: "EUR",
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "1111", Display: "4111 1111 1111 1111"},
	}}}, nil
}

func (brokenBank) GetBalances(context.Context, *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	// No request validation, no consent check.
	return &adapterv1.GetBalancesResponse{Balances: []*adapterv1.Balance{{
		Type: adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, Amount: &commonv1.Money{CurrencyCode: "EUR", Units: 1}, AsOf: timestamppb.Now(),
	}}}, nil
}

// forgetfulBank is Sandbox Bank answering as adapters did before protocol
// rule CONSENT_REVOKED_BY_BANK: NOT_FOUND for a consent it does not know.
type forgetfulBank struct{ *sandbox.Bank }

// asNotFound turns the sandbox's answer for an unknown consent into the
// old NOT_FOUND.
func asNotFound[T any](resp T, err error) (T, error) {
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK) {
		return resp, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank knows no such consent")
	}
	return resp, err
}

func (b forgetfulBank) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	return asNotFound(b.Bank.VerifySca(ctx, req))
}

func (b forgetfulBank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	return asNotFound(b.Bank.ListAccounts(ctx, req))
}

func (b forgetfulBank) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	return asNotFound(b.Bank.GetBalances(ctx, req))
}

func (b forgetfulBank) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	return asNotFound(b.Bank.SyncTransactions(ctx, req))
}

// sloppyPurchasesBank is Sandbox Bank with purchase details that get the
// protocol wrong: a total a euro above what the card was charged, an order
// number that changes from one call to the next, and made-up details for
// a transaction the bank does not know.
type sloppyPurchasesBank struct{ *sandbox.Bank }

func (b sloppyPurchasesBank) GetPurchaseDetails(ctx context.Context, req *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error) {
	known := proto.CloneOf(req)
	if req.GetTransactionId() == "conformance-unknown-0000" {
		known.TransactionId = "tx-alice-chk-003"
	}
	resp, err := b.Bank.GetPurchaseDetails(ctx, known)
	if err != nil {
		return nil, err
	}
	resp.Total.Units++
	resp.OrderNumber = "ORD-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	return resp, nil
}

// sloppyNewCallsBank is Sandbox Bank getting the calls and events of the
// handover, fraud alert and card protocol wrong: NotifyThreadControl
// answers for cases it does not have and ignores REQUEST, a conflicting
// answer to an alert is accepted, ListCards shows a card's full number,
// VerifyCardUnblock takes any code, and its events break the rules (a
// fraud case under another consent, control passed with an overlong note).
type sloppyNewCallsBank struct{ *sandbox.Bank }

func (b sloppyNewCallsBank) NotifyThreadControl(ctx context.Context, req *adapterv1.NotifyThreadControlRequest) (*adapterv1.NotifyThreadControlResponse, error) {
	if req.GetAction() == adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST {
		return &adapterv1.NotifyThreadControlResponse{}, nil // heard, and forgotten
	}
	resp, err := b.Bank.NotifyThreadControl(ctx, req)
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
		return &adapterv1.NotifyThreadControlResponse{}, nil
	}
	return resp, err
}

func (b sloppyNewCallsBank) AnswerFraudAlert(ctx context.Context, req *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error) {
	resp, err := b.Bank.AnswerFraudAlert(ctx, req)
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION) {
		return &adapterv1.AnswerFraudAlertResponse{}, nil
	}
	return resp, err
}

func (b sloppyNewCallsBank) ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	resp, err := b.Bank.ListCards(ctx, req)
	if err == nil && len(resp.GetCards()) > 0 {
		resp.Cards[0].MaskedNumber.Display = "4111 1111 1111 1111"
	}
	return resp, err
}

func (b sloppyNewCallsBank) VerifyCardUnblock(ctx context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error) {
	req = proto.CloneOf(req)
	req.Code = sandbox.Code
	return b.Bank.VerifyCardUnblock(ctx, req)
}

func (b sloppyNewCallsBank) StreamEvents(ctx context.Context, req *adapterv1.StreamEventsRequest, send func(*adapterv1.StreamEventsResponse) error) error {
	return b.Bank.StreamEvents(ctx, req, func(ev *adapterv1.StreamEventsResponse) error {
		switch e := ev.GetEvent().(type) {
		case *adapterv1.StreamEventsResponse_FraudCaseUpdated:
			e.FraudCaseUpdated.BankConsentId = "cns-someone-else"
		case *adapterv1.StreamEventsResponse_AgentMessage:
			// Anna passes control back in a message rather than an event.
			if strings.HasPrefix(e.AgentMessage.GetText(), "Hello again") {
				ev.Event = &adapterv1.StreamEventsResponse_AgentPassedControl{AgentPassedControl: &adapterv1.AgentPassedControl{
					CaseId: e.AgentMessage.GetCaseId(), Metadata: strings.Repeat("x", 1001),
				}}
			}
		}
		return send(ev)
	})
}

// TestKitCatchesBrokenAdapter proves that the kit fails an adapter written
// without the SDK that breaks the protocol, and says why, by check.
func TestKitCatchesBrokenAdapter(t *testing.T) {
	t.Parallel()
	rep := runKit(t, serve(t, brokenBank{}), conformance.Fixtures{BankConsentID: "consent-ok"})
	wantFailed(t, rep, "capabilities/declared-match-implemented",
		"StartSca of an unlisted capability: error Unimplemented carries no ErrorInfo",
		"ListCards of an unlisted capability: error Unimplemented carries no ErrorInfo",
		"NotifyThreadControl of an unlisted capability: error Unimplemented carries no ErrorInfo")
	wantFailed(t, rep, "consent/unknown-consent",
		"ListAccounts on an unknown consent: error NotFound carries no ErrorInfo",
		"GetBalances on an unknown consent: want PermissionDenied (CONSENT_REVOKED_BY_BANK), got success")
	wantFailed(t, rep, "validation/invalid-requests",
		"GetBalances without an account: want InvalidArgument (INVALID_ARGUMENT), got success")
	wantFailed(t, rep, "accounts/list",
		"ListAccounts: response shows a full account or card number at accounts[0].display_name, accounts[0].masked_number.display")
	if rep.Passed() {
		t.Error("the report passes a broken adapter")
	}
}

// TestKitRefusesNotFoundForAnUnknownConsent proves that the kit fails an
// adapter answering NOT_FOUND for a consent it does not know, and says
// what to answer instead, while the calls it left alone pass.
func TestKitRefusesNotFoundForAnUnknownConsent(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	rep := runKit(t, serve(t, adapters.NewServer(forgetfulBank{bank}, quiet)), conformance.Fixtures{
		LoginHint: "alice", UnknownLoginHint: "mallory", GoodCode: sandbox.Code, BadCode: "654321",
	})
	wantFailed(t, rep, "consent/unknown-consent",
		"ListAccounts: ListAccounts on an unknown consent: answered NotFound (NOT_FOUND); a consent the bank does not know "+
			"(never granted, forgotten, or lost in a restart) must be PermissionDenied (CONSENT_REVOKED_BY_BANK)",
		"VerifySca: VerifySca on an unknown consent: answered NotFound (NOT_FOUND)")
	if r := result(t, rep, "consent/unknown-consent"); strings.Contains(strings.Join(r.Failures, "\n"), "StartSupportHandoff") {
		t.Errorf("StartSupportHandoff, which the adapter answers right, is named among the failures: %q", r.Failures)
	}
	wantStatus(t, rep, conformance.Passed, "accounts/list", "balances/get", "transactions/sync")
}

// TestKitChecksPurchaseDetails proves that the kit fails purchase details
// that do not match the card transaction, do not add up, change between
// calls, or exist for an unknown transaction, and says which.
func TestKitChecksPurchaseDetails(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	rep := runKit(t, serve(t, adapters.NewServer(sloppyPurchasesBank{bank}, quiet)), conformance.Fixtures{
		LoginHint: "alice", UnknownLoginHint: "mallory", GoodCode: sandbox.Code, BadCode: "654321",
	})
	wantFailed(t, rep, "purchases/unknown-transaction", "GetPurchaseDetails of an unknown transaction: want NotFound (NOT_FOUND), got success")
	wantFailed(t, rep, "purchases/card-transaction",
		`GetPurchaseDetails of card transaction "tx-alice-chk-003": total is 87.40 EUR, want the transaction's 86.40 EUR`,
		`GetPurchaseDetails of card transaction "tx-alice-chk-003": subtotal + shipping_cost + tax − adjustments is 86.40, but total is 87.40`,
		`GetPurchaseDetails of card transaction "tx-alice-chk-003": answers differently from one call to the next`)
	wantStatus(t, rep, conformance.Passed, "transactions/sync", "transactions/count-honoured")
}

// TestKitChecksNewCalls proves that the kit fails an adapter that gets
// thread control, fraud alert answers, cards or the new events wrong, and
// says which, while what it does right passes.
func TestKitChecksNewCalls(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	fx := sandboxFixtures(bank)
	fx.APIKey, fx.SecondCustomer, fx.UnavailableCustomer = "", conformance.Customer{}, conformance.Customer{}
	rep := runKit(t, serve(t, adapters.NewServer(sloppyNewCallsBank{bank}, quiet)), fx)
	wantFailed(t, rep, "support/thread-control",
		"NotifyThreadControl on an unknown case: want NotFound (NOT_FOUND), got success",
		"StreamEvents: no AgentPassedControl after NotifyThreadControl REQUEST within 5s (Fixtures.PromptEvents)")
	wantFailed(t, rep, "fraud/answer-alert", "AnswerFraudAlert with another answer: want FailedPrecondition (FAILED_PRECONDITION), got success")
	wantFailed(t, rep, "cards/list", "ListCards: response shows a full account or card number at cards[0].masked_number.display")
	wantFailed(t, rep, "cards/block-unblock",
		"VerifyCardUnblock with a wrong code: want InvalidArgument (SCA_FAILED) or FailedPrecondition (SCA_LOCKED), got success")
	wantFailed(t, rep, "events/watched", "(agent_passed_control): response breaks the protocol's rules",
		`comes under consent "cns-someone-else", not the one ReportFraud filed it under`)
	wantStatus(t, rep, conformance.Passed, "accounts/list", "events/resume")
}
