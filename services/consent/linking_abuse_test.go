package main

// Issue 13, linking abuse, attacked through the consent service's gRPC
// server, with the sandbox bank served remotely and the service's keys in
// a real Vault: an unknown bank login answered as a known one, the cap on
// links waiting for verification, wrong codes counted across links with a
// cooldown, codes sent at once never trying more than the attempts left
// (on SQLite and PostgreSQL), and fingerprints keyed with the key in
// Vault. The service's logic is tested the same way, with a fake bank and
// a clock, in internal/app/abuse_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// StartSca counts the challenges the bank was asked to start.
func (b *switchableBank) StartSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	b.starts.Add(1)
	time.Sleep(time.Duration(b.bankDelay.Load()))
	return b.Bank.StartSca(ctx, req)
}

// VerifySca counts the codes that reached the bank, each taking
// verifyDelay, so that codes sent at once are checked at once.
func (b *switchableBank) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	b.verifies.Add(1)
	time.Sleep(time.Duration(b.verifyDelay.Load()))
	return b.Bank.VerifySca(ctx, req)
}

// putKeys writes the consent service's keys to Vault.
func (e *env) putKeys(t testing.TB, data map[string]any) {
	t.Helper()
	e.vault.Write(t, "bankbridge/data/"+keysPrefix+"/"+keysID, map[string]any{"data": data})
}

// db opens the consent service's database, as the service was given it.
func (e *env) db(t testing.TB) *storage.DB {
	t.Helper()
	url := storage.SQLiteURL(e.dataDir, "consent")
	for _, a := range e.args {
		if u, ok := strings.CutPrefix(a, "--database-url="); ok {
			url = u
		}
	}
	db, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// createLinkAs is CreateLink for user with a bank login of the sandbox's
// (or not).
func (e *env) createLinkAs(user, login, key string) (*consentv1.CreateLinkResponse, error) {
	return e.consent.CreateLink(e.asCtx(user), &consentv1.CreateLinkRequest{
		Parent: "users/" + user,
		Link: &consentv1.Link{
			BankId:        "sandbox",
			Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES},
			Purposes:      []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
			BankLoginHint: login,
		},
		IdempotencyKey: key,
	})
}

