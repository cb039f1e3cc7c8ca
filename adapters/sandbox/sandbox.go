// Package sandbox is Sandbox Bank: a complete bank adapter, built with the
// adapter SDK, with deterministic customers for development and tests. It
// implements every capability, in process ([New] with
// bankbridge's adapters/runtime.WithInProcess) or as a gRPC server (services/sandbox).
//
// Customers are chosen by the login hint of StartSca; the one-time code is
// [Code] for all of them:
//
//   - alice: an everyday account and a credit card, balances of several
//     ISO 20022 types (credit limit included), booked and pending
//     transactions; her pending coffee posts on the first SyncTransactions
//     after the initial one. Her card payments have purchase details
//     (GetPurchaseDetails): the line items behind each.
//   - bob: one savings account; his bank extends a consent only after a
//     new SCA (ExtendConsent answers sca_required), where every other
//     customer's extends without one.
//   - carol: linking works; every data call fails with FAILED_PRECONDITION
//     (BANK_LOGIN_REQUIRED).
//   - dave: linking works; every data call fails with UNAVAILABLE
//     (BANK_UNAVAILABLE).
//   - erin: one account; every data call takes [SlowCustomerDelay].
//
// A consent lasts at most 90 days from its last grant and, however often it
// is extended without SCA, 180 days from its last SCA (Berlin Group's cap).
//
// Any other login is NOT_FOUND. Account and card numbers exist only masked.
//
// Support: the agent, [AgentName], joins every handoff, greets, and answers
// each message while she holds thread control; [PassBackCue] makes her pass
// control back to bankbridge's assistant and [CloseCaseText] makes her close
// the case (see [Bank.NotifyThreadControl] for what the assistant's actions
// do, and [Bank.RequestControl] to make her ask for control). Cards: alice's
// can be listed, blocked, and unblocked with an OTP challenge ([Code]).
// Fraud: a report's case moves RECEIVED, IN_REVIEW, RESOLVED on the event
// stream ([Options.FraudCaseStep]); [Bank.TriggerFraudAlert] raises alerts
// and [Bank.AlertAnswer] tells how the customer answered one.
//
// State (consents, cases, card blocks, alerts, events) lives in memory, so a
// restarted sandbox knows none of the consents it granted before: like a
// bank that lost or dropped a consent, it answers every call on one with
// PERMISSION_DENIED (CONSENT_REVOKED_BY_BANK), and bankbridge asks the user
// to link again.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"regexp"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Code is the one-time code the sandbox accepts for every customer, for
// linking (VerifySca) and for lifting a card block (VerifyCardUnblock);
// any other code fails the challenge.
const Code = "123456"

// Version is the sandbox adapter's version, as GetAdapterInfo reports it.
const Version = "1.0.0"

// Options tune the sandbox. The zero value is a well-behaved bank.
type Options struct {
	// BankID is the id the sandbox reports; default "sandbox". It must
	// match the bank's id in banks.yaml.
	BankID string
	// DisplayName is the bank's name; default "Sandbox Bank".
	DisplayName string
	// Latency is added to every call that would reach the bank (all but
	// GetAdapterInfo, CheckHealth and StreamEvents).
	Latency time.Duration
	// ErrorRate is the share of those calls, 0 to 1, that fail with
	// UNAVAILABLE (BANK_UNAVAILABLE) before doing anything.
	ErrorRate float64
	// Seed makes ErrorRate's draws repeatable: the same seed and the same
	// sequence of calls fail the same calls.
	Seed uint64
	// Now is the sandbox's clock; default time.Now.
	Now func() time.Time
	// FraudCaseStep paces the fraud cases ReportFraud opens, on the event
	// stream: FraudCaseUpdated RECEIVED at once, IN_REVIEW one step later,
	// RESOLVED one step after that (on the wall clock, not Now). 0 leaves
	// every case RECEIVED; services/sandbox defaults it to
	// [DefaultFraudCaseStep].
	FraudCaseStep time.Duration
	// SyntheticCustomers adds that many generated customers beside the
	// fixtures, for load tests that spread calls over many users:
	// SyntheticLogin(0) to SyntheticLogin(n-1), each with one account
	// (SyntheticAccountID) and deterministic balances (synthetic.go). At
	// most MaxSyntheticCustomers.
	SyntheticCustomers int
}

