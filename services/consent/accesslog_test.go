package main

import (
	"bytes"
	"strings"
	"testing"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// TestVerifyAccessLogChecksTheSignedHead runs the service, which signs
// each chain head with its Transit key, and then verify-access-log, as an
// operator would, before and after someone with write access to the
// database (but not to Vault) cut the last entry off bob's log and moved
// his head back to the entry before it, hash and all: a chain that holds
// together, which only the head's signature shows to be cut.
func TestVerifyAccessLogChecksTheSignedHead(t *testing.T) {
	e := startEnv(t)
	for range 3 {
		_, err := e.check.RecordAccess(e.asService(t), &consentv1.RecordAccessRequest{User: "users/bob", Entry: &consentv1.AccessLogEntry{
			ClientId: chatApp, Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: "users/bob/accounts/a1/balance",
			Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
			Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.stop()
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		flags := []string{"--data-dir=" + e.dataDir, "--vault-addr=" + e.vault.Addr(), "--vault-token=" + e.vault.RootToken()}
		err := run(t.Context(), append(flags, args...), &out, nil)
		return out.String(), err
	}
	if out, err := verify("verify-access-log", "bob"); err != nil || out != "access log intact\n" {
		t.Fatalf("before: %q, %v", out, err)
	}

	db, err := storage.Open(t.Context(), storage.SQLiteURL(e.dataDir, "consent"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`DELETE FROM access_log WHERE user_id = 'bob' AND sequence = 3`,
		`UPDATE access_log_heads SET sequence = 2, hash = (SELECT hash FROM access_log WHERE user_id = 'bob' AND sequence = 2) WHERE user_id = 'bob'`,
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"verify-access-log", "bob"}, {"verify-access-log"}} {
		out, err := verify(args...)
		if err == nil || !strings.Contains(out, "users/bob: access log chain broken at sequence 2: ") || !strings.Contains(out, "signature") {
			t.Errorf("%v after the cut: %q, %v; want bob's chain reported broken by its signature", args, out, err)
		}
	}

	// Without Vault the command cannot check signatures, and says so.
	err = run(t.Context(), []string{"--data-dir=" + e.dataDir, "verify-access-log"}, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "--vault-addr") {
		t.Errorf("without --vault-addr: %v", err)
	}
}
