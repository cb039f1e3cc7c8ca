package transport_test

// The fraud, cards and alerts tests call the support service the way a
// product does: over gRPC, with a user's bearer token and a declared
// purpose, through the real server kit on 127.0.0.1:0, on a real store
// (SQLite) whose outbox a real relay publishes to a NATS server, with the
// fraud workers and the bank event consumer running. The banks are
// sandbox banks, in process behind the adapter SDK's registry: "sandbox"
// (every capability; its calls can be made to fail), and "nocards" (an
// adapter that links and lists accounts, nothing more). Consent is the
// fake consent service, whose links carry the sandboxes' real consent
// ids.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/eventstest"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/balance"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
	"github.com/bankbridge/bankbridge/services/support/internal/transport"
)

// fraudHolder names the test's replica in the bank event lease.
const fraudHolder = "fraud-test"

type fraudEnv struct {
	svc *app.Service
	db  *storage.DB
	bus *events.Bus
	// stream is the name of the bus's stream.
	stream  string
	consent *consenttest.Consent
	bank    *switchableBank
	// clock is the sandbox's clock (its challenges' and consents' expiry).
	clock   *testkit.Clock
	issuer  *auth.DevIssuer
	srv     *servertest.Server
	support supportv1.SupportServiceClient
	reg     *runtime.Registry
	// link is alice's sandbox link, covering support and fraud alerts;
	// bankConsent its consent at the sandbox.
	link        string
	bankConsent string
	// nocardsLink is alice's link to the nocards bank.
	nocardsLink string
	// logs are the service's and the server kit's log lines.
	logs *testkit.SyncBuffer
}

// switchableBank is the sandbox whose card, fraud and alert calls fail
// with BANK_UNAVAILABLE while down is set, and whose ReportFraud calls
// reported with each case it opened.
type switchableBank struct {
	*sandbox.Bank
	down     atomic.Bool
	mu       sync.Mutex
	reported func(caseID string)
}

func (b *switchableBank) fail() error {
	if b.down.Load() {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank is down")
	}
	return nil
}

func (b *switchableBank) ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Bank.ListCards(ctx, req)
}

func (b *switchableBank) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Bank.BlockCard(ctx, req)
}

func (b *switchableBank) StartCardUnblock(ctx context.Context, req *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Bank.StartCardUnblock(ctx, req)
}

func (b *switchableBank) VerifyCardUnblock(ctx context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Bank.VerifyCardUnblock(ctx, req)
}

func (b *switchableBank) ReportFraud(ctx context.Context, req *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	resp, err := b.Bank.ReportFraud(ctx, req)
	b.mu.Lock()
	hook := b.reported
	b.mu.Unlock()
	if err == nil && hook != nil {
		hook(resp.GetCaseId())
	}
	return resp, err
}

func (b *switchableBank) AnswerFraudAlert(ctx context.Context, req *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Bank.AnswerFraudAlert(ctx, req)
}

// onReport sets what runs after each ReportFraud the bank answered.
func (b *switchableBank) onReport(f func(caseID string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reported = f
}

// withoutCards is a bank whose adapter links and lists accounts only: no
// cards, no fraud, no events.
type withoutCards struct {
	adapters.Adapter
	adapters.SCAAdapter
	adapters.AccountsAdapter
}

func (w withoutCards) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := w.Adapter.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(w)
	return info, nil
}

// fraudBanks is the registry as the server kit's configured banks.
type fraudBanks struct{ reg *runtime.Registry }

func (b fraudBanks) HasBank(id string) bool { _, ok := b.reg.Bank(id); return ok }