// DefaultFraudCaseStep is the sandbox server's FraudCaseStep: quick enough
// for a demo to watch a case go from RECEIVED to RESOLVED.
const DefaultFraudCaseStep = 5 * time.Second

var bankIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,62}$`)

// Bank is a running Sandbox Bank. It implements adapters.Adapter and every
// capability interface, and is safe for concurrent use.
type Bank struct {
	opts      Options
	customers map[string]*customer
	purchases map[string]purchase // by transaction id
	events    *eventLog
	closed    chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	rng        *mathrand.Rand
	consents   map[string]*consent
	idem       *adapters.Idempotency
	posted     map[syncKey]bool
	cardBlocks map[string]*cardBlock        // by card id; absent: ACTIVE
	unblocks   map[string]*unblockChallenge // by challenge id
	alerts     map[string]*fraudAlert       // by alert id
	cases      map[string]*supportCase
	agentMsgID int

	leaks leakSwitch // off until a test turns it on (leaks.go)
}

// Compile-time proof that Bank implements every capability.
var (
	_ adapters.Adapter             = (*Bank)(nil)
	_ adapters.AccountsAdapter     = (*Bank)(nil)
	_ adapters.TransactionsAdapter = (*Bank)(nil)
	_ adapters.SCAAdapter          = (*Bank)(nil)
	_ adapters.SupportAdapter      = (*Bank)(nil)
	_ adapters.FraudAdapter        = (*Bank)(nil)
	_ adapters.CardsAdapter        = (*Bank)(nil)
	_ adapters.EventsAdapter       = (*Bank)(nil)

	_ adapters.ConsentExtensionAdapter = (*Bank)(nil)
	_ adapters.PurchaseDetailsAdapter  = (*Bank)(nil)
)

// New returns a Sandbox Bank. Its fixtures' dates count back from the day
// it is created.
func New(o Options) (*Bank, error) {
	if o.BankID == "" {
		o.BankID = "sandbox"
	}
	if o.DisplayName == "" {
		o.DisplayName = "Sandbox Bank"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case !bankIDPattern.MatchString(o.BankID):
		return nil, fmt.Errorf("sandbox: bank id must match %s", bankIDPattern)
	case len([]rune(o.DisplayName)) > 64:
		return nil, errors.New("sandbox: display name is longer than 64 characters")
	case o.Latency < 0:
		return nil, errors.New("sandbox: latency must not be negative")
	case o.FraudCaseStep < 0:
		return nil, errors.New("sandbox: fraud case step must not be negative")
	case !(o.ErrorRate >= 0 && o.ErrorRate <= 1):
		return nil, errors.New("sandbox: error rate must be between 0 and 1")
	case o.SyntheticCustomers < 0 || o.SyntheticCustomers > MaxSyntheticCustomers:
		return nil, fmt.Errorf("sandbox: synthetic customers must be between 0 and %d", MaxSyntheticCustomers)
	}
	now := o.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	customers := fixtures(today)
	addSynthetic(customers, o.SyntheticCustomers, today)
	return &Bank{
		opts:       o,
		customers:  customers,
		purchases:  purchaseFixtures(),
		events:     newEventLog(randomID(""), o.Now),
		closed:     make(chan struct{}),
		rng:        mathrand.New(mathrand.NewPCG(o.Seed, 0x5a4db0c5)),
		consents:   map[string]*consent{},
		idem:       adapters.NewIdempotency(adapters.NewMemoryIdempotencyStore(), adapters.WithIdempotencyClock(o.Now)),
		posted:     map[syncKey]bool{},
		cardBlocks: map[string]*cardBlock{},
		unblocks:   map[string]*unblockChallenge{},
		alerts:     map[string]*fraudAlert{},
		cases:      map[string]*supportCase{},
	}, nil
}

// Close ends every open event stream (cleanly: bankbridge resumes with its
// cursor) so that a server can stop gracefully.
func (b *Bank) Close() {
	b.closeOnce.Do(func() { close(b.closed) })
}

// Info implements adapters.Adapter.
func (b *Bank) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	return &adapterv1.GetAdapterInfoResponse{
		BankId:          b.opts.BankID,
		DisplayName:     b.opts.DisplayName,
		ProtocolVersion: adapters.ProtocolVersion,
		AdapterVersion:  Version,
		Capabilities:    adapters.Capabilities(b),
		ScaMethods:      []adapterv1.ScaMethod{adapterv1.ScaMethod_SCA_METHOD_OTP},
	}, nil
}

// CheckHealth implements adapters.Adapter: DEGRADED while a knob makes the
// bank slow or failing.
func (b *Bank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	switch {
	case b.opts.ErrorRate > 0:
		return &adapterv1.CheckHealthResponse{
			Status: adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED,
			Detail: fmt.Sprintf("error rate knob: %.0f%% of calls fail", b.opts.ErrorRate*100),
		}, nil
	case b.opts.Latency >= time.Second:
		return &adapterv1.CheckHealthResponse{
			Status: adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED,
			Detail: fmt.Sprintf("latency knob: calls take %s more", b.opts.Latency),
		}, nil
	}
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

// bankCall is what every call that reaches the bank goes through first: the
// latency and error rate knobs.
func (b *Bank) bankCall(ctx context.Context) error {
	if err := sleep(ctx, b.opts.Latency); err != nil {
		return err
	}
	if b.opts.ErrorRate > 0 {
		b.mu.Lock()
		fail := b.rng.Float64() < b.opts.ErrorRate
		b.mu.Unlock()
		if fail {
			return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
				"the sandbox failed this call on purpose (error rate knob)", apierr.WithRetryAfter(time.Second))
		}
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dataCall runs what every call on a consent's data goes through: the
// knobs, the consent lookup, the customer's behaviour and the consent's
// checks; fn then runs under the lock.
func (b *Bank) dataCall(ctx context.Context, consentID string, scope commonv1.Scope, fn func(*consent, *customer) error) error {
	if err := b.bankCall(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	c := b.consents[consentID]
	b.mu.Unlock()
	if c == nil {
		return errUnknownConsent()
	}
	cust := b.customers[c.login]
	switch cust.behaviour {
	case behaveLoginRequired:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED,
			"the customer must log in to online banking before the bank serves data")
	case behaveUnavailable:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			"the bank's core system is down", apierr.WithRetryAfter(30*time.Second))
	case behaveSlowly:
		if err := sleep(ctx, SlowCustomerDelay); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := c.usable(b.opts.Now(), scope); err != nil {
		return err
	}
	return fn(c, cust)
}

// randomID is prefix followed by 16 random hex digits: opaque, unguessable.
func randomID(prefix string) string {
	var buf [10]byte
	_, _ = rand.Read(buf[:])
	// Base32, not hex: 16 hex characters now and then held 13 digits
	// in a row that passed Luhn, which bankbridge's leak check rightly
	// took for a card number in the sandbox's own consent ids.
	return prefix + idEncoding.EncodeToString(buf[:])
}

// idEncoding is lower-case base32 without padding: six of its 32
// characters are digits, so an id never holds a card number's run of them.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// clone returns a deep copy of m, so that callers never share the sandbox's
// fixtures or stored answers.
func clone[M proto.Message](m M) M {
	return proto.Clone(m).(M)
}

// errUnknownConsent answers a call on a consent the bank does not know:
// never granted, or granted before a restart.
func errUnknownConsent() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
}

func notFound(what string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank knows no such "+what)
}
