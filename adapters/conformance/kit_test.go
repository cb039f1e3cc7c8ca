package conformance_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/conformance/internal/broken"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

var update = flag.Bool("update", false, "rewrite CHECKS.md from the registry")

// quiet keeps the adapters' call logs out of the test output.
var quiet = adapters.WithLogger(slog.New(slog.DiscardHandler))

// testAPIKey is the key the tests' adapters take.
const testAPIKey = "conformance-test-key-1"

// serve serves srv on 127.0.0.1 over real gRPC and returns a client of it.
func serve(t *testing.T, srv adapterv1.BankAdapterServiceServer) adapterv1.BankAdapterServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return adapterv1.NewBankAdapterServiceClient(conn)
}

func newSandbox(t *testing.T) *sandbox.Bank {
	t.Helper()
	// Fraud cases move on quickly, so that the kit sees every status go by.
	bank, err := sandbox.New(sandbox.Options{FraudCaseStep: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bank.Close)
	return bank
}

// sandboxFixtures are the sandbox's customers, as fixtures.example.yaml
// gives them.
func sandboxFixtures(bank *sandbox.Bank) conformance.Fixtures {
	alert := func(context.Context) error {
		_, err := bank.TriggerFraudAlert("alice")
		return err
	}
	return conformance.Fixtures{
		LoginHint: "alice", UnknownLoginHint: "mallory", GoodCode: sandbox.Code, BadCode: "654321",
		SecondCustomer:      conformance.Customer{LoginHint: "bob"},
		UnavailableCustomer: conformance.Customer{LoginHint: "dave"},
		APIKey:              testAPIKey,
		TriggerEvent:        alert, TriggerFraudAlert: alert, PromptEvents: true,
	}
}

func keys() []string { return []string{testAPIKey} }

// runKit runs the kit as the command does, logging its progress.
func runKit(t *testing.T, client adapterv1.BankAdapterServiceClient, fx conformance.Fixtures) *conformance.Report {
	t.Helper()
	var progress bytes.Buffer
	rep, err := conformance.RunChecks(t.Context(), client, fx, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the kit's progress:\n%s", progress.String())
		}
	})
	return rep
}

func result(t *testing.T, rep *conformance.Report, id string) *conformance.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("the report has no check %q", id)
	return nil
}

// wantFailed wants check id failed, saying each of says.
func wantFailed(t *testing.T, rep *conformance.Report, id string, says ...string) {
	t.Helper()
	r := result(t, rep, id)
	if r.Status != conformance.Failed {
		t.Errorf("%s: %s (%s), want FAIL", id, r.Status, r.Reason)
		return
	}
	all := strings.Join(r.Failures, "\n")
	for _, s := range says {
		if !strings.Contains(all, s) {
			t.Errorf("%s: the failures do not say %q; they say:\n%s", id, s, all)
		}
	}
}

func wantStatus(t *testing.T, rep *conformance.Report, want conformance.Status, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if r := result(t, rep, id); r.Status != want {
			t.Errorf("%s: %s, want %s (failures %q, reason %q)", id, r.Status, want, r.Failures, r.Reason)
		}
	}
}

// TestSandboxPassesEveryCheck runs every check against Sandbox Bank served
// remote with an API key, with every fixture: none fails and none is
// skipped, so "passed" hides no empty check.
func TestSandboxPassesEveryCheck(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	rep := runKit(t, serve(t, adapters.NewServer(bank, adapters.WithAPIKeys(keys), quiet)), sandboxFixtures(bank))
	for _, r := range rep.Results {
		if r.Status != conformance.Passed {
			t.Errorf("%s", rep.Summary())
			break
		}
	}
	if len(rep.Results) != len(conformance.Checks()) {
		t.Errorf("the report lists %d checks, the registry %d", len(rep.Results), len(conformance.Checks()))
	}
	if rep.Adapter.BankID != "sandbox" || len(rep.Adapter.Capabilities) == 0 {
		t.Errorf("report's adapter = %+v", rep.Adapter)
	}
}

// TestGoTestRunsEveryCheck runs the kit as a Go test against the sandbox:
// each check is a subtest named by its id.
func TestGoTestRunsEveryCheck(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	conformance.Run(t, serve(t, adapters.NewServer(bank, adapters.WithAPIKeys(keys), quiet)), sandboxFixtures(bank))
}

