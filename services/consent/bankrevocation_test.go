package main

// The consent service's side of a bank that no longer knows a consent
// (issue 8): ReportBankRevocation over gRPC, as a data service's kit calls
// it, and what users, watchers and consent checks see afterwards. Also
// RecordAccess's answers for what the log must not hold.

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestReportBankRevocation(t *testing.T) {
	e := startEnv(t)
	l := e.createLink(t, "alice", "sandbox")
	valid, err := e.verify(t, "alice", l.GetName(), sandbox.Code)
	if err != nil {
		t.Fatal(err)
	}

	stream := e.watch(t)

	resp, err := e.check.ReportBankRevocation(e.asService(t), &consentv1.ReportBankRevocationRequest{Link: valid.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	revoked := resp.GetLink()
	if revoked.GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED || !revoked.GetRevokedByBank() || revoked.GetRevokeTime() == nil {
		t.Fatalf("link %v: want REVOKED, revoked_by_bank, revoke_time set", revoked)
	}
	change, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if change.GetLink() != valid.GetName() || change.GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED {
		t.Errorf("change %v, want %s REVOKED", change, valid.GetName())
	}
	if d := e.checkConsent(t, "alice", "sandbox"); d.GetAllowed() || d.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK || d.GetLink() != valid.GetName() {
		t.Errorf("CheckConsent = %v, want denied CONSENT_REVOKED_BY_BANK naming %s", d, valid.GetName())
	}
	got, err := e.consent.GetLink(e.as(t, "alice"), &consentv1.GetLinkRequest{Name: valid.GetName()})
	if err != nil || !got.GetLink().GetRevokedByBank() {
		t.Errorf("alice reads %v, %v: want her link marked revoked by the bank", got.GetLink(), err)
	}

	again, err := e.check.ReportBankRevocation(e.asService(t), &consentv1.ReportBankRevocationRequest{Link: valid.GetName()})
	if err != nil || !again.GetLink().GetRevokeTime().AsTime().Equal(revoked.GetRevokeTime().AsTime()) {
		t.Errorf("a second report: %v, %v; want the link unchanged", again.GetLink(), err)
	}

	tests := []struct {
		name   string
		ctx    context.Context
		link   string
		reason commonv1.ErrorReason
	}{
		{"an unknown link", e.asService(t), "users/alice/links/nope", commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"not a link's name", e.asService(t), "users/alice", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"a user's own token", e.as(t, "alice"), valid.GetName(), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.check.ReportBankRevocation(tt.ctx, &consentv1.ReportBankRevocationRequest{Link: tt.link})
			testkit.RequireReason(t, err, tt.reason)
		})
	}
}

func TestRecordAccessRecordsTheSubjectAndRefusesOverlongResources(t *testing.T) {
	e := startEnv(t)
	entry := func(resource string) *consentv1.RecordAccessRequest {
		return &consentv1.RecordAccessRequest{User: "users/bob", Entry: &consentv1.AccessLogEntry{
			ClientId: chatApp, SubjectId: "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f",
			Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: resource,
			Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
			Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED, TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		}}
	}
	rec, err := e.check.RecordAccess(e.asService(t), entry("users/bob/accounts/a1/balance"))
	if err != nil {
		t.Fatal(err)
	}
	got := rec.GetEntry()
	if got.GetSubjectId() != "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f" || app.ChainHash(entryFromProto(got)) != got.GetHash() {
		t.Errorf("entry %v: want the subject recorded and covered by the hash", got)
	}
	blanked := entryFromProto(got)
	blanked.SubjectID = ""
	if app.ChainHash(blanked) == got.GetHash() {
		t.Error("the hash does not cover subject_id")
	}

	_, err = e.check.RecordAccess(e.asService(t), entry("users/bob/accounts/"+strings.Repeat("a", app.MaxResourceLen)))
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "entry.resource") {
		t.Errorf("refusal %q does not name entry.resource", msg)
	}
}
