package transport_test

// These tests call the support service the way a product does: over gRPC,
// with a user's bearer token and a declared purpose, through the real
// server kit (token check, user binding, validation, access rules,
// consent check, access log) on 127.0.0.1:0, on a real store (SQLite, or
// the database a test gives: storagetest.Each runs it on PostgreSQL too)
// whose outbox a real relay publishes to a NATS server. The bank is the
// sandbox bank, in process behind the adapter SDK's registry, its event
// stream read by the service's own consumer; the balance service is a
// fake BalanceService served over gRPC; consent is the fake consent
// service.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
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

type env struct {
	svc     *app.Service
	db      *storage.DB
	bus     *events.Bus
	consent *consenttest.Consent
	sandbox *sandbox.Bank
	// sandboxTwo is the second bank, "sandbox-two", with options.secondBank.
	sandboxTwo *sandbox.Bank
	balances   *fakeBalance
	issuer     *auth.DevIssuer
	support    supportv1.SupportServiceClient
	// bankConsent is alice's consent at the sandbox, the one her link's
	// bank consent id (consenttest.BankConsentID) stands for.
	bankConsent string
	link        string
	// logs are the service's and the server kit's log lines.
	logs *testkit.SyncBuffer
}

// options tune one env.
type options struct {
	idle time.Duration
	// now is the service's clock; default time.Now.
	now func() time.Time
	// noBankEvents leaves the bank event consumer off.
	noBankEvents bool
	// sandboxDown makes every sandbox call fail with BANK_UNAVAILABLE.
	sandboxDown bool
	// secondBank configures a second bank, "sandbox-two", another sandbox
	// bank, where alice is linked for support too.
	secondBank bool
	// nats gives the NATS server; default one embedded in the test.
	nats func(t *testing.T) string
	// db is the service's database; default a fresh SQLite file.
	db *storage.DB
	// consent wraps the consent service as the support logic reaches it
	// (not the server kit's consent check); default as it is.
	consent func(app.Consent) app.Consent
	// store wraps the service's store; default as it is.
	store func(app.Store) app.Store
}

// start serves the support service for alice, who linked the sandbox for
// support: her link's bank consent stands for a real sandbox consent.
// With o.secondBank she linked "sandbox-two" the same way.
func start(t *testing.T, o options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{db: o.db, consent: consenttest.New(commonv1.Scope_SCOPE_SUPPORT), balances: newFakeBalance(),
		logs: &testkit.SyncBuffer{}}
	if e.db == nil {
		e.db = storagetest.OpenSQLite(t)
	}
	if o.nats == nil {
		o.nats = func(t *testing.T) string { return eventstest.EmbeddedNATS(t) }
	}
	relayed := eventstest.Relay(t, o.nats(t), e.db, "support")
	e.bus = relayed.Bus
	st, err := store.New(ctx, e.db, relayed.Outbox)
	if err != nil {
		t.Fatal(err)
	}

	sbOpts := sandbox.Options{}
	if o.sandboxDown {
		sbOpts.ErrorRate = 1
	}
	e.sandbox, err = sandbox.New(sbOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sandbox.Close)
	banks := []*sandbox.Bank{e.sandbox}
	if o.secondBank {
		e.sandboxTwo, err = sandbox.New(sandbox.Options{BankID: "sandbox-two", DisplayName: "Sandbox Bank Two"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.sandboxTwo.Close)
		banks = append(banks, e.sandboxTwo)
	}
	reg, consents := sandboxRegistry(t, banks...)
	if !o.sandboxDown {
		e.bankConsent = sandboxConsent(t, reg, "sandbox", "alice")
		consents.set(consenttest.BankConsentID("alice", "sandbox"), e.bankConsent)
	}
	e.link = e.consent.AddLink("alice", "sandbox")
	if o.secondBank {
		consents.set(consenttest.BankConsentID("alice", "sandbox-two"), sandboxConsent(t, reg, "sandbox-two", "alice"))
		e.consent.AddLink("alice", "sandbox-two")
	}

	var consent app.Consent = e.consent
	if o.consent != nil {
		consent = o.consent(consent)
	}
	var appStore app.Store = st
	if o.store != nil {
		appStore = o.store(st)
	}
	e.svc, err = app.New(app.Config{
		Store: appStore, Consent: consent, Banks: reg, Balances: balance.New(e.balances.client(t)), Pages: pagetoken.Random(),
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), AgentIdleTimeout: o.idle, LeaseTTL: 3 * time.Second, ReconnectBackoff: 20 * time.Millisecond,
		Now: o.now,
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
	srv := servertest.Start(t, server.Deps{Consent: e.consent, Recorder: e.consent, Banks: hasBank{reg}},
		func(r grpc.ServiceRegistrar) {
			supportv1.RegisterSupportServiceServer(r, transport.New(e.svc, feed))
		}, servertest.Options{Name: "support", Telemetry: telemetry.Config{LogOutput: e.logs}, Config: func(c *server.Config) {
			c.ClientPurposes = servertest.Client + "=CUSTOMER_SUPPORT,FRAUD_PREVENTION,ACCOUNT_INFORMATION"
		}})
	e.issuer = srv.Issuer
	e.support = supportv1.NewSupportServiceClient(srv.Conn)

	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after cancel, which runs first (cleanups run last-in first-out)
	t.Cleanup(cancel)
	wg.Go(func() { _ = e.svc.RunOutbound(ctx, e.bus) })
	wg.Go(func() { _ = e.svc.FollowRevocations(ctx, e.bus) })
	if !o.noBankEvents && !o.sandboxDown {
		wg.Go(func() { e.svc.RunBank(ctx, "sandbox") })
		e.waitForBankStream(t)
	}
	return e
}

// waitForBankStream returns once the consumer reads the sandbox's event
// stream, so the test's events are applied as they come. A fraud alert is
// the probe: its cursor is stored once the consumer applied it.
func (e *env) waitForBankStream(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, func() bool {
		if _, err := e.sandbox.TriggerFraudAlert("alice"); err != nil {
			t.Fatal(err)
		}
		return e.cursor(t) != ""
	}, 10*time.Second)
}

// cursor is the stored cursor of the sandbox's event stream.
func (e *env) cursor(t *testing.T) string {
	t.Helper()
	var c string
	err := e.db.QueryRowContext(t.Context(), `SELECT event_cursor FROM bank_event_leases WHERE bank_id = 'sandbox'`).Scan(&c)
	if err != nil {
		return ""
	}
	return c
}

// hasBank is the registry as the server kit's configured banks.
type hasBank struct{ reg *runtime.Registry }

func (h hasBank) HasBank(id string) bool { _, ok := h.reg.Bank(id); return ok }

// consentMap rewrites the bank consent ids of requests to the sandbox:
// the fake consent service's links carry made-up ids, the sandbox knows
// only the consents it granted.
type consentMap struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *consentMap) set(from, to string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[from] = to
}

