package conformance

import (
	"fmt"
	"io"
	"strings"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// CheckInfo describes one check of the kit: its stable id, the capability
// it belongs to, what it asks of the bank's test data and what it proves.
// CHECKS.md is generated from these.
type CheckInfo struct {
	// ID is stable across releases: "<group>/<name>".
	ID string
	// Capability is the capability the adapter must declare for the check
	// to run; UNSPECIFIED for checks every adapter must pass.
	Capability adapterv1.Capability
	// Needs is what the check asks of the fixtures and the bank's test
	// data; without it the check is skipped, saying so.
	Needs string
	// Proves is what a pass shows about the adapter.
	Proves string
}

const (
	needConsent  = "a consent on the main customer: `customer.login_hint` + `good_code` (OTP SCA), or `customer.bank_consent_id`"
	needAccounts = needConsent + "; at least one account"
)

// checks is the kit's registry, in the order the checks run.
var checks = []CheckInfo{
	{ID: "info/adapter-info", Needs: "nothing",
		Proves: "GetAdapterInfo answers valid, lists at least one capability, the same on every call; PURCHASE_DETAILS only with TRANSACTIONS. Every other check needs it to pass."},
	{ID: "health/check-health", Needs: "nothing",
		Proves: "CheckHealth answers valid, within a second (from recent calls, not a probe of the bank)."},
	{ID: "auth/credentials-rejected", Needs: "the API key bankbridge presents (`--api-key-file`); without one the check is skipped",
		Proves: "a call with a wrong API key, and one with none, answer UNAUTHENTICATED (CREDENTIALS_REJECTED), and the right key is let in."},
	{ID: "capabilities/declared-match-implemented", Needs: "nothing",
		Proves: "every RPC of a capability not listed answers UNIMPLEMENTED (CAPABILITY_NOT_SUPPORTED) with ErrorInfo; no RPC of a listed one does."},
	{ID: "validation/invalid-requests", Needs: "nothing",
		Proves: "a request breaking the protocol's rules answers INVALID_ARGUMENT whose BadRequest names the field, for one RPC per declared capability."},
	{ID: "consent/unknown-consent", Needs: "nothing",
		Proves: "every call on a consent the bank does not know answers PERMISSION_DENIED (CONSENT_REVOKED_BY_BANK), never NOT_FOUND; revoking one succeeds."},
	{ID: "sca/unknown-login", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "`unknown_login_hint`",
		Proves: "StartSca for a login the bank does not know answers NOT_FOUND."},
	{ID: "sca/start-idempotent", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "`customer.login_hint`",
		Proves: "StartSca retried with the same key answers the same (no second challenge); the key with another request answers IDEMPOTENCY_KEY_REUSED."},
	{ID: "sca/bad-code", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "`customer.bad_code`; OTP",
		Proves: "VerifySca with a wrong code answers SCA_FAILED or SCA_LOCKED, or status FAILED."},
	{ID: "sca/link", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "`customer.login_hint`, `customer.good_code`; the bank chooses OTP for the kit's challenge",
		Proves: "StartSca then VerifySca with the good code answers FINALISED with a consent the data checks then use."},
	{ID: "sca/verify-idempotent", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "sca/link passed",
		Proves: "VerifySca retried with the same key answers the same; the key with another code answers IDEMPOTENCY_KEY_REUSED; VerifySca after FINALISED answers FINALISED again."},
	{ID: "events/watch", Capability: adapterv1.Capability_CAPABILITY_EVENTS, Needs: needConsent + "; `trigger_event` to know the stream is live",
		Proves: "StreamEvents opens, and with trigger_event delivers an event: the kit then watches what its own calls cause."},
	{ID: "accounts/list", Capability: adapterv1.Capability_CAPABILITY_ACCOUNTS, Needs: needAccounts,
		Proves: "ListAccounts answers valid, masked numbers only, each account once."},
	{ID: "accounts/other-customer-isolation", Capability: adapterv1.Capability_CAPABILITY_ACCOUNTS,
		Needs:  "`second_customer` (login_hint or bank_consent_id): another customer with an account of their own",
		Proves: "one customer's account ids cannot be read under another customer's consent: ListAccounts does not show them, GetBalances and SyncTransactions of them answer NOT_FOUND."},
	{ID: "balances/get", Capability: adapterv1.Capability_CAPABILITY_BALANCES, Needs: needAccounts,
		Proves: "GetBalances of every account answers valid, each balance type once."},
	{ID: "balances/unknown-account", Capability: adapterv1.Capability_CAPABILITY_BALANCES, Needs: needConsent,
		Proves: "GetBalances of an account the consent does not cover answers NOT_FOUND."},
	{ID: "transactions/sync", Capability: adapterv1.Capability_CAPABILITY_TRANSACTIONS, Needs: needAccounts + "; a pending transaction that posts between syncs is checked when the bank has one",
		Proves: "SyncTransactions in pages of 2 then three catch-ups: valid, masked, no transaction added twice, has_more ends, a posted transaction removes its pending one in the same response."},
	{ID: "transactions/count-honoured", Capability: adapterv1.Capability_CAPABILITY_TRANSACTIONS, Needs: needAccounts + " with at least 3 transactions",
		Proves: "no SyncTransactions response holds more changes than `count` (1 and 2 asked for; a posting and the removal of its pending transaction count as one)."},
	{ID: "transactions/malformed-cursor", Capability: adapterv1.Capability_CAPABILITY_TRANSACTIONS, Needs: needAccounts,
		Proves: "SyncTransactions with a cursor the adapter never issued answers CURSOR_INVALID."},
	{ID: "transactions/cursor-other-account", Capability: adapterv1.Capability_CAPABILITY_TRANSACTIONS, Needs: needConsent + "; at least two accounts",
		Proves: "one account's cursor on another account answers CURSOR_INVALID."},
	{ID: "transactions/unknown-account", Capability: adapterv1.Capability_CAPABILITY_TRANSACTIONS, Needs: needConsent,
		Proves: "SyncTransactions of an account the consent does not cover answers NOT_FOUND."},
	{ID: "purchases/unknown-transaction", Capability: adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, Needs: needAccounts,
		Proves: "GetPurchaseDetails of an unknown transaction answers NOT_FOUND."},
	{ID: "purchases/card-transaction", Capability: adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, Needs: needAccounts + "; a card transaction with purchase details among the first 20",
		Proves: "purchase details total what the card was charged, add up (subtotal, shipping, tax, adjustments), and read the same twice."},
	{ID: "support/handoff", Capability: adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, Needs: needConsent + "; with `prompt_events`, an agent who joins at once",
		Proves: "StartSupportHandoff opens a case, idempotent on its key (no second case), IDEMPOTENCY_KEY_REUSED with another request; AgentJoined follows (prompt_events)."},
	{ID: "support/message", Capability: adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, Needs: "support/handoff passed",
		Proves: "SendSupportMessage is delivered once per client_message_id, refuses the id with another text, and answers NOT_FOUND on an unknown case."},
	{ID: "support/thread-control", Capability: adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, Needs: "support/handoff passed",
		Proves: "NotifyThreadControl REQUEST, PASS, TAKE, CLOSE each succeed and are idempotent on their key; an unknown case is NOT_FOUND; a message after CLOSE is FAILED_PRECONDITION if refused."},
	{ID: "cards/list", Capability: adapterv1.Capability_CAPABILITY_CARDS, Needs: needConsent,
		Proves: "ListCards answers valid, masked numbers only, each card once, on accounts ListAccounts showed."},
	{ID: "cards/unknown-card", Capability: adapterv1.Capability_CAPABILITY_CARDS, Needs: needConsent,
		Proves: "StartCardUnblock of an unknown card answers NOT_FOUND."},
	{ID: "cards/block-unblock", Capability: adapterv1.Capability_CAPABILITY_CARDS, Needs: needConsent + "; an active card; an OTP unblock challenge; `customer.good_code` (and `bad_code`)",
		Proves: "an active card cannot be unblocked; BlockCard blocks it, idempotently; the unblock challenge refuses a wrong code spending no attempt on a retry, and the good code makes the card ACTIVE again."},
	{ID: "fraud/report", Capability: adapterv1.Capability_CAPABILITY_FRAUD, Needs: needAccounts,
		Proves: "ReportFraud files one case per key, IDEMPOTENCY_KEY_REUSED with another request, no card block unless asked; FraudCaseUpdated RECEIVED follows (prompt_events)."},
	{ID: "fraud/answer-unknown-alert", Capability: adapterv1.Capability_CAPABILITY_FRAUD, Needs: needConsent,
		Proves: "AnswerFraudAlert of an unknown alert answers NOT_FOUND."},
	{ID: "fraud/answer-alert", Capability: adapterv1.Capability_CAPABILITY_FRAUD, Needs: needConsent + "; EVENTS; `trigger_fraud_alert`",
		Proves: "an alert raised under the kit's consent arrives on StreamEvents; answering it succeeds, the same answer again succeeds, another answer is FAILED_PRECONDITION."},
	{ID: "events/watched", Capability: adapterv1.Capability_CAPABILITY_EVENTS, Needs: "events/watch passed; events caused by the kit's calls",
		Proves: "every event the kit's calls caused is valid and masked, keeps its cursor when re-delivered, no agent acts on a closed case, the kit's fraud case never moves back, alerts name the consent's accounts and cards."},
	{ID: "events/malformed-cursor", Capability: adapterv1.Capability_CAPABILITY_EVENTS, Needs: "nothing",
		Proves: "StreamEvents with a cursor the adapter never issued answers CURSOR_INVALID."},
	{ID: "events/delivery", Capability: adapterv1.Capability_CAPABILITY_EVENTS, Needs: "`trigger_event`",
		Proves: "triggered events arrive on a stream opened from now on, valid, each with its own cursor."},
	{ID: "events/resume", Capability: adapterv1.Capability_CAPABILITY_EVENTS, Needs: "events/delivery passed",
		Proves: "a stream resumed after an event's cursor starts with the event that followed it."},
	{ID: "errors/bank-unavailable", Needs: "`unavailable_customer` (login_hint or bank_consent_id): a customer whose bank the test bank answers as down",
		Proves: "a failing bank answers UNAVAILABLE (BANK_UNAVAILABLE) with a RetryInfo retry delay on every data call the adapter declares, never success or another reason."},
	{ID: "extend/extend-consent", Capability: adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, Needs: "sca/link passed (the kit's own consent)",
		Proves: "ExtendConsent extends (or asks for an OTP SCA the good code completes), never past what was asked, and the consent keeps serving."},
	{ID: "extend/idempotent", Capability: adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, Needs: "extend/extend-consent passed",
		Proves: "ExtendConsent retried with the same key answers the same; the key with another request answers IDEMPOTENCY_KEY_REUSED."},
	{ID: "revoke/revoke-consent", Capability: adapterv1.Capability_CAPABILITY_SCA, Needs: "sca/link passed (the kit's own consent)",
		Proves: "RevokeConsent succeeds, twice; the consent then answers CONSENT_REVOKED or CONSENT_REVOKED_BY_BANK."},
}

// Checks returns the kit's checks, in the order they run.
func Checks() []CheckInfo { return append([]CheckInfo(nil), checks...) }

// WriteChecksMarkdown writes the table of checks that CHECKS.md holds.
func WriteChecksMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("<!-- Generated from the kit's registry (registry.go) by TestChecksDocIsCurrent; do not edit.\n" +
		"     Regenerate: go test ./conformance -run TestChecksDocIsCurrent -update -->\n\n")
	b.WriteString("# Conformance checks\n\n")
	b.WriteString("Every check the conformance kit runs, in the order it runs them. A check of a capability the\n" +
		"adapter does not declare is skipped; so is one whose fixture or test data is missing, and the\n" +
		"report says which. The ids are stable: the report, the JUnit XML and the subtests of `conformance.Run` use them.\n\n")
	b.WriteString("| id | capability | asks of the bank's test data | proves |\n| --- | --- | --- | --- |\n")
	for _, c := range checks {
		capability := "every adapter"
		if c.Capability != adapterv1.Capability_CAPABILITY_UNSPECIFIED {
			capability = capabilityName(c.Capability)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.ID, capability, c.Needs, c.Proves)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
