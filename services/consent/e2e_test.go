package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/signer"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

const (
	testIssuer   = "https://issuer.test"
	chatApp      = "chat-app"
	balanceSvc   = "balance"
	demoPartner  = "demo-partner"
	otherPartner = "other-partner"
	keyGrace     = 300 * time.Millisecond
	vaultRefrsh  = 100 * time.Millisecond
)

// env is one consent service on 127.0.0.1 with everything it talks to:
// a real Vault holding the banks' API keys, two banks served over gRPC
// through the adapter SDK (Sandbox Bank), and a
// dev token issuer whose JWKS is served over HTTP.
type env struct {
	issuer     *auth.DevIssuer
	vault      *vaulttest.Server
	dataDir    string
	keyFile    string
	sandbox    string // the sandbox's address
	bank       *switchableBank
	addr       string // the consent service's address
	consent    consentv1.ConsentServiceClient
	check      consentv1.ConsentCheckServiceClient
	sandboxKey string
	args       []string // the consent service's
	stop       func()   // stops the consent service
}

// startEnv starts the env, the consent service with args after its own.
func startEnv(t testing.TB, args ...string) *env {
	t.Helper()
	e := &env{dataDir: t.TempDir()}
	var err error
	if e.issuer, err = auth.NewDevIssuer(true, testIssuer, "bankbridge"); err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(e.issuer.JWKSHandler())
	t.Cleanup(jwks.Close)

	// Vault holds each bank's API key, as in production.
	e.vault = vaulttest.Start(t)
	// and the Transit key that signs access log heads.
	e.vault.CreateTransitKey(t, signer.DefaultKey, "ed25519")
	// and the consent service's own keys.
	e.putKeys(t, map[string]any{codeKeyField: randomKey(t) + randomKey(t) + randomKey(t), loginKeyField: randomKey(t) + randomKey(t) + randomKey(t)})
	// and the key of the pseudonymous refs in log lines, which the
	// operator's look-up by trace answers too.
	e.vault.Write(t, "bankbridge/data/"+pseudonym.Path, map[string]any{"data": map[string]any{pseudonym.KeyField: pseudonymKey}})
	e.sandboxKey = randomKey(t)
	e.vault.PutBankSecret(t, "sandbox", map[string]any{"api_key": e.sandboxKey})

	// The sandbox takes its key from a file it polls, as its command does.
	e.keyFile = filepath.Join(t.TempDir(), "sandbox-api-key")
	writeFile(t, e.keyFile, e.sandboxKey)
	keys, err := adapters.NewKeyFile(e.keyFile, keyGrace)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go keys.Watch(ctx, 20*time.Millisecond, nil, nil)
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.bank = &switchableBank{Bank: sb}
	e.sandbox = serveBank(t, e.bank, keys.Keys)
	// Old Bank: a sandbox whose adapter predates consent extension, and
	// whose rate limit bankbridge reaches after four calls.
	old, err := sandbox.New(sandbox.Options{BankID: "oldbank", DisplayName: "Old Bank"})
	if err != nil {
		t.Fatal(err)
	}
	oldKey := randomKey(t)
	e.vault.PutBankSecret(t, "oldbank", map[string]any{"api_key": oldKey})
	oldAddr := serveBank(t, withoutExtension{Adapter: old, SCAAdapter: old, AccountsAdapter: old}, func() []string { return []string{oldKey} })

	banks := filepath.Join(t.TempDir(), "banks.yaml")
	writeFile(t, banks, fmt.Sprintf(`banks:
  - id: sandbox
    display_name: Sandbox Bank
    kind: remote
    endpoint: %s
  - id: oldbank
    display_name: Old Bank
    kind: remote
    endpoint: %s
    rate_limit:
      per_second: 0.001
      burst: 4
`, e.sandbox, oldAddr))

	e.args = []string{
		"--grpc-addr=127.0.0.1:0", "--admin-addr=", "--dev-mode", "--plaintext", "--drain-delay=0s", "--shutdown-grace=2s",
		"--log-level=WARN",
		"--issuer=" + testIssuer, "--jwks-url=" + jwks.URL,
		"--client-purposes=" + chatApp + "=CONSENT_MANAGEMENT,ACCOUNT_INFORMATION",
		"--internal-clients=" + balanceSvc,
		"--partner-clients=" + demoPartner + "," + otherPartner,
		"--data-dir=" + e.dataDir, "--banks=" + banks,
		"--vault-addr=" + e.vault.Addr(), "--vault-token=" + e.vault.RootToken(),
		"--vault-refresh=" + vaultRefrsh.String(),
	}
	e.args = append(e.args, args...)
	e.start(t)
	return e
}