func (c *consentMap) rewrite(req any) {
	msg, ok := req.(proto.Message)
	if !ok {
		return
	}
	r := msg.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("bank_consent_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if to, ok := c.m[r.Get(fd).String()]; ok {
		r.Set(fd, protoreflect.ValueOfString(to))
	}
}

// sandboxRegistry is the registry with the sandbox banks sbs, each
// configured under the bank id and name it reports and served in process,
// whose requests' bank consent ids the map rewrites.
func sandboxRegistry(t *testing.T, sbs ...*sandbox.Bank) (*runtime.Registry, *consentMap) {
	t.Helper()
	cm := &consentMap{m: map[string]string{}}
	rewrite := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		cm.rewrite(req)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var banks []runtime.Bank
	opts := []runtime.Option{runtime.WithDialOptions(grpc.WithChainUnaryInterceptor(rewrite)),
		runtime.WithRegistryLogger(slog.New(slog.DiscardHandler))}
	for _, sb := range sbs {
		info, err := sb.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		banks = append(banks, runtime.Bank{
			ID: info.GetBankId(), DisplayName: info.GetDisplayName(), Kind: runtime.KindInProcess, InProcess: info.GetBankId(),
		})
		opts = append(opts, runtime.WithInProcess(info.GetBankId(), sb))
	}
	reg, err := runtime.NewRegistry(banks, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg, cm
}

// sandboxConsent links login at the sandbox bank for support, as the
// consent service would, and returns the bank's consent id.
func sandboxConsent(t *testing.T, reg *runtime.Registry, bank, login string) string {
	t.Helper()
	c, err := reg.Client(bank)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
		UserReference: "u-" + login, LoginHint: login, IdempotencyKey: "key-sca-" + login + "-1",
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_SUPPORT, commonv1.Scope_SCOPE_FRAUD_ALERTS},
		ValidUntil: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: ch.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "key-sca-" + login + "-2"})
	if err != nil {
		t.Fatal(err)
	}
	return v.GetBankConsentId()
}

// as is a call by user through the chat app, for CUSTOMER_SUPPORT.
func (e *env) as(t *testing.T, user string) context.Context {
	t.Helper()
	tok, err := e.issuer.Mint(user, servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "CUSTOMER_SUPPORT")
}

