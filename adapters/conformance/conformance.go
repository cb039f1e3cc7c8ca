// Package conformance is the bank adapter conformance kit: one test suite
// that every bankbridge.adapter.v1 implementation must pass, whether it is
// a Go adapter in process or a gRPC server in any language.
//
//	func TestConformance(t *testing.T) {
//		conn, _ := grpc.NewClient("127.0.0.1:9400", ...)
//		conformance.Run(t, adapterv1.NewBankAdapterServiceClient(conn), conformance.Fixtures{
//			LoginHint: "alice", GoodCode: "123456", BadCode: "000000",
//		})
//	}
//
// Run checks that GetAdapterInfo and CheckHealth answer validly; that the
// capabilities the adapter lists are exactly the ones it implements, the
// others answering UNIMPLEMENTED (CAPABILITY_NOT_SUPPORTED); that invalid
// requests fail with INVALID_ARGUMENT naming the field; that every call on
// a consent the bank does not know fails with PERMISSION_DENIED
// (CONSENT_REVOKED_BY_BANK), not NOT_FOUND; the SCA flow with a good and a
// bad code; every data call on the consent it links; that every response
// keeps the protocol's rules and shows account and card numbers
// masked only; that every error carries a bankbridge ErrorInfo whose reason
// matches its status code; that writes with an idempotency key answer a
// retry with the first answer and refuse the key with another request;
// cursors for transactions and events; the purchase details of a card
// transaction; support handoff and thread control; fraud reports and the
// answer to a fraud alert; listing, blocking and unblocking a card; the
// events the kit's own calls cause; extending a consent; and revocation.
//
// It calls the adapter as bankbridge does, but it does change the test
// customer's state at the bank: it links, opens and closes support cases,
// files fraud reports, answers a fraud alert, blocks one of the customer's
// cards (and unblocks it again when its challenge is OTP) and revokes what
// it linked. Run it against a test bank.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Fixtures describe the test bank's customer the kit works with.
type Fixtures struct {
	// LoginHint is the bank login of a test customer whose linking and
	// data calls succeed and who has at least one account. Required when
	// the adapter implements SCA.
	LoginHint string
	// UnknownLoginHint is a login the bank knows no customer by; empty
	// skips the NOT_FOUND check of StartSca.
	UnknownLoginHint string
	// GoodCode is the one-time code the bank accepts for the customer, for
	// linking and for lifting a card block.
	GoodCode string
	// BadCode is a one-time code the bank refuses.
	BadCode string
	// Scopes are asked for in StartSca; empty means those the adapter's
	// capabilities serve (ACCOUNTS, BALANCES, TRANSACTIONS, SUPPORT,
	// FRAUD_ALERTS).
	Scopes []commonv1.Scope
	// BankConsentID is a valid consent to run the data checks on, for an
	// adapter without SCA (or whose SCA is not OTP); empty skips them then.
	BankConsentID string
	// TriggerEvent makes the bank emit at least one event (e.g. a fraud
	// alert for the customer); nil skips the delivery and resume checks
	// of StreamEvents. The kit also calls it to know that the stream on
	// which it watches what its own calls cause is open at the bank.
	TriggerEvent func(ctx context.Context) error
	// TriggerFraudAlert makes the bank raise a fraud alert on the fixture
	// customer's consents that cover SCOPE_FRAUD_ALERTS (the kit's among
	// them), for an adapter with FRAUD and EVENTS: the kit takes the alert
	// from StreamEvents and answers it with AnswerFraudAlert. nil checks
	// AnswerFraudAlert on an unknown alert only.
	TriggerFraudAlert func(ctx context.Context) error
	// PromptEvents says the bank answers the kit's calls with events
	// within seconds, as a test bank with a scripted agent and fraud desk
	// does (the sandbox). The kit then requires AgentJoined after
	// StartSupportHandoff, AgentPassedControl after NotifyThreadControl
	// REQUEST, and FraudCaseUpdated RECEIVED after ReportFraud. Without
	// it, the kit checks the events that do arrive but requires none.
	// It needs TriggerEvent.
	PromptEvents bool
	// CallTimeout bounds each call; default 10s.
	CallTimeout time.Duration
}

// unknownID is a well-formed id that no bank knows.
const unknownID = "conformance-unknown-0000"

// eventWait bounds how long the kit waits for an event it triggered.
const eventWait = 5 * time.Second

// Run runs the conformance suite against client as subtests of t.
func Run(t *testing.T, client adapterv1.BankAdapterServiceClient, fx Fixtures) {
	t.Helper()
	if fx.CallTimeout <= 0 {
		fx.CallTimeout = 10 * time.Second
	}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatalf("conformance: protovalidate: %v", err)
	}
	k := &kit{client: client, fx: fx, validator: v, run: randomHex()}

	if !t.Run("GetAdapterInfo", k.testInfo) {
		t.Fatal("conformance: GetAdapterInfo must pass before anything else can be checked")
	}
	t.Run("CheckHealth", k.testHealth)
	t.Run("UnimplementedCapabilities", k.testUnimplemented)
	t.Run("InvalidRequests", k.testInvalidRequests)
	t.Run("UnknownConsent", k.testUnknownConsent)
	if k.has(adapterv1.Capability_CAPABILITY_SCA) {
		t.Run("SCA", k.testSCA)
	}
	if k.consentID == "" {
		k.consentID = fx.BankConsentID
	}
	if k.consentID == "" {
		t.Log("conformance: no consent to run the data checks on (no OTP SCA and no Fixtures.BankConsentID)")
	} else {
		if k.has(adapterv1.Capability_CAPABILITY_EVENTS) {
			// The watch outlives the subtests whose calls it watches.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			t.Run("EventWatch", func(t *testing.T) { k.openWatch(ctx, t) })
		}
		t.Run("Accounts", k.testAccounts)
		t.Run("Transactions", k.testTransactions)
		t.Run("PurchaseDetails", k.testPurchaseDetails)
		t.Run("SupportHandoff", k.testSupport)
		t.Run("Cards", k.testCards)
		t.Run("Fraud", k.testFraud)
	}
	t.Run("Events", k.testEvents)
	if k.has(adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION) && k.linked {
		t.Run("ConsentExtension", k.testExtension)
	}
	if k.has(adapterv1.Capability_CAPABILITY_SCA) && k.linked {
		t.Run("RevokeConsent", k.testRevoke)
	}
}

type kit struct {
	client    adapterv1.BankAdapterServiceClient
	fx        Fixtures
	validator protovalidate.Validator
	run       string // makes this run's idempotency keys and references unique

	capabilities []adapterv1.Capability
	consentID    string
	linked       bool // consentID was linked by the kit, which may revoke it
	accounts     []*adapterv1.Account
	// cards are the cards ListCards showed.
	cards []*adapterv1.Card
	// watch holds the events the bank sent while the kit made its calls;
	// nil without EVENTS or a consent.
	watch *watch
	// supportCase and fraudCase are the cases the kit opened.
	supportCase, fraudCase string
	// cardTransactions are the card transactions SyncTransactions showed
	// and did not remove, in the order it showed them.
	cardTransactions []cardTransaction
}

