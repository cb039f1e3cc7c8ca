// Package conformance is the bank adapter conformance kit: named checks
// that every bankbridge.adapter.v1 implementation must pass, whether it is
// a Go adapter in process or a gRPC server in any language.
//
// Integrators run it with the bankbridge-conformance command (cmd/), which
// writes a JUnit XML and a Markdown report listing every check as passed,
// failed or skipped with its reason. Go adapters can also run it as a Go
// test:
//
//	func TestConformance(t *testing.T) {
//		client, stop := adapters.NewInMemoryClient(adapters.NewServer(myBank))
//		defer stop()
//		conformance.Run(t, client, conformance.Fixtures{
//			LoginHint: "alice", GoodCode: "123456", BadCode: "000000",
//		})
//	}
//
// Each check has a stable id ("transactions/count-honoured"); [Checks]
// lists them with what each asks of the bank's test data and what it
// proves (CHECKS.md is generated from that list). Under go test each check
// is a subtest named by its id.
//
// It calls the adapter as bankbridge does, but it does change the test
// customers' state at the bank: it links, opens and closes support cases,
// files fraud reports, answers a fraud alert, blocks one of the customer's
// cards (and unblocks it again when its challenge is OTP) and revokes what
// it linked. Run it against a test bank.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Fixtures describe the test bank's customers the kit works with.
// fixtures.example.yaml documents the same fields as the command reads
// them.
type Fixtures struct {
	// LoginHint is the bank login of a test customer whose linking and
	// data calls succeed and who has at least one account. Required when
	// the adapter implements SCA.
	LoginHint string
	// UnknownLoginHint is a login the bank knows no customer by; empty
	// skips sca/unknown-login.
	UnknownLoginHint string
	// GoodCode is the one-time code the bank accepts for every test
	// customer, for linking and for lifting a card block.
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
	// SecondCustomer is another customer with an account of their own, for
	// accounts/other-customer-isolation; zero skips it.
	SecondCustomer Customer
	// UnavailableCustomer is a customer whose bank the test bank answers as
	// down, for errors/bank-unavailable; zero skips it.
	UnavailableCustomer Customer
	// APIKey is the key bankbridge presents to the adapter (metadata
	// bankbridge-credential-api_key, as bankbridge's remote client sends
	// it). The kit sends it on every call, and auth/credentials-rejected
	// checks that a wrong one and none are refused. Empty skips that
	// check: the client given to the kit must then carry what the adapter
	// asks for itself. Leave it empty for a client that already sends a
	// key (a bankbridge registry client): the adapter would see two.
	APIKey string
	// TriggerEvent makes the bank emit at least one event (e.g. a fraud
	// alert for the customer); nil skips events/delivery and
	// events/resume. The kit also calls it to know that the stream on
	// which it watches what its own calls cause is open at the bank.
	TriggerEvent func(ctx context.Context) error
	// TriggerFraudAlert makes the bank raise a fraud alert on the fixture
	// customer's consents that cover SCOPE_FRAUD_ALERTS (the kit's among
	// them), for an adapter with FRAUD and EVENTS: the kit takes the alert
	// from StreamEvents and answers it with AnswerFraudAlert. nil skips
	// fraud/answer-alert.
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

// Customer is a test customer besides the main one: a login the kit links
// with OTP SCA and [Fixtures.GoodCode], or a consent the bank granted.
type Customer struct {
	LoginHint     string
	BankConsentID string
}

func (c Customer) zero() bool { return c.LoginHint == "" && c.BankConsentID == "" }

// unknownID is a well-formed id that no bank knows.
const unknownID = "conformance-unknown-0000"

// eventWait bounds how long the kit waits for an event it triggered.
const eventWait = 5 * time.Second

// Run runs the conformance checks against client as subtests of t, one
// per check, named by the check's id.
func Run(t *testing.T, client adapterv1.BankAdapterServiceClient, fx Fixtures) {
	t.Helper()
	k, err := newKit(client, fx)
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
	r := &runner{t: t, ctx: t.Context(), report: newReport(nil), checks: registry(), started: map[string]bool{}}
	if !k.runAll(r) {
		t.Fatal("conformance: info/adapter-info must pass before anything else can be checked")
	}
	r.report.close("an earlier check stopped the run")
	var skipped []string
	for _, res := range r.report.Results {
		if res.Status == Skipped {
			skipped = append(skipped, res.ID+": "+res.Reason)
		}
	}
	if len(skipped) > 0 {
		t.Logf("conformance: %d checks skipped:\n  %s", len(skipped), strings.Join(skipped, "\n  "))
	}
}

// RunChecks runs the conformance checks against client without go test,
// printing a line per check to progress (nil prints nothing), and returns
// the report: every check of [Checks] with its status. It returns an
// error only when ctx ends first.
func RunChecks(ctx context.Context, client adapterv1.BankAdapterServiceClient, fx Fixtures, progress io.Writer) (*Report, error) {
	k, err := newKit(client, fx)
	if err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, report: newReport(progress), checks: registry(), started: map[string]bool{}}
	if !k.runAll(r) {
		r.report.close("info/adapter-info failed, and every other check needs what it tells")
	} else {
		r.report.close("an earlier check stopped the run")
	}
	r.report.Adapter = k.adapter
	if ctx.Err() != nil {
		return r.report, fmt.Errorf("conformance run cut short: %w", context.Cause(ctx))
	}
	return r.report, nil
}