// asCtx is as without a test: for calls made from goroutines.
func (e *env) asCtx(user string) context.Context {
	tok, err := e.issuer.Mint(user, chatApp, time.Hour)
	if err != nil {
		panic(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok, "bankbridge-purpose", "CONSENT_MANAGEMENT")
}

// mustLink takes CreateLink's results and returns its link, failing the
// test on an error.
func mustLink(t testing.TB) func(*consentv1.CreateLinkResponse, error) *consentv1.Link {
	return func(resp *consentv1.CreateLinkResponse, err error) *consentv1.Link {
		t.Helper()
		if err != nil {
			t.Fatalf("CreateLink: %v", err)
		}
		return resp.GetLink()
	}
}

// withoutIDsAndTimes is what a CreateLink answer says but for what differs
// between any two links (name, times), in bytes.
func withoutIDsAndTimes(t testing.TB, m proto.Message) []byte {
	t.Helper()
	m = proto.Clone(m)
	var l *consentv1.Link
	switch r := m.(type) {
	case *consentv1.CreateLinkResponse:
		l = r.GetLink()
	case *consentv1.GetLinkResponse:
		l = r.GetLink()
	}
	l.Name, l.CreateTime, l.Expiration = "", nil, nil
	l.Sca.Name, l.Sca.ExpireTime = "", nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statusBytes is an error's google.rpc.Status on the wire.
func statusBytes(t testing.TB, err error) []byte {
	t.Helper()
	b, merr := proto.MarshalOptions{Deterministic: true}.Marshal(status.Convert(err).Proto())
	if merr != nil {
		t.Fatal(merr)
	}
	return b
}

func TestUnknownLoginGetsTheSameAnswer(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	// Two users are shown the sandbox's challenge: it is the bank's own,
	// which a decoy may imitate.
	mustLink(t)(e.createLinkAs("ua", "alice", randomKey(t)))
	mustLink(t)(e.createLinkAs("ub", "bob", randomKey(t)))

	starts := e.bank.starts.Load()
	known, err := e.createLinkAs("probe", "carol", randomKey(t))
	if err != nil {
		t.Fatalf("CreateLink with a login the bank knows: %v", err)
	}
	unknown, err := e.createLinkAs("probe", "mallory", randomKey(t))
	if err != nil {
		t.Fatalf("CreateLink with a login the bank does not know: %v, want the answer a known login gets", err)
	}
	if !bytes.Equal(withoutIDsAndTimes(t, unknown), withoutIDsAndTimes(t, known)) {
		t.Errorf("answers differ apart from ids and times:\nunknown login: %s\nknown login:   %s",
			prototext.Format(unknown), prototext.Format(known))
	}
	if n := e.bank.starts.Load() - starts; n != 2 {
		t.Errorf("the bank was asked %d times for the two logins, want once each", n)
	}

	t.Run("reading the links tells them apart no better", func(t *testing.T) {
		var got [][]byte
		for _, l := range []*consentv1.Link{known.GetLink(), unknown.GetLink()} {
			resp, err := e.consent.GetLink(e.as(t, "probe"), &consentv1.GetLinkRequest{Name: l.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, withoutIDsAndTimes(t, resp))
		}
		if !bytes.Equal(got[0], got[1]) {
			t.Error("GetLink answers differ apart from ids and times")
		}
	})

	t.Run("the right code fails on the unknown login as a wrong code does on the known", func(t *testing.T) {
		verifies := e.bank.verifies.Load()
		_, wrongOnKnown := e.verify(t, "probe", known.GetLink().GetName(), "000000")
		_, rightOnUnknown := e.verify(t, "probe", unknown.GetLink().GetName(), sandbox.Code)
		md := testkit.RequireReason(t, rightOnUnknown, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if md["attempts_remaining"] != "4" {
			t.Errorf("attempts_remaining = %q, want 4: the attempt counts", md["attempts_remaining"])
		}
		if !bytes.Equal(statusBytes(t, rightOnUnknown), statusBytes(t, wrongOnKnown)) {
			t.Errorf("statuses differ:\nunknown login, right code: %v\nknown login, wrong code:   %v", rightOnUnknown, wrongOnKnown)
		}
		// The bank is asked for both, so the time does not tell either.
		if n := e.bank.verifies.Load() - verifies; n != 2 {
			t.Errorf("the bank was asked %d times, want once for each", n)
		}
		for range 3 {
			_, err := e.verify(t, "probe", unknown.GetLink().GetName(), sandbox.Code)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		}
		_, err := e.verify(t, "probe", unknown.GetLink().GetName(), sandbox.Code)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
	})
}

func TestPendingLinksAreCappedPerUserAndBank(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	var pending []*consentv1.Link
	for range 3 {
		pending = append(pending, mustLink(t)(e.createLinkAs("pc", "alice", randomKey(t))))
	}
	starts := e.bank.starts.Load()
	_, err := e.createLinkAs("pc", "alice", randomKey(t))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("code %s, want RESOURCE_EXHAUSTED", status.Code(err))
	}
	md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT)
	if md["limit"] != "3" {
		t.Errorf("metadata limit = %q, want 3", md["limit"])
	}
	if ri := testkit.RetryInfo(err); ri == nil || ri.GetRetryDelay().AsDuration() <= 0 || ri.GetRetryDelay().AsDuration() > 5*time.Minute {
		t.Errorf("RetryInfo %v, want until the first challenge expires (the sandbox's last 5 minutes)", ri)
	}
	if n := e.bank.starts.Load(); n != starts {
		t.Errorf("the bank started %d challenges over the cap", n-starts)
	}
	// Another bank is not held back...
	if _, err := e.consent.CreateLink(e.as(t, "pc"), &consentv1.CreateLinkRequest{Parent: "users/pc", Link: &consentv1.Link{
		BankId: "oldbank", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
		Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}, BankLoginHint: "alice",
	}, IdempotencyKey: randomKey(t)}); err != nil {
		t.Errorf("a link to another bank: %v", err)
	}
	// ...and a revoked link no longer counts.
	if _, err := e.consent.RevokeLink(e.as(t, "pc"), &consentv1.RevokeLinkRequest{Name: pending[0].GetName(), IdempotencyKey: randomKey(t)}); err != nil {
		t.Fatal(err)
	}
	mustLink(t)(e.createLinkAs("pc", "alice", randomKey(t)))
}

func TestWrongCodesCoolDownAcrossLinksAndLoginsAreHashed(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	wrong := func(l *consentv1.Link, n int) {
		t.Helper()
		for range n {
			_, err := e.verify(t, "cd", l.GetName(), "000000")
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		}
	}
	first := mustLink(t)(e.createLinkAs("cd", "alice", randomKey(t)))
	wrong(first, 3)
	second := mustLink(t)(e.createLinkAs("cd", "alice", randomKey(t)))
	wrong(second, 2) // the fifth wrong code for alice's login at the sandbox

	verifies := e.bank.verifies.Load()
	refusals := map[string]func() error{
		"another code on the second link": func() error { _, err := e.verify(t, "cd", second.GetName(), "000000"); return err },
		"the right code on the first":     func() error { _, err := e.verify(t, "cd", first.GetName(), sandbox.Code); return err },
		"a fresh link":                    func() error { _, err := e.createLinkAs("cd", "alice", randomKey(t)); return err },
	}
	for name, call := range refusals {
		t.Run(name+" is refused", func(t *testing.T) {
			err := call()
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("code %s, want RESOURCE_EXHAUSTED", status.Code(err))
			}
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
			if ri := testkit.RetryInfo(err); ri == nil || ri.GetRetryDelay().AsDuration() < 59*time.Minute {
				t.Errorf("RetryInfo %v, want the cooldown's hour", ri)
			}
		})
	}
	if n := e.bank.verifies.Load(); n != verifies {
		t.Errorf("%d codes reached the bank during the cooldown", n-verifies)
	}
	t.Run("another login is not held back", func(t *testing.T) {
		mustLink(t)(e.createLinkAs("cd", "bob", randomKey(t)))
	})
	t.Run("another user is not held back", func(t *testing.T) {
		mustLink(t)(e.createLinkAs("cd2", "alice", randomKey(t)))
	})

	t.Run("the login is stored only as a keyed hash", func(t *testing.T) {
		db := e.db(t)
		for _, table := range []string{"links", "sca_failures", "link_starts", "bank_challenges", "idempotency_keys"} {
			rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			n := 0
			for rows.Next() {
				n++
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if s := fmt.Sprint(v); strings.Contains(s, "alice") || (cols[i] == "login_hash" && s != "" && len(s) != 64) {
						t.Errorf("%s.%s holds %q", table, cols[i], s)
					}
				}
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if table == "sca_failures" && n == 0 {
				t.Errorf("no counts of wrong codes stored")
			}
		}
		unkeyed := sha256.Sum256([]byte("alice"))
		var hashes int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM links WHERE user_id = 'cd' AND login_hash IN ($1, '')`,
			hex.EncodeToString(unkeyed[:])).Scan(&hashes); err != nil || hashes != 0 {
			t.Errorf("%d links keep an unkeyed hash of the login (or none), %v", hashes, err)
		}
	})
}

func TestCodesAtOnceReachTheBankAtMostAsOftenAsAllowed(t *testing.T) {
	t.Parallel()
	dbs := map[string]func(t *testing.T) []string{
		"sqlite": func(*testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string {
			url := os.Getenv(storagetest.PostgresURLEnv)
			if url == "" {
				t.Skipf("%s is not set: no PostgreSQL to run on", storagetest.PostgresURLEnv)
			}
			return []string{"--database-url=" + storagetest.PostgresDatabase(t, url)}
		},
	}
	for name, dbArgs := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The login's own limit far off: the link's attempts alone hold.
			e := startEnv(t, append(dbArgs(t), "--sca-failure-limit=100")...)
			e.bank.verifyDelay.Store(int64(50 * time.Millisecond))
			l := mustLink(t)(e.createLinkAs("pa", "alice", randomKey(t)))
			answers := make(chan string, 10)
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					_, err := e.consent.VerifyLink(e.asCtx("pa"), &consentv1.VerifyLinkRequest{
						Name: l.GetName(), Code: fmt.Sprintf("%06d", i), IdempotencyKey: randomKey(t),
					})
					answers <- apierr.ReasonString(apierr.Reason(err))
				})
			}
			wg.Wait()
			close(answers)
			got := map[string]int{}
			for a := range answers {
				got[a]++
			}
			if n := e.bank.verifies.Load(); n > 5 {
				t.Errorf("%d codes reached the bank, want at most the challenge's 5 (answers %v)", n, got)
			}
			resp, err := e.consent.GetLink(e.as(t, "pa"), &consentv1.GetLinkRequest{Name: l.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			if s := resp.GetLink().GetSca(); s.GetStatus() != consentv1.ScaStatus_SCA_STATUS_LOCKED || s.GetAttemptsRemaining() != 0 {
				t.Errorf("challenge after the codes: %s with %d attempts left, want LOCKED with 0 (answers %v)",
					s.GetStatus(), s.GetAttemptsRemaining(), got)
			}
			t.Logf("answers: %v", got)
		})
	}
}

func TestCodeFingerprintIsKeyedWithTheKeyInVault(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	login := randomKey(t) + randomKey(t) + randomKey(t)
	old := randomKey(t) + randomKey(t) + randomKey(t)
	e.putKeys(t, map[string]any{codeKeyField: old, loginKeyField: login})
	time.Sleep(3 * vaultRefrsh)

	l := mustLink(t)(e.createLinkAs("fp", "alice", randomKey(t)))
	req := &consentv1.VerifyLinkRequest{Name: l.GetName(), Code: "000000", IdempotencyKey: randomKey(t)}
	verify := func() error { _, err := e.consent.VerifyLink(e.as(t, "fp"), req); return err }
	first := verify()
	testkit.RequireReason(t, first, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)

	var stored string
	if err := e.db(t).QueryRowContext(t.Context(), `SELECT request_hash FROM idempotency_keys
		WHERE user_id = 'fp' AND operation = 'VerifyLink' AND idempotency_key = $1`, req.GetIdempotencyKey()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	linkID := l.GetName()[strings.LastIndex(l.GetName(), "/")+1:]
	plain := sha256.New()
	fmt.Fprintf(plain, "%d:%s\n%d:%s\n", len(linkID), linkID, len(req.GetCode()), req.GetCode())
	code := sha256.Sum256([]byte(req.GetCode()))
	if stored == hex.EncodeToString(plain.Sum(nil)) || stored == hex.EncodeToString(code[:]) || strings.Contains(stored, req.GetCode()) {
		t.Fatalf("the stored fingerprint %s gives the code away: anyone who reads the table can try the million codes", stored)
	}

	// A new key, the old one kept as previous: a retry still gets the
	// first answer, and spends nothing.
	current := randomKey(t) + randomKey(t) + randomKey(t)
	e.putKeys(t, map[string]any{codeKeyField: current, previousCodeKeyField: old, loginKeyField: login})
	time.Sleep(3 * vaultRefrsh)
	verifies := e.bank.verifies.Load()
	if err := verify(); !bytes.Equal(statusBytes(t, err), statusBytes(t, first)) {
		t.Errorf("retry while the key rotates: %v, want the first answer %v", err, first)
	}
	if e.bank.verifies.Load() != verifies {
		t.Error("the retry reached the bank")
	}
	// Without the old key the stored fingerprint matches no more: it was
	// made with the key in Vault.
	e.putKeys(t, map[string]any{codeKeyField: current, loginKeyField: login})
	var err error
	if !testkit.Within(5*time.Second, func() bool {
		err = verify()
		return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	}) {
		t.Errorf("retry after the old key left Vault: %v, want IDEMPOTENCY_KEY_REUSED", err)
	}
}

// TestConsentPolicyReadsItsKeysAlone loads the policies a consent
// service's token gets into a real Vault: with them it reads its keys at
// bankbridge/keys/consent; with the policy every service gets it cannot.
func TestConsentPolicyReadsItsKeysAlone(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	for _, name := range []string{"bankbridge-service", "bankbridge-consent"} {
		rules, err := os.ReadFile("../../deploy/vault/policies/" + name + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		v.PutPolicy(t, name, string(rules))
	}
	v.Write(t, "bankbridge/data/keys/consent", map[string]any{"data": map[string]any{codeKeyField: strings.Repeat("c", 32), loginKeyField: strings.Repeat("l", 32)}})
	read := func(policies ...string) error {
		p, err := credentials.New(t.Context(), credentials.Config{
			Address: v.Addr(),
			Auth: credentials.AuthConfig{Method: credentials.AuthToken,
				Token: credentials.Sensitive(v.CreateToken(t, vaulttest.TokenRequest{Policies: policies}))},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Close() }()
		_, err = readKeys(t.Context(), p)
		return err
	}
	if err := read("bankbridge-service", "bankbridge-consent"); err != nil {
		t.Errorf("the consent service's policies cannot read its keys: %v", err)
	}
	if err := read("bankbridge-service"); err == nil {
		t.Error("any service's policy reads the consent service's keys")
	}
}