// start starts the consent service on e.args and points e's clients at it.
func (e *env) start(t testing.TB) {
	t.Helper()
	addr, stop := startConsent(t, e.args)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	waitServing(t, conn)
	e.addr, e.stop = addr, stop
	e.consent = consentv1.NewConsentServiceClient(conn)
	e.check = consentv1.NewConsentCheckServiceClient(conn)
}

// startConsent runs the service as its binary would, and returns its
// address and how to stop it (once; the test's end stops it otherwise).
func startConsent(t testing.TB, args []string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, io.Discard, func(addr string) { ready <- addr }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consent service: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("consent service did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return addr, stop
	case err := <-done:
		t.Fatalf("consent service: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("consent service did not start")
	}
	return "", stop
}

func waitServing(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	h := healthpb.NewHealthClient(conn)
	var resp *healthpb.HealthCheckResponse
	var err error
	if !testkit.Within(15*time.Second, func() bool {
		resp, err = h.Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}) {
		t.Fatalf("consent service not SERVING: %v, %v", resp, err)
	}
}

// serveBank serves a Go adapter over gRPC on 127.0.0.1, as a bank would,
// refusing calls without one of keys().
func serveBank(t testing.TB, a adapters.Adapter, keys func() []string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(a,
		adapters.WithAPIKeys(keys), adapters.WithLogger(discardLogger())))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// as is a call context for user through the chat app.
func (e *env) as(t testing.TB, user string) context.Context {
	t.Helper()
	tok, err := e.issuer.Mint(user, chatApp, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "CONSENT_MANAGEMENT")
}

// asService is a call context for the balance service's own token, of
// the internal audience internal methods take.
func (e *env) asService(t testing.TB) context.Context {
	t.Helper()
	tok, err := e.issuer.MintInternal(balanceSvc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
}

func (e *env) createLink(t testing.TB, user, bank string) *consentv1.Link {
	t.Helper()
	resp, err := e.consent.CreateLink(e.as(t, user), &consentv1.CreateLinkRequest{
		Parent: "users/" + user,
		Link: &consentv1.Link{
			BankId:        bank,
			Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES},
			Purposes:      []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
			BankLoginHint: user,
		},
		IdempotencyKey: randomKey(t),
	})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	l := resp.GetLink()
	if l.GetState() != consentv1.ConsentState_CONSENT_STATE_RECEIVED || l.GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_STARTED {
		t.Fatalf("new link is %s / %s, want RECEIVED / STARTED", l.GetState(), l.GetSca().GetStatus())
	}
	return l
}

func (e *env) verify(t testing.TB, user, name, code string) (*consentv1.Link, error) {
	t.Helper()
	resp, err := e.consent.VerifyLink(e.as(t, user), &consentv1.VerifyLinkRequest{Name: name, Code: code, IdempotencyKey: randomKey(t)})
	return resp.GetLink(), err
}

func (e *env) checkConsent(t testing.TB, user, bank string) *consentv1.CheckConsentResponse {
	t.Helper()
	resp, err := e.check.CheckConsent(e.asService(t), &consentv1.CheckConsentRequest{
		User: "users/" + user, BankId: bank,
		Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
	})
	if err != nil {
		t.Fatalf("CheckConsent: %v", err)
	}
	return resp
}

// bankClient calls the sandbox directly, presenting key (none when empty).
func (e *env) bankClient(t testing.TB) adapterv1.BankAdapterServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(e.sandbox, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return adapterv1.NewBankAdapterServiceClient(conn)
}

func withAPIKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, key)
}