// create opens a conversation of alice's with the sandbox.
func (e *env) create(t *testing.T) *supportv1.Conversation {
	t.Helper()
	resp, err := e.support.CreateConversation(e.as(t, "alice"), &supportv1.CreateConversationRequest{
		Parent: "users/alice", Conversation: &supportv1.Conversation{BankId: "sandbox"}, IdempotencyKey: "key-" + randomSuffix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConversation()
}

// send sends alice's text (or postback, when it starts with "postback:").
func (e *env) send(t *testing.T, conv, text string) (*supportv1.Message, error) {
	t.Helper()
	m := &supportv1.Message{ClientMessageId: "cm-" + randomSuffix()}
	if payload, ok := strings.CutPrefix(text, "postback:"); ok {
		m.Postback = &supportv1.Postback{Payload: payload}
	} else {
		m.Text = text
	}
	resp, err := e.support.SendMessage(e.as(t, "alice"), &supportv1.SendMessageRequest{Parent: conv, Message: m})
	return resp.GetMessage(), err
}

// mustSend is send that fails the test on an error.
func (e *env) mustSend(t *testing.T, conv, text string) *supportv1.Message {
	t.Helper()
	m, err := e.send(t, conv, text)
	if err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	return m
}

// messages are the conversation's messages, oldest first.
func (e *env) messages(t *testing.T, conv string) []*supportv1.Message {
	t.Helper()
	var out []*supportv1.Message
	req := &supportv1.ListMessagesRequest{Parent: conv, PageSize: 100}
	for {
		resp, err := e.support.ListMessages(e.as(t, "alice"), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetMessages()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.Reverse(out)
	return out
}

// last is the conversation's newest message.
func (e *env) last(t *testing.T, conv string) *supportv1.Message {
	t.Helper()
	ms := e.messages(t, conv)
	if len(ms) == 0 {
		t.Fatal("no messages")
	}
	return ms[len(ms)-1]
}

// get reads the conversation.
func (e *env) get(t *testing.T, conv string) *supportv1.Conversation {
	t.Helper()
	resp, err := e.support.GetConversation(e.as(t, "alice"), &supportv1.GetConversationRequest{Name: conv})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConversation()
}

// payloads are a message's quick reply payloads.
func payloads(m *supportv1.Message) []string {
	var out []string
	for _, q := range m.GetQuickReplies() {
		out = append(out, q.GetPayload())
	}
	return out
}

// fakeBalance is the balance service, as alice's bank data at the sandbox
// looks through it, recording the metadata of each call.
type fakeBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	mu    sync.Mutex
	calls []metadata.MD
	// fail, when set, fails every call.
	fail error
}

func newFakeBalance() *fakeBalance { return &fakeBalance{} }

// client serves the fake over gRPC on 127.0.0.1:0 and returns a client of
// it, dialled as the service dials the balance service.
func (f *fakeBalance) client(t *testing.T) balancev1.BalanceServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	balancev1.RegisterBalanceServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return balancev1.NewBalanceServiceClient(conn)
}

func (f *fakeBalance) record(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, md)
	return f.fail
}

func (f *fakeBalance) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// metadataOf returns the metadata of every call so far.
func (f *fakeBalance) metadataOf() []metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func eur(units int64, nanos int32) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func (f *fakeBalance) ListAccounts(ctx context.Context, req *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &balancev1.ListAccountsResponse{Accounts: []*balancev1.Account{
		{Name: req.GetParent() + "/accounts/sandbox~acc-alice-checking", BankId: "sandbox", DisplayName: "Everyday",
			MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "4321", Display: "•••• 4321"}},
		{Name: req.GetParent() + "/accounts/sandbox~acc-alice-savings", BankId: "sandbox", DisplayName: "Savings",
			MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "8765", Display: "•••• 8765"}},
	}}, nil
}

func (f *fakeBalance) GetBalance(ctx context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	amount := eur(1234, 560000000)
	if req.GetName() == "users/alice/accounts/sandbox~acc-alice-savings/balance" {
		amount = eur(-7, -50000000)
	}
	return &balancev1.GetBalanceResponse{Balance: &balancev1.AccountBalance{Name: req.GetName(), Balances: []*balancev1.Balance{
		{Type: balancev1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED, Amount: eur(1, 0)},
		{Type: balancev1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE, Amount: amount},
	}}}, nil
}

func (f *fakeBalance) ListTransactions(ctx context.Context, req *balancev1.ListTransactionsRequest) (*balancev1.ListTransactionsResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	day := time.Date(2031, 3, 4, 0, 0, 0, 0, time.UTC)
	if req.GetParent() == "users/alice/accounts/sandbox~acc-alice-savings" {
		return &balancev1.ListTransactionsResponse{Transactions: []*balancev1.Transaction{
			{Name: req.GetParent() + "/transactions/tx-s1", Amount: eur(100, 0), Status: balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
				BookingTime: timestamppb.New(day.Add(-48 * time.Hour)), Description: "Transfer in"},
		}}, nil
	}
	return &balancev1.ListTransactionsResponse{Transactions: []*balancev1.Transaction{
		{Name: req.GetParent() + "/transactions/tx-c1", Amount: eur(-4, -500000000), Status: balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
			BookingTime: timestamppb.New(day), MerchantName: "Blue Door Coffee"},
		{Name: req.GetParent() + "/transactions/tx-c2", Amount: eur(-86, -400000000), Status: balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED,
			BookingTime: timestamppb.New(day.Add(-24 * time.Hour)), MerchantName: "Corner Grocery"},
	}}, nil
}

// randomSuffix is a fresh id part, for client message ids and keys.
func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