func registry() map[string]CheckInfo {
	m := make(map[string]CheckInfo, len(checks))
	for _, c := range checks {
		m[c.ID] = c
	}
	return m
}

func newKit(client adapterv1.BankAdapterServiceClient, fx Fixtures) (*kit, error) {
	if fx.CallTimeout <= 0 {
		fx.CallTimeout = 10 * time.Second
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	return &kit{client: client, fx: fx, validator: v, run: randomHex()}, nil
}

// runAll runs every check in the registry's order; false when
// info/adapter-info failed, which every other check needs.
func (k *kit) runAll(r *runner) bool {
	if !r.check(k, "info/adapter-info", k.testInfo) {
		return false
	}
	r.check(k, "health/check-health", k.testHealth)
	r.check(k, "auth/credentials-rejected", k.testCredentials)
	r.check(k, "capabilities/declared-match-implemented", k.testUnimplemented)
	r.check(k, "validation/invalid-requests", k.testInvalidRequests)
	r.check(k, "consent/unknown-consent", k.testUnknownConsent)
	k.runSCA(r)
	if k.consentID == "" {
		k.consentID = k.fx.BankConsentID
	}
	// The watch outlives the checks whose calls it watches.
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	r.check(k, "events/watch", func(c *C) { k.openWatch(ctx, c) })
	r.check(k, "accounts/list", k.testAccounts)
	r.check(k, "accounts/other-customer-isolation", k.testIsolation)
	r.check(k, "balances/get", k.testBalances)
	r.check(k, "balances/unknown-account", k.testBalancesUnknownAccount)
	k.runTransactions(r)
	r.check(k, "purchases/unknown-transaction", k.testPurchaseUnknown)
	r.check(k, "purchases/card-transaction", k.testPurchaseDetails)
	r.check(k, "support/handoff", k.testSupportHandoff)
	r.check(k, "support/message", k.testSupportMessage)
	r.check(k, "support/thread-control", k.testThreadControl)
	r.check(k, "cards/list", func(c *C) {
		k.needConsent(c)
		k.cards = k.listCards(c, "ListCards")
	})
	r.check(k, "cards/unknown-card", k.testUnknownCard)
	r.check(k, "cards/block-unblock", k.testBlockUnblock)
	r.check(k, "fraud/report", k.testFraudReport)
	r.check(k, "fraud/answer-unknown-alert", k.testAnswerUnknownAlert)
	r.check(k, "fraud/answer-alert", k.testAnswerFraudAlert)
	k.runEvents(r)
	r.check(k, "errors/bank-unavailable", k.testBankUnavailable)
	r.check(k, "extend/extend-consent", k.testExtension)
	r.check(k, "extend/idempotent", k.testExtensionIdempotent)
	r.check(k, "revoke/revoke-consent", k.testRevoke)
	return true
}

type kit struct {
	client    adapterv1.BankAdapterServiceClient
	fx        Fixtures
	validator protovalidate.Validator
	run       string // makes this run's idempotency keys and references unique

	adapter      Adapter
	capabilities []adapterv1.Capability
	// scaStart is the kit's first StartSca and its answer.
	scaStart    *adapterv1.StartScaRequest
	scaFirst    *adapterv1.StartScaResponse
	scaVerify   *adapterv1.VerifyScaRequest
	scaVerified *adapterv1.VerifyScaResponse
	consentID   string
	linked      bool // consentID was linked by the kit, which may revoke it
	accounts    []*adapterv1.Account
	// cursors are where transactions/sync left each account.
	cursors map[string]string
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
	// delivered are two events events/delivery saw, in order.
	delivered []*adapterv1.StreamEventsResponse
	// extended is ExtendConsent's first answer and its request.
	extendReq *adapterv1.ExtendConsentRequest
	extended  *adapterv1.ExtendConsentResponse
}

// cardTransaction is a card payment and the account it is on.
type cardTransaction struct {
	accountID string
	tx        *adapterv1.Transaction
}

func (k *kit) has(c adapterv1.Capability) bool { return slices.Contains(k.capabilities, c) }

// needConsent skips the check without a consent to run it on.
func (k *kit) needConsent(c *C) {
	c.Helper()
	if k.consentID == "" {
		c.Skip("no consent on the main customer: sca/link did not pass, or the adapter has no OTP SCA and the fixtures give no customer.bank_consent_id")
	}
}

// needAccounts skips the check without the accounts accounts/list found.
func (k *kit) needAccounts(c *C) {
	c.Helper()
	k.needConsent(c)
	if len(k.accounts) == 0 {
		c.Skip("no accounts known (accounts/list did not pass)")
	}
}

// ctx is a call's context: the kit's timeout, the purpose bankbridge
// declares on data calls, and the API key when the fixtures give one.
func (k *kit) ctx(c *C) context.Context {
	return k.ctxWithKey(c, k.fx.APIKey)
}

// ctxWithKey is ctx presenting key instead; "" presents none.
func (k *kit) ctxWithKey(c *C, key string) context.Context {
	ctx, cancel := context.WithTimeout(c.Context(), k.fx.CallTimeout)
	c.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, adapters.PurposeMetadata, "ACCOUNT_INFORMATION")
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, key)
	}
	return ctx
}