// cardTransaction is a card payment and the account it is on.
type cardTransaction struct {
	accountID string
	tx        *adapterv1.Transaction
}

func (k *kit) has(c adapterv1.Capability) bool { return slices.Contains(k.capabilities, c) }

// ctx is a call's context: the kit's timeout and the purpose bankbridge
// declares on data calls.
func (k *kit) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), k.fx.CallTimeout)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, adapters.PurposeMetadata, "ACCOUNT_INFORMATION")
}

// key returns an idempotency key unique to this run.
func (k *kit) key(name string) string { return "conf-" + k.run + "-" + name }

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// check holds a response to the protocol's rules and the masking rule.
func (k *kit) check(t *testing.T, what string, m proto.Message) {
	t.Helper()
	if err := k.validator.Validate(m); err != nil {
		t.Errorf("%s: response breaks the protocol's rules: %v", what, err)
	}
	if paths := UnmaskedNumbers(m); len(paths) > 0 {
		t.Errorf("%s: response shows a full account or card number at %s", what, strings.Join(paths, ", "))
	}
}

// ok fails the test when a call that should succeed failed, saying how.
func ok(t *testing.T, what string, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: want success, got %s", what, describe(err))
		checkErrorInfo(t, what, err)
		return false
	}
	return true
}

// describe names an error by code and reason, never by its message alone.
func describe(err error) string {
	info := apierr.Info(err)
	return fmt.Sprintf("%s (reason %q, domain %q): %s", status.Code(err), info.GetReason(), info.GetDomain(), status.Convert(err).Message())
}

// checkErrorInfo holds any error an adapter returns to the protocol: an
// ErrorInfo of domain "bankbridge" with a known reason whose code is the
// status's; RetryInfo on UNAVAILABLE and RESOURCE_EXHAUSTED.
func checkErrorInfo(t *testing.T, what string, err error) {
	t.Helper()
	info := apierr.Info(err)
	switch {
	case info == nil:
		t.Errorf("%s: error %s carries no ErrorInfo", what, status.Code(err))
		return
	case info.GetDomain() != apierr.Domain:
		t.Errorf("%s: ErrorInfo domain is %q, want %q", what, info.GetDomain(), apierr.Domain)
		return
	}
	reason := apierr.ParseReason(info.GetReason())
	if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Errorf("%s: ErrorInfo reason %q is not a bankbridge.common.v1.ErrorReason", what, info.GetReason())
		return
	}
	if got, want := status.Code(err), apierr.Code(reason); got != want {
		t.Errorf("%s: reason %s travels with %s, got %s", what, info.GetReason(), want, got)
	}
	if c := status.Code(err); c == codes.Unavailable || c == codes.ResourceExhausted {
		if retryInfo(err) == nil {
			t.Errorf("%s: %s without RetryInfo", what, c)
		}
	}
}