// bankConsentAt links login at bank for support and fraud alerts, as the
// consent service would, and returns the bank's consent id.
func bankConsentAt(t *testing.T, reg *runtime.Registry, bank, login string) string {
	t.Helper()
	c, err := reg.Client(bank)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference: "u-" + login, LoginHint: login, IdempotencyKey: "key-sca-" + bank + "-" + login + "-" + fraudRand(),
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_SUPPORT, commonv1.Scope_SCOPE_FRAUD_ALERTS},
		ValidUntil: timestamppb.New(time.Now().Add(24 * time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: ch.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "key-sca-" + fraudRand()})
	if err != nil {
		t.Fatal(err)
	}
	return v.GetBankConsentId()
}

// startFraud serves the support service for alice, who linked the
// sandbox, and the nocards bank, for support and fraud alerts; bob linked
// the sandbox for support only. The sandbox moves each fraud case on, a
// caseStep apart, to IN_REVIEW and RESOLVED; 0 leaves cases RECEIVED.
func startFraud(t *testing.T, caseStep time.Duration) *fraudEnv {
	t.Helper()
	return startFraudOn(t, storagetest.OpenSQLite(t), caseStep)
}

// startFraudOn is startFraud with the service's store on db.
func startFraudOn(t *testing.T, db *storage.DB, caseStep time.Duration) *fraudEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &fraudEnv{
		db: db, consent: consenttest.New(commonv1.Scope_SCOPE_SUPPORT, commonv1.Scope_SCOPE_FRAUD_ALERTS),
		clock: testkit.NewClock(time.Now()), logs: &testkit.SyncBuffer{},
	}
	relayed := eventstest.Relay(t, eventstest.EmbeddedNATS(t), e.db, "support")
	e.bus, e.stream = relayed.Bus, relayed.Stream
	st, err := store.New(ctx, e.db, relayed.Outbox)
	if err != nil {
		t.Fatal(err)
	}

	sb, err := sandbox.New(sandbox.Options{Now: e.clock.Now, FraudCaseStep: caseStep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	e.bank = &switchableBank{Bank: sb}
	nc, err := sandbox.New(sandbox.Options{BankID: "nocards", DisplayName: "No Cards Bank"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// Calls fail on purpose here: neither breaker nor rate limit may
	// stand in for the bank's own answers.
	lenient := func(id, name string) runtime.Bank {
		return runtime.Bank{ID: id, DisplayName: name, Kind: runtime.KindInProcess, InProcess: id,
			Breaker: runtime.Breaker{MinRequests: 1 << 20, OpenFor: time.Millisecond}, RateLimit: runtime.RateLimit{PerSecond: 10_000, Burst: 10_000}}
	}
	e.reg, err = runtime.NewRegistry([]runtime.Bank{lenient("sandbox", "Sandbox Bank"), lenient("nocards", "No Cards Bank")},
		runtime.WithInProcess("sandbox", e.bank), runtime.WithInProcess("nocards", withoutCards{Adapter: nc, SCAAdapter: nc, AccountsAdapter: nc}),
		runtime.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.reg.Close() })
	e.bankConsent = bankConsentAt(t, e.reg, "sandbox", "alice")
	e.link = e.consent.AddBankLink("alice", "sandbox", e.bankConsent)
	e.nocardsLink = e.consent.AddBankLink("alice", "nocards", bankConsentAt(t, e.reg, "nocards", "alice"))
	e.consent.AddBankLink("bob", "sandbox", bankConsentAt(t, e.reg, "sandbox", "bob"), commonv1.Scope_SCOPE_SUPPORT)

	// The assistant's balance reads are not the fraud files': a client of
	// nothing, never dialled.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.svc, err = app.New(app.Config{
		Store: st, Consent: e.consent, Banks: e.reg, Balances: balance.New(balancev1.NewBalanceServiceClient(conn)), Pages: pagetoken.Random(),
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LeaseTTL: 3 * time.Second, ReconnectBackoff: 20 * time.Millisecond, Holder: fraudHolder,
		Fraud: app.FraudConfig{DeliveryBackoff: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := stream.NewHub(e.bus, stream.HubOptions{Types: transport.HubTypes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	feed := stream.Feed{Bus: e.bus, Hub: hub, Consent: e.consent, Logger: slog.New(slog.DiscardHandler)}
	e.srv = servertest.Start(t, server.Deps{Consent: e.consent, Recorder: e.consent, Banks: fraudBanks{e.reg}},
		func(r grpc.ServiceRegistrar) {
			supportv1.RegisterSupportServiceServer(r, transport.New(e.svc, feed))
		}, servertest.Options{Name: "support", Telemetry: telemetry.Config{LogOutput: e.logs}, Config: func(c *server.Config) {
			c.ClientPurposes = servertest.Client + "=CUSTOMER_SUPPORT,FRAUD_PREVENTION"
		}})
	e.issuer = e.srv.Issuer
	e.support = supportv1.NewSupportServiceClient(e.srv.Conn)

	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after cancel, which runs first (cleanups run last-in first-out)
	t.Cleanup(cancel)
	wg.Go(func() { e.svc.RunBank(ctx, "sandbox") })
	wg.Go(func() { _ = e.svc.RunFraudWorkers(ctx, e.bus) })
	e.waitForBank(t)
	return e
}

// waitForBank returns once the consumer reads the sandbox's event stream
// and has stored a cursor, which the tests' bank events (applyBankEvent)
// carry. The probe is a case the bank opens outside the service, whose
// news the service keeps for a report it never sees.
func (e *fraudEnv) waitForBank(t *testing.T) {
	t.Helper()
	c, err := e.reg.Client("sandbox")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool {
		_, err := c.ReportFraud(t.Context(), &adapterv1.ReportFraudRequest{
			BankConsentId: e.bankConsent, BankAccountId: "acc-alice-checking", Category: adapterv1.FraudCategory_FRAUD_CATEGORY_OTHER,
			Description: "probe", IdempotencyKey: "key-probe-" + fraudRand(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return e.bankCursor(t) != ""
	}, 10*time.Second)
}

// bankCursor is the stored cursor of the sandbox's event stream.
func (e *fraudEnv) bankCursor(t *testing.T) string {
	t.Helper()
	var c string
	if err := e.db.QueryRowContext(t.Context(), `SELECT event_cursor FROM bank_event_leases WHERE bank_id = 'sandbox'`).Scan(&c); err != nil {
		return ""
	}
	return c
}

// applyBankEvent applies an event as if the sandbox had streamed it, at
// the stored cursor (so a reconnect resumes where the stream was).
func (e *fraudEnv) applyBankEvent(t *testing.T, ev *adapterv1.StreamEventsResponse) {
	t.Helper()
	ev.Cursor = e.bankCursor(t)
	if err := e.svc.ApplyBankEvent(t.Context(), "sandbox", ev); err != nil {
		t.Fatalf("ApplyBankEvent: %v", err)
	}
}

// asFor is a call by user through the chat app, declaring purpose.
func (e *fraudEnv) asFor(t *testing.T, user, purpose string) context.Context {
	t.Helper()
	tok, err := e.issuer.Mint(user, servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", purpose)
}

// as is a call by user through the chat app, for FRAUD_PREVENTION.
func (e *fraudEnv) as(t *testing.T, user string) context.Context {
	t.Helper()
	return e.asFor(t, user, "FRAUD_PREVENTION")
}

// fraudRand is a fresh random id part, for keys.
func fraudRand() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newKey is a fresh idempotency key.
func newKey() string { return "key-" + fraudRand() }

// outboxCount counts the events of type written for resource.
func (e *fraudEnv) outboxCount(t *testing.T, typ, resource string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM events_outbox WHERE event_type = $1 AND resource = $2`, typ, resource).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// requireCleanLogs fails the test when the logs hold any of secrets.
func (e *fraudEnv) requireCleanLogs(t *testing.T, secrets ...string) {
	t.Helper()
	logs := testkit.WithoutRandomFields(e.logs.String())
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold %q:\n%s", s, logs)
		}
	}
}