func TestEndToEnd(t *testing.T) {
	e := startEnv(t)
	var aliceLink string      // alice's VALID sandbox link
	var aliceConsentID string // its consent id at the bank

	var pending *consentv1.Link // alice's sandbox link, created and not yet verified
	t.Run("a wrong code is refused and links nothing", func(t *testing.T) {
		pending = e.createLink(t, "alice", "sandbox")
		_, err := e.verify(t, "alice", pending.GetName(), "000000")
		md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if got := md["attempts_remaining"]; got != "4" {
			t.Errorf("attempts_remaining = %q, want 4", got)
		}
		if d := e.checkConsent(t, "alice", "sandbox"); d.GetAllowed() || d.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED {
			t.Fatalf("CheckConsent after a wrong code = %v, want denied CONSENT_REQUIRED", d)
		}
	})

	t.Run("the right code then makes the link VALID", func(t *testing.T) {
		l := pending
		if l.GetSca().GetMethod() != consentv1.ScaMethod_SCA_METHOD_OTP || l.GetSca().GetInstruction() == "" {
			t.Errorf("challenge %v: want an OTP with an instruction", l.GetSca())
		}
		got, err := e.verify(t, "alice", l.GetName(), sandbox.Code)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID || got.GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_FINALISED || got.GetVerifyTime() == nil {
			t.Fatalf("link %v: want VALID, FINALISED, verify_time set", got)
		}
		if !proto.Equal(&consentv1.Link{Scopes: got.GetScopes(), Purposes: got.GetPurposes()}, &consentv1.Link{Scopes: l.GetScopes(), Purposes: l.GetPurposes()}) {
			t.Errorf("scopes/purposes changed: %v %v", got.GetScopes(), got.GetPurposes())
		}
		if until := time.Until(got.GetExpireTime().AsTime()); until < 89*24*time.Hour || until > 90*24*time.Hour {
			t.Errorf("expire_time in %s, want 90 days", until)
		}
		d := e.checkConsent(t, "alice", "sandbox")
		if !d.GetAllowed() || d.GetLink() != got.GetName() || d.GetBankConsentId() == "" {
			t.Fatalf("CheckConsent = %v, want allowed by %s", d, got.GetName())
		}
		aliceLink, aliceConsentID = got.GetName(), d.GetBankConsentId()
	})

	t.Run("five wrong codes lock the challenge", func(t *testing.T) {
		l := e.createLink(t, "alice", "sandbox")
		if got := l.GetSca().GetAttemptsRemaining(); got != 5 {
			t.Fatalf("attempts_remaining = %d, want 5", got)
		}
		for want := 4; want >= 1; want-- {
			_, err := e.verify(t, "alice", l.GetName(), "000000")
			md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			if md["attempts_remaining"] != strconv.Itoa(want) {
				t.Fatalf("attempts_remaining = %q, want %d", md["attempts_remaining"], want)
			}
		}
		_, err := e.verify(t, "alice", l.GetName(), "000000")
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		got, err := e.consent.GetLink(e.as(t, "alice"), &consentv1.GetLinkRequest{Name: l.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_REJECTED || got.GetLink().GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_LOCKED {
			t.Fatalf("locked link is %s / %s, want REJECTED / LOCKED", got.GetLink().GetState(), got.GetLink().GetSca().GetStatus())
		}
		_, err = e.verify(t, "alice", l.GetName(), sandbox.Code)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING)
	})

	t.Run("bob cannot see or revoke alice's link", func(t *testing.T) {
		bob := e.as(t, "bob")
		calls := map[string]func() error{
			"GetLink": func() error {
				_, err := e.consent.GetLink(bob, &consentv1.GetLinkRequest{Name: aliceLink})
				return err
			},
			"RevokeLink": func() error {
				_, err := e.consent.RevokeLink(bob, &consentv1.RevokeLinkRequest{Name: aliceLink, IdempotencyKey: randomKey(t)})
				return err
			},
			"ListLinks": func() error {
				_, err := e.consent.ListLinks(bob, &consentv1.ListLinksRequest{Parent: "users/alice"})
				return err
			},
			"ListAccessLog": func() error {
				_, err := e.consent.ListAccessLog(bob, &consentv1.ListAccessLogRequest{Parent: "users/alice"})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				testkit.RequireReason(t, call(), commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
			})
		}
		if d := e.checkConsent(t, "alice", "sandbox"); !d.GetAllowed() {
			t.Fatalf("alice's consent after bob's attempts: %v, want still allowed", d)
		}
	})

	t.Run("internal calls need a bankbridge service's token", func(t *testing.T) {
		_, err := e.check.CheckConsent(e.as(t, "alice"), &consentv1.CheckConsentRequest{
			User: "users/alice", Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
		})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	})

	t.Run("the contract's refusals", func(t *testing.T) {
		link := func(edit func(*consentv1.Link)) *consentv1.CreateLinkRequest {
			l := &consentv1.Link{
				BankId:        "sandbox",
				Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
				Purposes:      []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
				BankLoginHint: "alice",
			}
			edit(l)
			return &consentv1.CreateLinkRequest{Parent: "users/alice", Link: l, IdempotencyKey: randomKey(t)}
		}
		withPurpose := func(purpose string) context.Context {
			tok, _ := e.issuer.Mint("alice", chatApp, time.Hour)
			return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", purpose)
		}
		tests := []struct {
			name   string
			call   func() error
			reason commonv1.ErrorReason
		}{
			{"no scopes", func() error {
				_, err := e.consent.CreateLink(e.as(t, "alice"), link(func(l *consentv1.Link) { l.Scopes = nil }))
				return err
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
			{"advertising among the purposes", func() error {
				_, err := e.consent.CreateLink(e.as(t, "alice"), link(func(l *consentv1.Link) {
					l.Purposes = append(l.Purposes, commonv1.Purpose_PURPOSE_ADVERTISING)
				}))
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
			{"a purpose other than consent management", func() error {
				_, err := e.consent.ListLinks(withPurpose("ACCOUNT_INFORMATION"), &consentv1.ListLinksRequest{Parent: "users/alice"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
			{"an unknown bank", func() error {
				_, err := e.consent.CreateLink(e.as(t, "alice"), link(func(l *consentv1.Link) { l.BankId = "nobank" }))
				return err
			}, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND},
			// A login the bank does not know is no refusal: it gets a link,
			// as a known one does (TestUnknownLoginGetsTheSameAnswer).
			{"no login for a bank that needs one", func() error {
				_, err := e.consent.CreateLink(e.as(t, "alice"), link(func(l *consentv1.Link) { l.BankLoginHint = "" }))
				return err
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
			{"an unknown link", func() error {
				_, err := e.consent.GetLink(e.as(t, "alice"), &consentv1.GetLinkRequest{Name: "users/alice/links/nope"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
			{"a made-up page token", func() error {
				_, err := e.consent.ListLinks(e.as(t, "alice"), &consentv1.ListLinksRequest{Parent: "users/alice", PageToken: "bogus"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				testkit.RequireReason(t, tt.call(), tt.reason)
			})
		}
	})

	t.Run("a retry with the Idempotency-Key header returns the first link", func(t *testing.T) {
		key := randomKey(t)
		req := &consentv1.CreateLinkRequest{Parent: "users/carol", Link: &consentv1.Link{
			BankId: "sandbox", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
			Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}, BankLoginHint: "carol",
		}}
		var names []string
		for range 2 {
			resp, err := e.consent.CreateLink(metadata.AppendToOutgoingContext(e.as(t, "carol"), "idempotency-key", key), req)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, resp.GetLink().GetName())
		}
		if names[0] != names[1] {
			t.Errorf("retry made link %s besides %s", names[1], names[0])
		}
		list, err := e.consent.ListLinks(e.as(t, "carol"), &consentv1.ListLinksRequest{Parent: "users/carol"})
		if err != nil || len(list.GetLinks()) != 1 {
			t.Errorf("carol has %d links (%v), want 1", len(list.GetLinks()), err)
		}
	})

	t.Run("revoking denies the next check and tells watchers and the bank", func(t *testing.T) {
		stream := e.watch(t)
		resp, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: aliceLink, IdempotencyKey: randomKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED || resp.GetLink().GetRevokeTime() == nil {
			t.Fatalf("revoked link %v: want REVOKED with revoke_time", resp.GetLink())
		}
		d := e.checkConsent(t, "alice", "sandbox")
		if d.GetAllowed() || d.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED || d.GetLink() != aliceLink {
			t.Fatalf("CheckConsent after revoke = %v, want denied CONSENT_REVOKED naming %s", d, aliceLink)
		}
		change, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if change.GetUser() != "users/alice" || change.GetLink() != aliceLink || change.GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED {
			t.Errorf("change = %v, want %s REVOKED", change, aliceLink)
		}
		// The bank hears of it shortly after (best effort, not awaited).
		bank := e.bankClient(t)
		if !testkit.Within(10*time.Second, func() bool {
			_, err = bank.ListAccounts(withAPIKey(t.Context(), e.currentSandboxKey()), &adapterv1.ListAccountsRequest{BankConsentId: aliceConsentID})
			return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		}) {
			t.Fatalf("bank still serves the revoked consent: %v", err)
		}
	})

	t.Run("ListLinks filters by state as links read now", func(t *testing.T) {
		count := func(state consentv1.ConsentState) int {
			resp, err := e.consent.ListLinks(e.as(t, "alice"), &consentv1.ListLinksRequest{Parent: "users/alice", State: state})
			if err != nil {
				t.Fatal(err)
			}
			return len(resp.GetLinks())
		}
		want := map[consentv1.ConsentState]int{
			consentv1.ConsentState_CONSENT_STATE_UNSPECIFIED: 2,
			consentv1.ConsentState_CONSENT_STATE_REVOKED:     1,
			consentv1.ConsentState_CONSENT_STATE_REJECTED:    1,
			consentv1.ConsentState_CONSENT_STATE_VALID:       0,
		}
		for state, n := range want {
			if got := count(state); got != n {
				t.Errorf("%s: %d links, want %d", state, got, n)
			}
		}
	})

	t.Run("the sandbox refuses a call without the right API key", func(t *testing.T) {
		bank := e.bankClient(t)
		for name, key := range map[string]string{"no key": "", "wrong key": "not-the-key"} {
			t.Run(name, func(t *testing.T) {
				_, err := bank.GetAdapterInfo(withAPIKey(t.Context(), key), &adapterv1.GetAdapterInfoRequest{})
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
			})
		}
	})

	t.Run("rotating the API key in Vault and at the bank needs no restart", func(t *testing.T) {
		old := e.currentSandboxKey()
		e.rotateSandboxKey(t)
		// Past the bank's grace for the old key and the service's Vault
		// refresh: from now on only the new key works, and is used.
		time.Sleep(keyGrace + 3*vaultRefrsh + 200*time.Millisecond)
		_, err := e.bankClient(t).GetAdapterInfo(withAPIKey(t.Context(), old), &adapterv1.GetAdapterInfoRequest{})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)

		l := e.createLink(t, "bob", "sandbox")
		got, err := e.verify(t, "bob", l.GetName(), sandbox.Code)
		if err != nil || got.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID {
			t.Fatalf("linking after the rotation: %v, %v", got.GetState(), err)
		}
	})

	t.Run("alice reads her own access log and its chain verifies", func(t *testing.T) {
		// A data service records an access, as its audit hook does.
		rec, err := e.check.RecordAccess(e.asService(t), &consentv1.RecordAccessRequest{
			User: "users/alice",
			Entry: &consentv1.AccessLogEntry{
				ClientId: chatApp, Method: "/bankbridge.balance.v1.BalanceService/GetBalance",
				Resource: "users/alice/accounts/a1/balance", Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
				Scope: commonv1.Scope_SCOPE_BALANCES, Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_DENIED,
				Reason: "CONSENT_REVOKED", TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
			},
		})
		if err != nil {
			t.Fatal(err)
		}

		var entries []*consentv1.AccessLogEntry
		token := ""
		for {
			page, err := e.consent.ListAccessLog(e.as(t, "alice"), &consentv1.ListAccessLogRequest{
				Parent: "users/alice", PageSize: 7, PageToken: token,
			})
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, page.GetEntries()...)
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(entries) == 0 || !proto.Equal(entries[0], rec.GetEntry()) {
			t.Fatalf("newest entry %v, want the one just recorded %v", entries[0], rec.GetEntry())
		}
		var userMismatch, scaLocked, revoked int
		for i, en := range entries {
			// Newest first, no gaps, each hash recomputable by alice alone.
			if want := int64(len(entries) - i); en.GetSequence() != want {
				t.Fatalf("entry %d has sequence %d, want %d", i, en.GetSequence(), want)
			}
			if i+1 < len(entries) && en.GetPreviousHash() != entries[i+1].GetHash() {
				t.Fatalf("entry %d's previous_hash does not match entry %d", en.GetSequence(), entries[i+1].GetSequence())
			}
			if got := app.ChainHash(entryFromProto(en)); got != en.GetHash() {
				t.Fatalf("entry %d: recomputed hash %s, listed %s", en.GetSequence(), got, en.GetHash())
			}
			switch {
			case en.GetReason() == "USER_MISMATCH":
				userMismatch++
			case en.GetReason() == "SCA_LOCKED":
				scaLocked++
			case en.GetMethod() == consentv1.ConsentService_RevokeLink_FullMethodName && en.GetOutcome() == consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED:
				revoked++
			}
		}
		if entries[len(entries)-1].GetPreviousHash() != app.GenesisHash {
			t.Errorf("first entry's previous_hash = %s, want 64 zeros", entries[len(entries)-1].GetPreviousHash())
		}
		// The lockout and the revocation are there; bob's four attempts on
		// alice's links are not: a caller who is not alice cannot write into
		// her log (they are in the security log instead).
		if userMismatch != 0 || scaLocked != 1 || revoked != 1 {
			t.Errorf("log holds %d USER_MISMATCH, %d SCA_LOCKED, %d revocations; want 0, 1, 1", userMismatch, scaLocked, revoked)
		}

		for _, args := range [][]string{{"verify-access-log", "alice"}, {"verify-access-log"}} {
			var out bytes.Buffer
			flags := []string{"--data-dir=" + e.dataDir, "--vault-addr=" + e.vault.Addr(), "--vault-token=" + e.vault.RootToken()}
			if err := run(t.Context(), append(flags, args...), &out, nil); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out.String())
			}
			if out.String() != "access log intact\n" {
				t.Errorf("%v printed %q", args, out.String())
			}
		}
	})
}

func entryFromProto(e *consentv1.AccessLogEntry) app.AccessEntry {
	return app.AccessEntry{
		Sequence: e.GetSequence(), AccessTime: e.GetAccessTime().AsTime(), ClientID: e.GetClientId(), SubjectID: e.GetSubjectId(),
		Method: e.GetMethod(), Resource: e.GetResource(), Purpose: e.GetPurpose(), Scope: e.GetScope(),
		Outcome: app.ParseOutcome(e.GetOutcome().String()), Reason: e.GetReason(), TraceID: e.GetTraceId(),
		Hash: e.GetHash(), PreviousHash: e.GetPreviousHash(),
	}
}

func (e *env) currentSandboxKey() string { return e.sandboxKey }

// rotateSandboxKey rotates the sandbox's API key as an operator would: the
// bank first (which keeps the old key for its grace period), then Vault.
func (e *env) rotateSandboxKey(t testing.TB) {
	t.Helper()
	key := randomKey(t)
	writeFile(t, e.keyFile, key)
	e.vault.PutBankSecret(t, "sandbox", map[string]any{"api_key": key})
	e.sandboxKey = key
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
