package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/prototext"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// pseudonymKey keys the refs of log lines in every consent test's Vault.
const pseudonymKey = "7f1c0e5a9b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5"

// oncall is the operator tool's client id in these tests.
const oncall = "oncall-tool"

// TestOperatorLookupByTrace runs the look-up by trace id through the real
// consent service and its interceptor chain: only the operator's own
// client-credentials token is let in, the answer names users and links by
// the refs log lines carry and never by id or resource name, the failures
// its contract lists are what a caller gets, and each affected user's
// access log then shows the operator's look-up.
func TestOperatorLookupByTrace(t *testing.T) {
	e := startEnv(t, "--operator-clients="+oncall)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, r := range []struct{ user, resource string }{
		{"bob", "users/bob/links/l1"},
		{"alice", "users/alice/accounts/sandbox~DE89370400440532013000/balance"},
	} {
		_, err := e.check.RecordAccess(e.asService(t), &consentv1.RecordAccessRequest{User: "users/" + r.user, Entry: &consentv1.AccessLogEntry{
			ClientId: chatApp, Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: r.resource,
			Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
			Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED, TraceId: trace,
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	operator := consentv1.NewConsentOperatorServiceClient(conn)
	mint := func(sub, client string) context.Context {
		tok, err := e.issuer.Mint(sub, client, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	}
	asOperator := mint(oncall, oncall)

	resp, err := operator.LookupAccessByTrace(asOperator, &consentv1.LookupAccessByTraceRequest{TraceId: trace})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := pseudonym.New(pseudonym.ParseKey(pseudonymKey))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetEntries(); len(got) != 2 ||
		got[0].GetUserRef() != refs.User("bob") || got[0].GetLinkRef() != refs.Link("users/bob/links/l1") || got[0].GetResourceKind() != "link" ||
		got[1].GetUserRef() != refs.User("alice") || got[1].GetLinkRef() != "" || got[1].GetResourceKind() != "balance" ||
		got[1].GetMethod() != "/bankbridge.balance.v1.BalanceService/GetBalance" || got[1].GetPurpose() != commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION {
		t.Errorf("entries = %v, want bob's (%s, %s, link) then alice's (%s, balance)", got, refs.User("bob"), refs.Link("users/bob/links/l1"), refs.User("alice"))
	}
	wire := prototext.Format(resp)
	for _, secret := range []string{"bob", "alice", "users/", "DE89370400440532013000", "l1\""} {
		if strings.Contains(wire, secret) {
			t.Errorf("the answer holds %q:\n%s", secret, wire)
		}
	}

	log, err := e.consent.ListAccessLog(e.as(t, "bob"), &consentv1.ListAccessLogRequest{Parent: "users/bob", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := log.GetEntries(); len(got) != 1 || got[0].GetClientId() != oncall ||
		got[0].GetMethod() != consentv1.ConsentOperatorService_LookupAccessByTrace_FullMethodName ||
		got[0].GetResource() != "traces/"+trace || got[0].GetPurpose() != commonv1.Purpose_PURPOSE_INCIDENT_RESPONSE {
		t.Errorf("bob's newest entry = %v, want the operator's look-up of traces/%s", got, trace)
	}

	tests := []struct {
		name   string
		ctx    context.Context
		trace  string
		reason commonv1.ErrorReason
		field  string
	}{
		{"a user's token", e.as(t, "bob"), trace, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a product client's own token", mint(chatApp, chatApp), trace, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a partner's token", mint(demoPartner, demoPartner), trace, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a bankbridge service's token", e.asService(t), trace, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"a user's token through the operator client", mint("bob", oncall), trace, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"upper-case trace id", asOperator, strings.ToUpper(trace), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "trace_id"},
		{"all-zero trace id", asOperator, strings.Repeat("0", 32), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "trace_id"},
		{"unknown trace", asOperator, "0af7651916cd43dd8448eb211c80319c", commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := operator.LookupAccessByTrace(tt.ctx, &consentv1.LookupAccessByTraceRequest{TraceId: tt.trace})
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
		})
	}

	// An operator's token reads nothing else: not even a user's log.
	_, err = e.consent.ListAccessLog(metadata.AppendToOutgoingContext(asOperator, "bankbridge-purpose", "CONSENT_MANAGEMENT"),
		&consentv1.ListAccessLogRequest{Parent: "users/" + oncall})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
}