// TestSkipsSayWhy runs the kit with only the main customer: the checks
// that need more are skipped, each saying what is missing, and the run
// still passes.
func TestSkipsSayWhy(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	rep := runKit(t, serve(t, adapters.NewServer(bank, quiet)), conformance.Fixtures{LoginHint: "alice", GoodCode: sandbox.Code})
	if !rep.Passed() {
		t.Fatalf("want a pass:\n%s", rep.Summary())
	}
	for id, reason := range map[string]string{
		"auth/credentials-rejected":         "no API key given",
		"accounts/other-customer-isolation": "no second_customer in the fixtures",
		"errors/bank-unavailable":           "no unavailable_customer in the fixtures",
		"sca/unknown-login":                 "no unknown_login_hint",
		"sca/bad-code":                      "no customer.bad_code",
		"events/delivery":                   "no trigger_event",
		"events/resume":                     "events/delivery did not pass",
		"fraud/answer-alert":                "no trigger_fraud_alert",
	} {
		if r := result(t, rep, id); r.Status != conformance.Skipped || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: %s with reason %q, want SKIP saying %q", id, r.Status, r.Reason, reason)
		}
	}
	for _, r := range rep.Results {
		if r.Status == conformance.Skipped && r.Reason == "" {
			t.Errorf("%s: skipped without a reason", r.ID)
		}
	}
	if s := rep.Summary(); !strings.Contains(s, "SKIP accounts/other-customer-isolation: no second_customer") {
		t.Errorf("the summary does not list the skip:\n%s", s)
	}
}

// TestBrokenAdaptersFailTheirCheck proves each new check with an adapter
// that breaks its rule: the kit fails that check, by id, and the checks
// the adapter gets right still pass.
func TestBrokenAdaptersFailTheirCheck(t *testing.T) {
	t.Parallel()
	says := map[string][]string{
		"ignores-count": {"SyncTransactions with count 1: the response holds"},
		"leaks-accounts": {`GetBalances of the main customer's account "acc-alice-checking" under second_customer's consent: want NotFound (NOT_FOUND), got success`,
			`SyncTransactions of the main customer's account "acc-alice-card" under second_customer's consent: want NotFound (NOT_FOUND), got success`},
		"accepts-any-key": {"GetAdapterInfo with a wrong API key: want Unauthenticated (CREDENTIALS_REJECTED), got success",
			"ListAccounts without an API key: want Unauthenticated (CREDENTIALS_REJECTED), got PermissionDenied"},
		"hides-outage": {"ListAccounts under unavailable_customer's consent: want Unavailable (BANK_UNAVAILABLE), got success",
			"ListCards under unavailable_customer's consent: want Unavailable (BANK_UNAVAILABLE), got success"},
	}
	for _, a := range broken.Adapters() {
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			bank := newSandbox(t)
			rep := runKit(t, serve(t, a.Server(bank, keys, quiet)), sandboxFixtures(bank))
			wantFailed(t, rep, a.Fails, says[a.Name]...)
			if got := rep.FailedIDs(); len(got) != 1 {
				t.Errorf("failed checks %q, want only %s", got, a.Fails)
			}
		})
	}
}

// TestChecksDocIsCurrent fails when CHECKS.md is not what the registry
// generates; -update rewrites it.
func TestChecksDocIsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := conformance.WriteChecksMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("CHECKS.md", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("CHECKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Error("CHECKS.md is stale: run go test ./conformance -run TestChecksDocIsCurrent -update")
	}
	for _, c := range conformance.Checks() {
		if !bytes.Contains(got, []byte("| `"+c.ID+"` |")) {
			t.Errorf("CHECKS.md does not list %s", c.ID)
		}
	}
}

// TestReportFormats reads the JUnit XML back and the Markdown report as an
// integrator would: every check, its status, and why.
func TestReportFormats(t *testing.T) {
	t.Parallel()
	bank := newSandbox(t)
	rep := runKit(t, serve(t, broken.Adapters()[0].Server(bank, keys, quiet)), conformance.Fixtures{LoginHint: "alice", GoodCode: sandbox.Code, APIKey: testAPIKey})

	var x bytes.Buffer
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, x.String())
	}
	if doc.Tests != len(conformance.Checks()) || doc.Failures != 1 || doc.Skipped != rep.Count(conformance.Skipped) || len(doc.Suites) != 1 {
		t.Errorf("junit.xml: tests %d failures %d skipped %d suites %d", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
	}
	for _, c := range doc.Suites[0].Cases {
		switch c.Name {
		case "transactions/count-honoured":
			if c.Failure == nil || !strings.Contains(c.Failure.Message, "count 1") {
				t.Errorf("junit.xml: %s has failure %+v", c.Name, c.Failure)
			}
		case "accounts/other-customer-isolation":
			if c.Skipped == nil || !strings.Contains(c.Skipped.Message, "no second_customer") {
				t.Errorf("junit.xml: %s has skipped %+v", c.Name, c.Skipped)
			}
		}
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Verdict: **FAILED**",
		"| `transactions/count-honoured` | FAIL | 4 failure(s), below |",
		"| `accounts/other-customer-isolation` | SKIP | no second_customer in the fixtures",
		"| `balances/get` | PASS |",
		"### `transactions/count-honoured`",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md does not say %q:\n%s", want, md.String())
		}
	}
}