func retryInfo(err error) *errdetails.RetryInfo {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

// wantError fails the test unless err has one of reasons (and so its code).
func wantError(t *testing.T, what string, err error, reasons ...commonv1.ErrorReason) bool {
	t.Helper()
	var names []string
	for _, r := range reasons {
		names = append(names, fmt.Sprintf("%s (%s)", apierr.Code(r), apierr.ReasonString(r)))
	}
	if err == nil {
		t.Errorf("%s: want %s, got success", what, strings.Join(names, " or "))
		return false
	}
	checkErrorInfo(t, what, err)
	if !slices.Contains(reasons, apierr.Reason(err)) {
		t.Errorf("%s: want %s, got %s", what, strings.Join(names, " or "), describe(err))
		return false
	}
	return true
}

// capabilityCall is one RPC of a capability, with a well-formed request
// about things no bank knows.
type capabilityCall struct {
	capability adapterv1.Capability
	method     string
	call       func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error
}

func (k *kit) capabilityCalls() []capabilityCall {
	validUntil := timestamppb.New(time.Now().Add(time.Hour))
	return []capabilityCall{
		{adapterv1.Capability_CAPABILITY_ACCOUNTS, "ListAccounts", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_BALANCES, "GetBalances", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_TRANSACTIONS, "SyncTransactions", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, "GetPurchaseDetails", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.GetPurchaseDetails(ctx, &adapterv1.GetPurchaseDetailsRequest{BankConsentId: unknownID, BankAccountId: unknownID, TransactionId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "StartSca", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartSca(ctx, &adapterv1.StartScaRequest{
				UserReference: "conformance-user", LoginHint: k.fx.UnknownLoginHint,
				Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS}, ValidUntil: validUntil,
				IdempotencyKey: k.key("unimplemented-start"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "VerifySca", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.VerifySca(ctx, &adapterv1.VerifyScaRequest{BankConsentId: unknownID, Code: "000000", IdempotencyKey: k.key("unimplemented-verify")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "RevokeConsent", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.RevokeConsent(ctx, &adapterv1.RevokeConsentRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, "ExtendConsent", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ExtendConsent(ctx, &adapterv1.ExtendConsentRequest{
				BankConsentId: unknownID, ValidUntil: validUntil, IdempotencyKey: k.key("unimplemented-extend-" + randomHex()), // each call asks anew
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "StartSupportHandoff", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartSupportHandoff(ctx, &adapterv1.StartSupportHandoffRequest{
				BankConsentId: unknownID, ConversationReference: "conformance-conversation",
				Reason: "conformance check", IdempotencyKey: k.key("unimplemented-handoff"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "SendSupportMessage", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.SendSupportMessage(ctx, &adapterv1.SendSupportMessageRequest{
				BankConsentId: unknownID, CaseId: unknownID, Text: "conformance check", ClientMessageId: k.key("unimplemented-message"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "NotifyThreadControl", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.NotifyThreadControl(ctx, &adapterv1.NotifyThreadControlRequest{
				BankConsentId: unknownID, CaseId: unknownID, Action: adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
				IdempotencyKey: k.key("unimplemented-control"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "ReportFraud", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ReportFraud(ctx, &adapterv1.ReportFraudRequest{
				BankConsentId: unknownID, BankAccountId: unknownID,
				Category: adapterv1.FraudCategory_FRAUD_CATEGORY_OTHER, IdempotencyKey: k.key("unimplemented-report"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "AnswerFraudAlert", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.AnswerFraudAlert(ctx, &adapterv1.AnswerFraudAlertRequest{
				BankConsentId: unknownID, AlertId: unknownID, Answer: adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED,
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "ListCards", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "BlockCard", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.BlockCard(ctx, &adapterv1.BlockCardRequest{
				BankConsentId: unknownID, BankAccountId: unknownID,
				Reason: adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED, IdempotencyKey: k.key("unimplemented-block"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "StartCardUnblock", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartCardUnblock(ctx, &adapterv1.StartCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, IdempotencyKey: k.key("unimplemented-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "VerifyCardUnblock", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.VerifyCardUnblock(ctx, &adapterv1.VerifyCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, ChallengeId: unknownID, Code: "000000",
				IdempotencyKey: k.key("unimplemented-verify-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_EVENTS, "StreamEvents", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			stream, err := c.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
			if err != nil {
				return err
			}
			if _, err := stream.Recv(); err != nil && status.Code(err) != codes.DeadlineExceeded {
				return err
			}
			return nil // open, and quiet for a second: implemented
		}},
	}
}

func (k *kit) testInfo(t *testing.T) {
	info, err := k.client.GetAdapterInfo(k.ctx(t), &adapterv1.GetAdapterInfoRequest{})
	if !ok(t, "GetAdapterInfo", err) {
		t.FailNow()
	}
	k.check(t, "GetAdapterInfo", info)
	if len(info.GetCapabilities()) == 0 {
		t.Fatal("GetAdapterInfo: lists no capability")
	}
	k.capabilities = info.GetCapabilities()
	if k.has(adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS) && !k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
		t.Error("GetAdapterInfo: lists PURCHASE_DETAILS without TRANSACTIONS, whose transactions it details")
	}
	again, err := k.client.GetAdapterInfo(k.ctx(t), &adapterv1.GetAdapterInfoRequest{})
	if ok(t, "GetAdapterInfo again", err) && !proto.Equal(info, again) {
		t.Error("GetAdapterInfo: answers differently from one call to the next")
	}
}

func (k *kit) testHealth(t *testing.T) {
	start := time.Now()
	h, err := k.client.CheckHealth(k.ctx(t), &adapterv1.CheckHealthRequest{})
	if !ok(t, "CheckHealth", err) {
		return
	}
	k.check(t, "CheckHealth", h)
	if d := time.Since(start); d > time.Second {
		t.Errorf("CheckHealth: took %s; answer within a second, from recent calls", d.Round(time.Millisecond))
	}
}

// testUnimplemented checks that the capabilities listed are exactly those
// implemented: every RPC of an unlisted one answers UNIMPLEMENTED
// (CAPABILITY_NOT_SUPPORTED), and no RPC of a listed one does.
func (k *kit) testUnimplemented(t *testing.T) {
	for _, cc := range k.capabilityCalls() {
		t.Run(cc.method, func(t *testing.T) {
			err := cc.call(k.ctx(t), k.client)
			if !k.has(cc.capability) {
				wantError(t, cc.method+" of an unlisted capability", err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)
				return
			}
			if err == nil {
				return
			}
			checkErrorInfo(t, cc.method, err)
			if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED) && cc.method != "StartSca" {
				t.Errorf("%s: capability %s is listed in GetAdapterInfo but answers CAPABILITY_NOT_SUPPORTED", cc.method, cc.capability)
			}
		})
	}
}

// testInvalidRequests sends one request per implemented capability that
// breaks a rule of the protocol, and wants INVALID_ARGUMENT naming the field.
func (k *kit) testInvalidRequests(t *testing.T) {
	tests := []struct {
		capability adapterv1.Capability
		name       string
		field      string
		call       func(ctx context.Context) error
	}{
		{adapterv1.Capability_CAPABILITY_ACCOUNTS, "ListAccounts with a malformed consent id", "bank_consent_id", func(ctx context.Context) error {
			_, err := k.client.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: "not a valid id!"})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_BALANCES, "GetBalances without an account", "bank_account_id", func(ctx context.Context) error {
			_, err := k.client.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_TRANSACTIONS, "SyncTransactions with count above 500", "count", func(ctx context.Context) error {
			_, err := k.client.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{BankConsentId: unknownID, BankAccountId: unknownID, Count: 501})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, "GetPurchaseDetails without a transaction", "transaction_id", func(ctx context.Context) error {
			_, err := k.client.GetPurchaseDetails(ctx, &adapterv1.GetPurchaseDetailsRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "StartSca without scopes", "scopes", func(ctx context.Context) error {
			_, err := k.client.StartSca(ctx, &adapterv1.StartScaRequest{
				UserReference: "conformance-user", LoginHint: k.fx.LoginHint,
				ValidUntil: timestamppb.New(time.Now().Add(time.Hour)), IdempotencyKey: k.key("invalid-start"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, "ExtendConsent without valid_until", "valid_until", func(ctx context.Context) error {
			_, err := k.client.ExtendConsent(ctx, &adapterv1.ExtendConsentRequest{BankConsentId: unknownID, IdempotencyKey: k.key("invalid-extend")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "SendSupportMessage without text", "text", func(ctx context.Context) error {
			_, err := k.client.SendSupportMessage(ctx, &adapterv1.SendSupportMessageRequest{
				BankConsentId: unknownID, CaseId: unknownID, ClientMessageId: k.key("invalid-message"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "NotifyThreadControl without an action", "action", func(ctx context.Context) error {
			_, err := k.client.NotifyThreadControl(ctx, &adapterv1.NotifyThreadControlRequest{
				BankConsentId: unknownID, CaseId: unknownID, IdempotencyKey: k.key("invalid-control"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "AnswerFraudAlert without an answer", "answer", func(ctx context.Context) error {
			_, err := k.client.AnswerFraudAlert(ctx, &adapterv1.AnswerFraudAlertRequest{BankConsentId: unknownID, AlertId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "ListCards with a malformed consent id", "bank_consent_id", func(ctx context.Context) error {
			_, err := k.client.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: "not a valid id!"})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "BlockCard without a reason", "reason", func(ctx context.Context) error {
			_, err := k.client.BlockCard(ctx, &adapterv1.BlockCardRequest{
				BankConsentId: unknownID, BankAccountId: unknownID, IdempotencyKey: k.key("invalid-block"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "StartCardUnblock without a card", "bank_card_id", func(ctx context.Context) error {
			_, err := k.client.StartCardUnblock(ctx, &adapterv1.StartCardUnblockRequest{BankConsentId: unknownID, IdempotencyKey: k.key("invalid-unblock")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "VerifyCardUnblock with a three-digit code", "code", func(ctx context.Context) error {
			_, err := k.client.VerifyCardUnblock(ctx, &adapterv1.VerifyCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, ChallengeId: unknownID, Code: "123", IdempotencyKey: k.key("invalid-verify-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_EVENTS, "StreamEvents with an overlong cursor", "resume_cursor", func(ctx context.Context) error {
			stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{ResumeCursor: strings.Repeat("x", 1025)})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
	}
	for _, tt := range tests {
		if !k.has(tt.capability) {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(k.ctx(t))
			if !wantError(t, tt.name, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT) {
				return
			}
			if !slices.Contains(violatedFields(err), tt.field) {
				t.Errorf("%s: BadRequest names %q, want it to name %q", tt.name, violatedFields(err), tt.field)
			}
		})
	}
}

func violatedFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// testUnknownConsent wants PERMISSION_DENIED (CONSENT_REVOKED_BY_BANK)
// from every call on a consent the bank does not know, VerifySca included,
// and success from revoking one. NOT_FOUND is the classic mistake: it
// reads as "no such account" to callers, while bankbridge must learn that
// the consent is gone to end the link and ask the user to link again.
func (k *kit) testUnknownConsent(t *testing.T) {
	for _, cc := range k.capabilityCalls() {
		if !k.has(cc.capability) || cc.method == "StartSca" || cc.method == "StreamEvents" {
			continue
		}
		t.Run(cc.method, func(t *testing.T) {
			err := cc.call(k.ctx(t), k.client)
			if cc.method == "RevokeConsent" {
				ok(t, "RevokeConsent of an unknown consent", err)
				return
			}
			what := cc.method + " on an unknown consent"
			if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
				checkErrorInfo(t, what, err)
				t.Errorf("%s: answered NotFound (NOT_FOUND); a consent the bank does not know (never granted, "+
					"forgotten, or lost in a restart) must be PermissionDenied (CONSENT_REVOKED_BY_BANK), so that "+
					"bankbridge ends the link and asks the user to link the bank again. NOT_FOUND is for an unknown "+
					"account, transaction, card or case under a consent the bank knows", what)
				return
			}
			wantError(t, what, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
		})
	}
}

// scopes are what the kit asks StartSca for.
func (k *kit) scopes() []commonv1.Scope {
	if len(k.fx.Scopes) > 0 {
		return k.fx.Scopes
	}
	var s []commonv1.Scope
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		s = append(s, commonv1.Scope_SCOPE_ACCOUNTS)
	}
	if k.has(adapterv1.Capability_CAPABILITY_BALANCES) {
		s = append(s, commonv1.Scope_SCOPE_BALANCES)
	}
	if k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
		s = append(s, commonv1.Scope_SCOPE_TRANSACTIONS)
	}
	if k.has(adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF) || k.has(adapterv1.Capability_CAPABILITY_FRAUD) || k.has(adapterv1.Capability_CAPABILITY_CARDS) {
		s = append(s, commonv1.Scope_SCOPE_SUPPORT)
	}
	if k.has(adapterv1.Capability_CAPABILITY_FRAUD) {
		s = append(s, commonv1.Scope_SCOPE_FRAUD_ALERTS)
	}
	if len(s) == 0 {
		s = append(s, commonv1.Scope_SCOPE_ACCOUNTS)
	}
	return s
}

func (k *kit) startRequest(name string) *adapterv1.StartScaRequest {
	return &adapterv1.StartScaRequest{
		UserReference:   "conformance-" + k.run,
		LoginHint:       k.fx.LoginHint,
		Scopes:          k.scopes(),
		ValidUntil:      timestamppb.New(time.Now().Add(24 * time.Hour)),
		PreferredMethod: adapterv1.ScaMethod_SCA_METHOD_OTP,
		IdempotencyKey:  k.key(name),
	}
}

func (k *kit) testSCA(t *testing.T) {
	if k.fx.LoginHint == "" {
		t.Fatal("Fixtures.LoginHint is required for an adapter with SCA")
	}
	if k.fx.UnknownLoginHint != "" {
		t.Run("UnknownLogin", func(t *testing.T) {
			req := k.startRequest("start-unknown")
			req.LoginHint = k.fx.UnknownLoginHint
			_, err := k.client.StartSca(k.ctx(t), req)
			wantError(t, "StartSca for an unknown login", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		})
	}

	start := k.startRequest("start")
	first, err := k.client.StartSca(k.ctx(t), start)
	if !ok(t, "StartSca", err) {
		t.FailNow()
	}
	k.check(t, "StartSca", first)
	t.Run("StartScaIdempotent", func(t *testing.T) {
		retry, err := k.client.StartSca(k.ctx(t), start)
		if ok(t, "StartSca retried with the same key", err) && !proto.Equal(first, retry) {
			t.Error("StartSca retried with the same key: answer differs from the first")
		}
		other := proto.CloneOf(start)
		other.UserReference += "-other"
		_, err = k.client.StartSca(k.ctx(t), other)
		wantError(t, "StartSca with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})
	if first.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
		t.Skipf("the bank chose %s; the kit completes OTP challenges only (set Fixtures.BankConsentID for the data checks)", first.GetMethod())
	}

	t.Run("BadCode", func(t *testing.T) {
		if k.fx.BadCode == "" {
			t.Skip("no Fixtures.BadCode")
		}
		challenge, err := k.client.StartSca(k.ctx(t), k.startRequest("start-bad-code"))
		if !ok(t, "StartSca", err) {
			return
		}
		resp, err := k.client.VerifySca(k.ctx(t), &adapterv1.VerifyScaRequest{
			BankConsentId: challenge.GetBankConsentId(), Code: k.fx.BadCode, IdempotencyKey: k.key("verify-bad"),
		})
		if err != nil {
			wantError(t, "VerifySca with a wrong code", err,
				commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
			return
		}
		k.check(t, "VerifySca with a wrong code", resp)
		if resp.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FAILED {
			t.Errorf("VerifySca with a wrong code: status %s, want FAILED or an SCA_FAILED error", resp.GetStatus())
		}
	})

	verify := &adapterv1.VerifyScaRequest{BankConsentId: first.GetBankConsentId(), Code: k.fx.GoodCode, IdempotencyKey: k.key("verify")}
	verified, err := k.client.VerifySca(k.ctx(t), verify)
	if !ok(t, "VerifySca with the good code", err) {
		t.FailNow()
	}
	k.check(t, "VerifySca", verified)
	if verified.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("VerifySca with the good code: status %s, want FINALISED", verified.GetStatus())
	}
	k.consentID, k.linked = verified.GetBankConsentId(), true

	t.Run("VerifyScaIdempotent", func(t *testing.T) {
		retry, err := k.client.VerifySca(k.ctx(t), verify)
		if ok(t, "VerifySca retried with the same key", err) && !proto.Equal(verified, retry) {
			t.Error("VerifySca retried with the same key: answer differs from the first")
		}
		other := proto.CloneOf(verify)
		other.Code = k.fx.BadCode
		if other.Code == "" || other.Code == verify.Code {
			other.Code = "00000000"
		}
		_, err = k.client.VerifySca(k.ctx(t), other)
		wantError(t, "VerifySca with a used key and another code", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)

		again, err := k.client.VerifySca(k.ctx(t), &adapterv1.VerifyScaRequest{
			BankConsentId: verified.GetBankConsentId(), Code: k.fx.GoodCode, IdempotencyKey: k.key("verify-again"),
		})
		if ok(t, "VerifySca after FINALISED", err) && again.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			t.Errorf("VerifySca after FINALISED: status %s, want FINALISED again", again.GetStatus())
		}
	})
}

func (k *kit) testAccounts(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		t.Skip("no capability ACCOUNTS")
	}
	resp, err := k.client.ListAccounts(k.ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
	if !ok(t, "ListAccounts", err) {
		t.FailNow()
	}
	k.check(t, "ListAccounts", resp)
	if len(resp.GetAccounts()) == 0 {
		t.Fatal("ListAccounts: the fixture customer must have at least one account")
	}
	seen := map[string]bool{}
	for _, a := range resp.GetAccounts() {
		if seen[a.GetBankAccountId()] {
			t.Errorf("ListAccounts: account id %q appears twice", a.GetBankAccountId())
		}
		seen[a.GetBankAccountId()] = true
	}
	k.accounts = resp.GetAccounts()

	if !k.has(adapterv1.Capability_CAPABILITY_BALANCES) {
		return
	}
	for i, a := range k.accounts {
		t.Run(fmt.Sprintf("GetBalances/accounts[%d]", i), func(t *testing.T) {
			resp, err := k.client.GetBalances(k.ctx(t), &adapterv1.GetBalancesRequest{BankConsentId: k.consentID, BankAccountId: a.GetBankAccountId()})
			if !ok(t, "GetBalances", err) {
				return
			}
			k.check(t, "GetBalances", resp)
			types := map[adapterv1.BalanceType]bool{}
			for _, b := range resp.GetBalances() {
				if types[b.GetType()] {
					t.Errorf("GetBalances: balance type %s appears twice", b.GetType())
				}
				types[b.GetType()] = true
			}
		})
	}
	t.Run("GetBalances/UnknownAccount", func(t *testing.T) {
		_, err := k.client.GetBalances(k.ctx(t), &adapterv1.GetBalancesRequest{BankConsentId: k.consentID, BankAccountId: unknownID})
		wantError(t, "GetBalances of an unknown account", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
}

// testTransactions syncs every account in small pages, then catches up a
// few times, and checks that a posted transaction replaces its pending one
// in the same response.
func (k *kit) testTransactions(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_TRANSACTIONS) {
		t.Skip("no capability TRANSACTIONS")
	}
	if len(k.accounts) == 0 {
		t.Skip("no accounts known (ListAccounts did not pass)")
	}
	cursors := map[string]string{}
	for i, a := range k.accounts {
		t.Run(fmt.Sprintf("accounts[%d]", i), func(t *testing.T) {
			pending := map[string]bool{}
			known := map[string]bool{}
			cursor := ""
			const maxCalls = 60
			catchUps := 0
			for call := 0; call < maxCalls && catchUps < 3; call++ {
				resp, err := k.client.SyncTransactions(k.ctx(t), &adapterv1.SyncTransactionsRequest{
					BankConsentId: k.consentID, BankAccountId: a.GetBankAccountId(), Cursor: cursor, Count: 2,
				})
				if !ok(t, "SyncTransactions", err) {
					return
				}
				k.check(t, "SyncTransactions", resp)
				for _, tx := range resp.GetAdded() {
					id := tx.GetTransactionId()
					if known[id] {
						t.Errorf("SyncTransactions: transaction %q added twice", id)
					}
					known[id] = true
					if tx.GetStatus() == adapterv1.TransactionStatus_TRANSACTION_STATUS_PENDING {
						pending[id] = true
					}
					if tx.GetBankCardId() != "" || tx.GetMaskedCardNumber() != nil {
						k.cardTransactions = append(k.cardTransactions, cardTransaction{accountID: a.GetBankAccountId(), tx: tx})
					}
					if p := tx.GetPendingTransactionId(); p != "" && pending[p] && !slices.Contains(resp.GetRemovedTransactionIds(), p) {
						t.Errorf("SyncTransactions: transaction %q posts pending %q but the same response does not remove it", id, p)
					}
				}
				for _, id := range resp.GetRemovedTransactionIds() {
					delete(known, id)
					delete(pending, id)
					k.cardTransactions = slices.DeleteFunc(k.cardTransactions, func(c cardTransaction) bool {
						return c.accountID == a.GetBankAccountId() && c.tx.GetTransactionId() == id
					})
				}
				cursor = resp.GetNextCursor()
				if !resp.GetHasMore() {
					catchUps++
				}
			}
			if catchUps == 0 {
				t.Errorf("SyncTransactions: has_more still true after %d pages of 2", maxCalls)
			}
			cursors[a.GetBankAccountId()] = cursor
		})
	}
	t.Run("MalformedCursor", func(t *testing.T) {
		_, err := k.client.SyncTransactions(k.ctx(t), &adapterv1.SyncTransactionsRequest{
			BankConsentId: k.consentID, BankAccountId: k.accounts[0].GetBankAccountId(), Cursor: "conformance-not-a-cursor",
		})
		wantError(t, "SyncTransactions with a malformed cursor", err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
	})
	if len(k.accounts) > 1 && cursors[k.accounts[0].GetBankAccountId()] != "" {
		t.Run("CursorOfAnotherAccount", func(t *testing.T) {
			_, err := k.client.SyncTransactions(k.ctx(t), &adapterv1.SyncTransactionsRequest{
				BankConsentId: k.consentID, BankAccountId: k.accounts[1].GetBankAccountId(), Cursor: cursors[k.accounts[0].GetBankAccountId()],
			})
			wantError(t, "SyncTransactions with another account's cursor", err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
		})
	}
	t.Run("UnknownAccount", func(t *testing.T) {
		_, err := k.client.SyncTransactions(k.ctx(t), &adapterv1.SyncTransactionsRequest{BankConsentId: k.consentID, BankAccountId: unknownID})
		wantError(t, "SyncTransactions of an unknown account", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
}

// maxPurchaseTries bounds how many card transactions the kit asks for
// purchase details before it finds one the merchant sent them for.
const maxPurchaseTries = 20

// testPurchaseDetails asks for the purchase behind a card transaction that
// SyncTransactions showed: it keeps the protocol's rules, was charged what
// the transaction says, adds up, and reads the same twice. The bank may
// have no details for some card transactions (NOT_FOUND): the kit tries
// the next. An unknown transaction is NOT_FOUND.
func (k *kit) testPurchaseDetails(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS) {
		t.Skip("no capability PURCHASE_DETAILS")
	}
	if len(k.accounts) == 0 {
		t.Skip("no accounts known (ListAccounts did not pass)")
	}
	t.Run("UnknownTransaction", func(t *testing.T) {
		account := k.accounts[0].GetBankAccountId()
		if len(k.cardTransactions) > 0 {
			account = k.cardTransactions[0].accountID
		}
		_, err := k.client.GetPurchaseDetails(k.ctx(t), &adapterv1.GetPurchaseDetailsRequest{
			BankConsentId: k.consentID, BankAccountId: account, TransactionId: unknownID,
		})
		wantError(t, "GetPurchaseDetails of an unknown transaction", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
	t.Run("CardTransaction", func(t *testing.T) {
		for i, ct := range k.cardTransactions {
			if i == maxPurchaseTries {
				break
			}
			req := &adapterv1.GetPurchaseDetailsRequest{
				BankConsentId: k.consentID, BankAccountId: ct.accountID, TransactionId: ct.tx.GetTransactionId(),
			}
			what := fmt.Sprintf("GetPurchaseDetails of card transaction %q", ct.tx.GetTransactionId())
			details, err := k.client.GetPurchaseDetails(k.ctx(t), req)
			if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
				checkErrorInfo(t, what, err)
				continue // the merchant sent no details for this one
			}
			if !ok(t, what, err) {
				return
			}
			k.check(t, what, details)
			checkPurchaseTotal(t, what, details, ct.tx)
			again, err := k.client.GetPurchaseDetails(k.ctx(t), req)
			if ok(t, what+" again", err) && !proto.Equal(details, again) {
				t.Errorf("%s: answers differently from one call to the next", what)
			}
			return
		}
		if len(k.cardTransactions) == 0 {
			t.Skip("SyncTransactions showed no card transaction (bank_card_id or masked_card_number set); not checked")
		}
		t.Skipf("the bank has purchase details for none of the first %d card transactions; not checked",
			min(len(k.cardTransactions), maxPurchaseTries))
	})
}

// checkPurchaseTotal wants the purchase's total to be what the card was
// charged (the transaction's amount, as a positive amount, in its currency)
// and, when the subtotal is given, the sums to add up as bankbridge's
// receipts do: subtotal = Σ quantity × unit_price, and total = subtotal +
// shipping_cost + tax − the adjustments.
func checkPurchaseTotal(t *testing.T, what string, p *adapterv1.GetPurchaseDetailsResponse, tx *adapterv1.Transaction) {
	t.Helper()
	charged := new(big.Int).Abs(nanos(tx.GetAmount()))
	if got := nanos(p.GetTotal()); got.Cmp(charged) != 0 || p.GetTotal().GetCurrencyCode() != tx.GetAmount().GetCurrencyCode() {
		t.Errorf("%s: total is %s %s, want the transaction's %s %s", what,
			decimal(got), p.GetTotal().GetCurrencyCode(), decimal(charged), tx.GetAmount().GetCurrencyCode())
	}
	if p.GetSubtotal() == nil {
		return
	}
	items := new(big.Int)
	for _, it := range p.GetLineItems() {
		items.Add(items, new(big.Int).Mul(big.NewInt(int64(it.GetQuantity())), nanos(it.GetUnitPrice())))
	}
	if nanos(p.GetSubtotal()).Cmp(items) != 0 {
		t.Errorf("%s: subtotal is %s, but the line items (quantity × unit_price) add up to %s", what, decimal(nanos(p.GetSubtotal())), decimal(items))
	}
	sum := new(big.Int).Add(nanos(p.GetSubtotal()), nanos(p.GetShippingCost()))
	sum.Add(sum, nanos(p.GetTax()))
	for _, a := range p.GetAdjustments() {
		sum.Sub(sum, nanos(a.GetAmount()))
	}
	if sum.Cmp(nanos(p.GetTotal())) != 0 {
		t.Errorf("%s: subtotal + shipping_cost + tax − adjustments is %s, but total is %s", what, decimal(sum), decimal(nanos(p.GetTotal())))
	}
}

// nanos is m in billionths of its unit; 0 for an unset amount.
func nanos(m *commonv1.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(1_000_000_000))
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// decimal writes an amount in billionths as a decimal number, e.g. 59.99.
func decimal(n *big.Int) string {
	r := new(big.Rat).SetFrac(n, big.NewInt(1_000_000_000))
	s := r.FloatString(9)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i == 2 {
		s += "0"
	}
	return s
}

func (k *kit) testSupport(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF) {
		t.Skip("no capability SUPPORT_HANDOFF")
	}
	start := &adapterv1.StartSupportHandoffRequest{
		BankConsentId:         k.consentID,
		ConversationReference: "conformance-" + k.run,
		Transcript: []*adapterv1.TranscriptMessage{
			{Sender: adapterv1.TranscriptSender_TRANSCRIPT_SENDER_USER, Text: "I have a question about a payment.", SendTime: timestamppb.New(time.Now().Add(-time.Minute))},
			{Sender: adapterv1.TranscriptSender_TRANSCRIPT_SENDER_ASSISTANT, Text: "Let me get you to an agent.", SendTime: timestamppb.Now()},
		},
		Reason:         "The user asked for a human agent.",
		LanguageCode:   "en",
		IdempotencyKey: k.key("handoff"),
	}
	opened, err := k.client.StartSupportHandoff(k.ctx(t), start)
	if !ok(t, "StartSupportHandoff", err) {
		t.FailNow()
	}
	k.check(t, "StartSupportHandoff", opened)
	k.supportCase = opened.GetCaseId()
	retry, err := k.client.StartSupportHandoff(k.ctx(t), start)
	if ok(t, "StartSupportHandoff retried with the same key", err) && retry.GetCaseId() != opened.GetCaseId() {
		t.Error("StartSupportHandoff retried with the same key: opened another case")
	}
	other := proto.CloneOf(start)
	other.Reason = "Another reason."
	_, err = k.client.StartSupportHandoff(k.ctx(t), other)
	wantError(t, "StartSupportHandoff with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	k.awaitPrompt(t, "AgentJoined for the case StartSupportHandoff opened", func(ev *adapterv1.StreamEventsResponse) bool {
		return ev.GetAgentJoined().GetCaseId() == opened.GetCaseId()
	})

	msg := &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: opened.GetCaseId(), Text: "Here is more detail.", ClientMessageId: k.key("message"),
	}
	sent, err := k.client.SendSupportMessage(k.ctx(t), msg)
	if ok(t, "SendSupportMessage", err) {
		k.check(t, "SendSupportMessage", sent)
		again, err := k.client.SendSupportMessage(k.ctx(t), msg)
		if ok(t, "SendSupportMessage retried with the same id", err) && again.GetMessageId() != sent.GetMessageId() {
			t.Error("SendSupportMessage retried with the same client_message_id: delivered twice")
		}
		changed := proto.CloneOf(msg)
		changed.Text = "Something else."
		_, err = k.client.SendSupportMessage(k.ctx(t), changed)
		wantError(t, "SendSupportMessage with a used id and another text", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	}

	_, err = k.client.SendSupportMessage(k.ctx(t), &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: unknownID, Text: "Hello?", ClientMessageId: k.key("message-unknown-case"),
	})
	wantError(t, "SendSupportMessage on an unknown case", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

	t.Run("NotifyThreadControl", func(t *testing.T) { k.testThreadControl(t, opened.GetCaseId()) })
}

// testThreadControl tells the bank, on the case the kit opened, each thing
// bankbridge's assistant does to a thread, in an order a conversation can
// take: REQUEST (the agent holds control after the handoff), PASS, TAKE,
// and CLOSE last. Each succeeds, and each is idempotent on its key; an
// unknown case is NOT_FOUND.
func (k *kit) testThreadControl(t *testing.T, caseID string) {
	notify := func(action adapterv1.ThreadControlAction, key string) *adapterv1.NotifyThreadControlRequest {
		return &adapterv1.NotifyThreadControlRequest{
			BankConsentId: k.consentID, CaseId: caseID, Action: action,
			Metadata: "conformance check", IdempotencyKey: k.key(key),
		}
	}
	_, err := k.client.NotifyThreadControl(k.ctx(t), &adapterv1.NotifyThreadControlRequest{
		BankConsentId: k.consentID, CaseId: unknownID, Action: adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
		IdempotencyKey: k.key("control-unknown-case"),
	})
	wantError(t, "NotifyThreadControl on an unknown case", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

	for _, action := range []adapterv1.ThreadControlAction{
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_PASS,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
		adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_CLOSE,
	} {
		name := strings.TrimPrefix(action.String(), "THREAD_CONTROL_ACTION_")
		what := "NotifyThreadControl " + name
		req := notify(action, "control-"+strings.ToLower(name))
		resp, err := k.client.NotifyThreadControl(k.ctx(t), req)
		if !ok(t, what, err) {
			continue
		}
		k.check(t, what, resp)
		retry, err := k.client.NotifyThreadControl(k.ctx(t), req)
		if ok(t, what+" retried with the same key", err) {
			k.check(t, what+" retried with the same key", retry)
		}
		other := proto.CloneOf(req)
		other.Metadata = "another note"
		_, err = k.client.NotifyThreadControl(k.ctx(t), other)
		wantError(t, what+" with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		if action == adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_REQUEST {
			k.awaitPrompt(t, "AgentPassedControl after NotifyThreadControl REQUEST", func(ev *adapterv1.StreamEventsResponse) bool {
				return ev.GetAgentPassedControl().GetCaseId() == caseID
			})
		}
	}

	// The bank should close the case on CLOSE; it may take its time, but
	// a message it refuses must be refused as one on a closed case.
	_, err = k.client.SendSupportMessage(k.ctx(t), &adapterv1.SendSupportMessageRequest{
		BankConsentId: k.consentID, CaseId: caseID, Text: "Are you still there?", ClientMessageId: k.key("message-after-close"),
	})
	if err != nil {
		wantError(t, "SendSupportMessage after NotifyThreadControl CLOSE", err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
	}
}

func (k *kit) testFraud(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_FRAUD) {
		t.Skip("no capability FRAUD")
	}
	if len(k.accounts) == 0 {
		t.Skip("no accounts known (ListAccounts did not pass)")
	}
	report := &adapterv1.ReportFraudRequest{
		BankConsentId:  k.consentID,
		BankAccountId:  k.accounts[0].GetBankAccountId(),
		Category:       adapterv1.FraudCategory_FRAUD_CATEGORY_PHISHING,
		Description:    "Conformance check: a phishing mail asked for my login.",
		IdempotencyKey: k.key("report"),
	}
	filed, err := k.client.ReportFraud(k.ctx(t), report)
	if ok(t, "ReportFraud", err) {
		k.check(t, "ReportFraud", filed)
		k.fraudCase = filed.GetCaseId()
		if filed.GetCardBlockStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED {
			t.Errorf("ReportFraud without block_card: card_block_status %s, want NOT_REQUESTED", filed.GetCardBlockStatus())
		}
		retry, err := k.client.ReportFraud(k.ctx(t), report)
		if ok(t, "ReportFraud retried with the same key", err) && retry.GetCaseId() != filed.GetCaseId() {
			t.Error("ReportFraud retried with the same key: filed another case")
		}
		other := proto.CloneOf(report)
		other.Category = adapterv1.FraudCategory_FRAUD_CATEGORY_SCAM
		_, err = k.client.ReportFraud(k.ctx(t), other)
		wantError(t, "ReportFraud with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		k.awaitPrompt(t, "FraudCaseUpdated RECEIVED for the case ReportFraud filed", func(ev *adapterv1.StreamEventsResponse) bool {
			u := ev.GetFraudCaseUpdated()
			return u.GetCaseId() == filed.GetCaseId() && u.GetStatus() == adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED
		})
	}
	t.Run("AnswerFraudAlert", k.testAnswerFraudAlert)
}

// testAnswerFraudAlert answers an alert the bank raised under the kit's
// consent: "not me", the same again (success), then "this was me" (a
// conflicting answer: FAILED_PRECONDITION). An unknown alert is NOT_FOUND.
func (k *kit) testAnswerFraudAlert(t *testing.T) {
	answer := func(alertID string, a adapterv1.FraudAlertAnswer) (*adapterv1.AnswerFraudAlertResponse, error) {
		return k.client.AnswerFraudAlert(k.ctx(t), &adapterv1.AnswerFraudAlertRequest{BankConsentId: k.consentID, AlertId: alertID, Answer: a})
	}
	_, err := answer(unknownID, adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED)
	wantError(t, "AnswerFraudAlert of an unknown alert", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

	switch {
	case k.fx.TriggerFraudAlert == nil:
		t.Log("AnswerFraudAlert: no Fixtures.TriggerFraudAlert; answering a real alert not checked")
		return
	case k.watch == nil:
		t.Log("AnswerFraudAlert: no event stream to learn the alert's id from (EVENTS); answering a real alert not checked")
		return
	}
	mark := k.watch.len()
	if err := k.fx.TriggerFraudAlert(k.ctx(t)); err != nil {
		t.Fatalf("Fixtures.TriggerFraudAlert: %v", err)
	}
	ev, err := k.watch.await(mark, eventWait, func(ev *adapterv1.StreamEventsResponse) bool {
		return ev.GetFraudAlert().GetBankConsentId() == k.consentID
	})
	if err != nil || ev == nil {
		t.Fatalf("StreamEvents: no FraudAlert under the kit's consent within %s of TriggerFraudAlert (%v); "+
			"alerts go to every consent of the customer that covers SCOPE_FRAUD_ALERTS", eventWait, err)
	}
	alertID := ev.GetFraudAlert().GetAlertId()
	notMe := adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED
	resp, err := answer(alertID, notMe)
	if !ok(t, "AnswerFraudAlert NOT_RECOGNISED", err) {
		return
	}
	k.check(t, "AnswerFraudAlert", resp)
	_, err = answer(alertID, notMe)
	ok(t, "AnswerFraudAlert with the same answer again", err)
	_, err = answer(alertID, adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED)
	wantError(t, "AnswerFraudAlert with another answer", err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
}

// eventReader receives a stream's events in the background.
type eventReader struct {
	events chan *adapterv1.StreamEventsResponse
	err    chan error
}

// readEvents reads stream until it fails or ctx, the stream's context,
// ends.
func readEvents(ctx context.Context, stream grpc.ServerStreamingClient[adapterv1.StreamEventsResponse]) *eventReader {
	r := &eventReader{events: make(chan *adapterv1.StreamEventsResponse), err: make(chan error, 1)}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				r.err <- err
				return
			}
			select {
			case r.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return r
}

// next waits up to d for the next event.
func (r *eventReader) next(d time.Duration) (*adapterv1.StreamEventsResponse, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case ev := <-r.events:
		return ev, nil
	case err := <-r.err:
		return nil, err
	case <-timer.C:
		return nil, nil
	}
}

func (k *kit) testEvents(t *testing.T) {
	if !k.has(adapterv1.Capability_CAPABILITY_EVENTS) {
		t.Skip("no capability EVENTS")
	}
	t.Run("WhatTheKitCaused", k.testWatched)
	t.Run("MalformedCursor", func(t *testing.T) {
		stream, err := k.client.StreamEvents(k.ctx(t), &adapterv1.StreamEventsRequest{ResumeCursor: "conformance-not-a-cursor"})
		if err == nil {
			_, err = stream.Recv()
		}
		wantError(t, "StreamEvents with a malformed cursor", err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
	})
	if k.fx.TriggerEvent == nil {
		t.Log("StreamEvents: no Fixtures.TriggerEvent; delivery and resumption not checked")
		return
	}

	ctx, cancel := context.WithCancel(t.Context())
	stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
	if !ok(t, "StreamEvents", err) {
		cancel()
		return
	}
	live := readEvents(ctx, stream)
	// An empty cursor means "from now on", and the stream may not be open
	// at the bank yet: trigger until an event arrives.
	var got []*adapterv1.StreamEventsResponse
	for attempt := 0; attempt < 50 && len(got) == 0; attempt++ {
		if err := k.fx.TriggerEvent(k.ctx(t)); err != nil {
			cancel()
			t.Fatalf("Fixtures.TriggerEvent: %v", err)
		}
		ev, err := live.next(100 * time.Millisecond)
		if err != nil {
			cancel()
			ok(t, "StreamEvents", err)
			return
		}
		if ev != nil {
			got = append(got, ev)
		}
	}
	if len(got) == 0 {
		cancel()
		t.Fatal("StreamEvents: no event arrived after TriggerEvent")
	}
	if err := k.fx.TriggerEvent(k.ctx(t)); err != nil {
		cancel()
		t.Fatalf("Fixtures.TriggerEvent: %v", err)
	}
	ev, err := live.next(eventWait)
	cancel()
	if err != nil || ev == nil {
		t.Fatalf("StreamEvents: the second triggered event did not arrive (%v)", err)
	}
	got = append(got, ev)
	for i, ev := range got {
		k.check(t, fmt.Sprintf("StreamEvents event %d", i), ev)
	}
	if got[0].GetCursor() == got[1].GetCursor() {
		t.Error("StreamEvents: two events carry the same cursor")
	}

	t.Run("Resume", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{ResumeCursor: got[0].GetCursor()})
		if !ok(t, "StreamEvents with a resume cursor", err) {
			return
		}
		first, err := readEvents(ctx, stream).next(eventWait)
		switch {
		case err != nil:
			ok(t, "StreamEvents with a resume cursor", err)
		case first == nil:
			t.Error("StreamEvents resumed after an event: nothing arrived, want the event that followed it")
		case !proto.Equal(first, got[1]):
			t.Errorf("StreamEvents resumed after an event: got cursor %q first, want the next event (cursor %q)", first.GetCursor(), got[1].GetCursor())
		}
	})
}

// testExtension extends the consent the kit linked: the answer keeps the
// protocol's rules whichever way the bank goes (extended, or a challenge
// that VerifySca with the good code completes), never grants more than
// asked, is idempotent on its key, and leaves the consent serving.
func (k *kit) testExtension(t *testing.T) {
	requested := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	req := &adapterv1.ExtendConsentRequest{BankConsentId: k.consentID, ValidUntil: timestamppb.New(requested), IdempotencyKey: k.key("extend")}
	first, err := k.client.ExtendConsent(k.ctx(t), req)
	if !ok(t, "ExtendConsent", err) {
		return
	}
	k.check(t, "ExtendConsent", first)
	t.Run("ExtendConsentIdempotent", func(t *testing.T) {
		retry, err := k.client.ExtendConsent(k.ctx(t), req)
		if ok(t, "ExtendConsent retried with the same key", err) && !proto.Equal(first, retry) {
			t.Error("ExtendConsent retried with the same key: answer differs from the first")
		}
		other := proto.CloneOf(req)
		other.ValidUntil = timestamppb.New(requested.Add(time.Hour))
		_, err = k.client.ExtendConsent(k.ctx(t), other)
		wantError(t, "ExtendConsent with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})
	var until time.Time
	switch o := first.GetOutcome().(type) {
	case *adapterv1.ExtendConsentResponse_Extended:
		until = o.Extended.GetValidUntil().AsTime()
	case *adapterv1.ExtendConsentResponse_ScaRequired:
		if o.ScaRequired.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
			t.Skipf("the bank chose %s for the extension; the kit completes OTP challenges only", o.ScaRequired.GetMethod())
		}
		resp, err := k.client.VerifySca(k.ctx(t), &adapterv1.VerifyScaRequest{
			BankConsentId: k.consentID, Code: k.fx.GoodCode, IdempotencyKey: k.key("verify-extension"),
		})
		if !ok(t, "VerifySca of the extension's challenge", err) {
			return
		}
		k.check(t, "VerifySca of the extension's challenge", resp)
		if resp.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			t.Fatalf("VerifySca of the extension's challenge with the good code: status %s, want FINALISED", resp.GetStatus())
		}
		until = resp.GetValidUntil().AsTime()
		k.consentID = resp.GetBankConsentId()
	}
	if until.After(requested) {
		t.Errorf("the extension grants until %s, after the %s asked for", until.Format(time.RFC3339), requested.Format(time.RFC3339))
	}
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		_, err := k.client.ListAccounts(k.ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
		ok(t, "ListAccounts on the extended consent", err)
	}
}

func (k *kit) testRevoke(t *testing.T) {
	req := &adapterv1.RevokeConsentRequest{BankConsentId: k.consentID}
	if _, err := k.client.RevokeConsent(k.ctx(t), req); !ok(t, "RevokeConsent", err) {
		return
	}
	_, err := k.client.RevokeConsent(k.ctx(t), req)
	ok(t, "RevokeConsent again", err)
	if k.has(adapterv1.Capability_CAPABILITY_ACCOUNTS) {
		_, err := k.client.ListAccounts(k.ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: k.consentID})
		wantError(t, "ListAccounts on a revoked consent", err,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	}
}
