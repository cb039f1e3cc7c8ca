package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
)

// TestNoDataWithoutAnAccessLogEntry reads 5,000 balances across 50 users
// while the consent service, which holds every user's access log, is frozen
// (SIGSTOP) for 3 s mid-run. Whatever each call answers, the access log
// tells the truth: the number of balances served equals the number of
// ALLOWED GetBalance entries, user by user, and every chain verifies.
func TestNoDataWithoutAnAccessLogEntry(t *testing.T) {
	const (
		users   = 50
		calls   = 5000
		workers = 25
		freeze  = 3 * time.Second
	)
	s := shared.stack
	// Fifty users, each linked to a sandbox customer (the sandbox knows
	// five; alice's data serves them all, under one consent each).
	type user struct {
		id, token, account string
	}
	all := make([]user, users)
	for i := range all {
		id := fmt.Sprintf("load%02d", i)
		tok := devToken(t, id)
		linkLogin(t, tok, id, "alice")
		all[i] = user{id: id, token: tok, account: "users/" + id + "/accounts/sandbox~acc-alice-checking/balance"}
	}
	c := balancev1.NewBalanceServiceClient(dial(t, shared.balance))

	var (
		next     atomic.Int64
		mu       sync.Mutex
		served   = map[string]int{}
		refused  = map[string]int{} // by reason, for the log
		froze    = make(chan struct{})
		freezeAt = int64(calls / 3)
		wg       sync.WaitGroup
	)
	go func() {
		for next.Load() < freezeAt {
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Signal("consent", syscall.SIGSTOP); err != nil {
			t.Error(err)
		}
		time.Sleep(freeze)
		if err := s.Signal("consent", syscall.SIGCONT); err != nil {
			t.Error(err)
		}
		close(froze)
	}()
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > calls {
					return
				}
				u := all[int(n)%users]
				ctx, cancel := context.WithTimeout(grpcCtx(u.token, "ACCOUNT_INFORMATION"), 30*time.Second)
				resp, err := c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: u.account})
				cancel()
				mu.Lock()
				switch {
				case err == nil && len(resp.GetBalance().GetBalances()) > 0:
					served[u.id]++
				case err == nil:
					refused["empty answer"]++
				default:
					refused[status.Code(err).String()+" "+apierr.ReasonString(apierr.Reason(err))]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-froze
	total := 0
	for _, n := range served {
		total += n
	}
	t.Logf("%d of %d calls served; refused: %v", total, calls, refused)
	if total == 0 {
		t.Fatal("no call was served")
	}

	// The access log, user by user, as each user reads it.
	cc := consentv1.NewConsentServiceClient(dial(t, shared.consent))
	for _, u := range all {
		allowed := 0
		token := ""
		for {
			page, err := cc.ListAccessLog(grpcCtx(u.token, "CONSENT_MANAGEMENT"), &consentv1.ListAccessLogRequest{
				Parent: "users/" + u.id, PageSize: 100, PageToken: token,
			})
			if err != nil {
				t.Fatalf("%s: ListAccessLog: %v", u.id, err)
			}
			for _, e := range page.GetEntries() {
				if e.GetMethod() == balancev1.BalanceService_GetBalance_FullMethodName && e.GetOutcome() == consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED {
					allowed++
				}
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if allowed != served[u.id] {
			t.Errorf("%s: %d balances served, %d ALLOWED entries", u.id, served[u.id], allowed)
		}
	}

	// Every chain verifies, and its head's signature, checked by the
	// consent binary's own verifier on the live database, with the signing
	// key's public versions from Vault.
	verify := exec.Command(filepath.Join(s.BinDir(), "consent"), "--dev-mode",
		"--data-dir="+filepath.Join(s.DataDir(), "consent"), "--vault-addr="+s.Vault.Addr, "verify-access-log")
	verify.Env = append(os.Environ(), "BANKBRIDGE_VAULT_TOKEN="+s.Vault.Token)
	out, err := verify.CombinedOutput()
	if err != nil {
		t.Fatalf("verify-access-log: %v\n%s", err, out)
	}
}

// linkLogin links user's sandbox bank as the sandbox customer login.
func linkLogin(t testing.TB, token, user, login string) string {
	t.Helper()
	r := call(t, http.MethodPost, "/v1/users/"+user+"/links", token, "CONSENT_MANAGEMENT", map[string]any{
		"bank_id":         "sandbox",
		"scopes":          []string{"SCOPE_ACCOUNTS", "SCOPE_BALANCES", "SCOPE_TRANSACTIONS"},
		"purposes":        []string{"PURPOSE_ACCOUNT_INFORMATION"},
		"bank_login_hint": login,
	})
	if r.status != http.StatusOK {
		t.Fatalf("create link: %d %s", r.status, r.raw)
	}
	name, _ := r.body["link"].(map[string]any)["name"].(string)
	v := call(t, http.MethodPost, "/v1/"+name+":verify", token, "CONSENT_MANAGEMENT", map[string]any{"code": "123456"})
	if v.status != http.StatusOK {
		t.Fatalf("verify link: %d %s", v.status, v.raw)
	}
	if state, _ := v.body["link"].(map[string]any)["state"].(string); state != "CONSENT_STATE_VALID" {
		t.Fatalf("link state after verify = %q; body %s", state, v.raw)
	}
	return name
}