// key returns an idempotency key unique to this run.
func (k *kit) key(name string) string { return "conf-" + k.run + "-" + name }

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// check holds a response to the protocol's rules and the masking rule.
func (k *kit) check(c *C, what string, m proto.Message) {
	c.Helper()
	if err := k.validator.Validate(m); err != nil {
		c.Errorf("%s: response breaks the protocol's rules: %v", what, err)
	}
	if paths := UnmaskedNumbers(m); len(paths) > 0 {
		c.Errorf("%s: response shows a full account or card number at %s", what, strings.Join(paths, ", "))
	}
}

// ok fails the check when a call that should succeed failed, saying how.
func ok(c *C, what string, err error) bool {
	c.Helper()
	if err != nil {
		c.Errorf("%s: want success, got %s", what, describe(err))
		checkErrorInfo(c, what, err)
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
func checkErrorInfo(c *C, what string, err error) {
	c.Helper()
	info := apierr.Info(err)
	switch {
	case info == nil:
		c.Errorf("%s: error %s carries no ErrorInfo", what, status.Code(err))
		return
	case info.GetDomain() != apierr.Domain:
		c.Errorf("%s: ErrorInfo domain is %q, want %q", what, info.GetDomain(), apierr.Domain)
		return
	}
	reason := apierr.ParseReason(info.GetReason())
	if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		c.Errorf("%s: ErrorInfo reason %q is not a bankbridge.common.v1.ErrorReason", what, info.GetReason())
		return
	}
	if got, want := status.Code(err), apierr.Code(reason); got != want {
		c.Errorf("%s: reason %s travels with %s, got %s", what, info.GetReason(), want, got)
	}
	if code := status.Code(err); code == codes.Unavailable || code == codes.ResourceExhausted {
		if retryInfo(err) == nil {
			c.Errorf("%s: %s without RetryInfo", what, code)
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

// wantError fails the check unless err has one of reasons (and so its code).
func wantError(c *C, what string, err error, reasons ...commonv1.ErrorReason) bool {
	c.Helper()
	var names []string
	for _, r := range reasons {
		names = append(names, fmt.Sprintf("%s (%s)", apierr.Code(r), apierr.ReasonString(r)))
	}
	if err == nil {
		c.Errorf("%s: want %s, got success", what, strings.Join(names, " or "))
		return false
	}
	checkErrorInfo(c, what, err)
	if !slices.Contains(reasons, apierr.Reason(err)) {
		c.Errorf("%s: want %s, got %s", what, strings.Join(names, " or "), describe(err))
		return false
	}
	return true
}

// detached is a call's context outside any check, for clean-ups that run
// after the check's context ended.
func (k *kit) detached() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), k.fx.CallTimeout)
	ctx = metadata.AppendToOutgoingContext(ctx, adapters.PurposeMetadata, "ACCOUNT_INFORMATION")
	if k.fx.APIKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, k.fx.APIKey)
	}
	return ctx, cancel
}
