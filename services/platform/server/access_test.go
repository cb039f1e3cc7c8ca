package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var aliceBalance = &balancev1.GetBalanceRequest{Name: "users/alice/accounts/sandbox~a1/balance"}

func TestPurposes(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	tests := []struct {
		name    string
		purpose string
		reason  commonv1.ErrorReason // UNSPECIFIED: served
	}{
		{"advertising is never allowed", "ADVERTISING", commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"marketing is never allowed", "PURPOSE_MARKETING", commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"a purpose the client is not configured for", "CUSTOMER_SUPPORT", commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED},
		{"no purpose", "", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"an unknown purpose", "CURIOSITY", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"an allowed purpose", "ACCOUNT_INFORMATION", commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.balance.GetBalance(e.asFor(t, "alice", tt.purpose), aliceBalance)
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			testkit.RequireReason(t, err, tt.reason)
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT {
				if v := testkit.FieldViolations(err); len(v) != 1 || v[0].GetField() != "bankbridge-purpose" {
					t.Errorf("field violations = %v, want one on bankbridge-purpose", v)
				}
			}
		})
	}
	// The consent checker only ever saw the allowed purpose: refusals come first.
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(e.hooks.checked) != 1 || e.hooks.checked[0].purpose != commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION {
		t.Errorf("consent checker saw %v, want one ACCOUNT_INFORMATION check", e.hooks.checked)
	}
}

func TestPurposeOnStreams(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ADVERTISING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED)
}

func TestAPurposeTheContractDoesNotListIsRefused(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	// chat-app may declare ORDER_TRACKING, but GetBalance's access rule
	// lists ACCOUNT_INFORMATION only.
	_, err := e.balance.GetBalance(e.asFor(t, "alice", "ORDER_TRACKING"), aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED)
}

func TestTheGrantCarriesTheDecisionToTheHandler(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	resp, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~a1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetAccount().GetDisplayName(), "sandbox|users/alice/links/l1|bc-1"; got != want {
		t.Errorf("handler saw grant %q, want %q", got, want)
	}
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	want := checked{user: "alice", need: access.Need{Scope: commonv1.Scope_SCOPE_ACCOUNTS, BankID: "sandbox"}, purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}
	if len(e.hooks.checked) != 1 || e.hooks.checked[0] != want {
		t.Errorf("consent checked %+v, want %+v (scope from the contract, bank from the name)", e.hooks.checked, want)
	}
}

func TestTheBankComesFromTheFieldTheContractNames(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	tests := []struct {
		name   string
		call   func() error
		reason commonv1.ErrorReason
	}{
		{"an account at an unknown bank does not exist", func() error {
			_, err := e.balance.GetAccount(ctx, getAccount("users/alice/accounts/otherbank~a1"))
			return err
		}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"an account id without a bank does not exist", func() error {
			_, err := e.balance.GetAccount(ctx, getAccount("users/alice/accounts/a1"))
			return err
		}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"a bank_id that is not configured", func() error {
			_, err := e.balance.ListAccounts(ctx, &balancev1.ListAccountsRequest{Parent: "users/alice", BankId: "otherbank"})
			return err
		}, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.RequireReason(t, tt.call(), tt.reason)
		})
	}
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(e.hooks.checked) != 0 {
		t.Errorf("consent was asked %v; an unknown bank is refused before", e.hooks.checked)
	}
}

func TestEveryDecidedAccessIsRecordedAndNoOther(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	ctx := e.as(t, "alice")
	e.hooks.set(func(r *recorder) {
		r.refuse = apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent for this bank")
	})
	_, err := e.balance.GetBalance(ctx, aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
	e.hooks.set(func(r *recorder) { r.refuse = nil })
	if _, err := e.balance.GetBalance(ctx, aliceBalance); err != nil {
		t.Fatal(err)
	}
	// Neither another user's token, nor no token, nor an invalid request
	// reaches alice's log: only the caller who is alice can write there.
	_, err = e.balance.GetBalance(e.as(t, "bob"), aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	_, err = e.balance.GetBalance(withPurpose(context.Background(), "ACCOUNT_INFORMATION"), aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID)
	_, err = e.balance.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: "users/alice/accounts/sandbox~a1/balance/" + strings.Repeat("x", 300)})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)

	entries := e.hooks.recorded()
	if len(entries) != 2 {
		t.Fatalf("recorded %d calls (%+v), want 2 (refused, allowed)", len(entries), entries)
	}
	subject := entries[0].SubjectID
	for i, want := range []commonv1.ErrorReason{commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED} {
		got := entries[i]
		if got.Reason != want || got.Allowed != (want == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED) {
			t.Errorf("entry %d: reason %v allowed %v, want %v", i, got.Reason, got.Allowed, want)
		}
		if got.User != "alice" || got.ClientID != testClient || got.Method != "/bankbridge.balance.v1.BalanceService/GetBalance" ||
			got.Resource != aliceBalance.GetName() || got.Scope != commonv1.Scope_SCOPE_BALANCES {
			t.Errorf("entry %d: %+v", i, got)
		}
		if len(got.SubjectID) != 32 || got.SubjectID != subject || strings.Contains(got.SubjectID, "alice") {
			t.Errorf("entry %d: subject id %q, want the same 32-hex pseudonym, never the subject", i, got.SubjectID)
		}
	}
	// The refusals that never reached a user's log are in the security log.
	for _, reason := range []string{"USER_MISMATCH", "TOKEN_INVALID"} {
		if !strings.Contains(e.logs.String(), `"bankbridge.log_type":"security","rpc.method":"/bankbridge.balance.v1.BalanceService/GetBalance","bankbridge.reason":"`+reason+`"`) {
			t.Errorf("no security log line for %s in:\n%s", reason, e.logs.String())
		}
	}
}

func TestNoDataLeavesWhenTheAccessCannotBeRecorded(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	e.hooks.set(func(r *recorder) { r.recordErr = errors.New("consent service frozen") })
	resp, err := e.balance.GetBalance(e.as(t, "alice"), aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	if resp != nil {
		t.Errorf("served %v although the access was not recorded", resp)
	}
	if strings.Contains(err.Error(), "frozen") {
		t.Errorf("reply %q leaks the cause", err)
	}
	if testkit.RetryInfo(err) == nil {
		t.Error("no RetryInfo on AUDIT_UNAVAILABLE")
	}

	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	if msg != nil {
		t.Errorf("stream sent %v although the access was not recorded", msg)
	}
}

func TestAStreamEndedByConsentIsRecorded(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice", ResumeCursor: "revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
	entries := e.hooks.recorded()
	if len(entries) != 2 || !entries[0].Allowed || entries[1].Allowed || entries[1].Reason != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED ||
		entries[1].Method != "/bankbridge.shipping.v1.ShippingService/WatchShipments" {
		t.Errorf("recorded %+v, want the opening allowed, then the end denied with CONSENT_REVOKED", entries)
	}
}

func TestABankRevocationIsReportedForTheGrantedLink(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	_, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~gone"))
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(e.hooks.reported) != 1 || e.hooks.reported[0] != "users/alice/links/l1" {
		t.Errorf("reported %v, want the link that allowed the call", e.hooks.reported)
	}
}

func TestTheSecurityRefusalsAreCounted(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	_, err := e.balance.GetBalance(withPurpose(context.Background(), "ACCOUNT_INFORMATION"), aliceBalance)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID)
	resp, err := http.Get("http://" + e.srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !regexp.MustCompile(`bankbridge_security_refusals_total\{[^}]*bankbridge_reason="TOKEN_INVALID"[^}]*\} 1`).Match(body) {
		t.Errorf("no refusal counted in /metrics:\n%s", body)
	}
}

// init registers norule/v1/norule.proto, a contract with a method and no
// access rule, before any test runs: registering it while a parallel test
// builds a validator (which ranges over the registry, and looks files up
// inside that range) deadlocks the registry's lock.
func init() {
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("norule/v1/norule.proto"),
		Package: proto.String("norule.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  proto.String("PingRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("name"), Number: proto.Int32(1), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), JsonName: proto.String("name")}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:   proto.String("NoRuleService"),
			Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Ping"), InputType: proto.String(".norule.v1.PingRequest"), OutputType: proto.String(".norule.v1.PingRequest")}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		panic(err)
	}
}

// A public method whose contract declares no access rule is never served:
// the server does not start.
func TestAPublicMethodWithoutAnAccessRuleStopsTheStart(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{}) // for its telemetry and verifier
	cfg := server.Defaults("norule", "127.0.0.1:0", "")
	cfg.DevMode = true
	_, err := server.New(cfg, server.Deps{Telemetry: e.tel, Verifier: e.verifier, Recorder: e.hooks}, func(r grpc.ServiceRegistrar) {
		r.RegisterService(&grpc.ServiceDesc{ServiceName: "norule.v1.NoRuleService", HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "Ping", Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
				return nil, nil
			}}}}, struct{}{})
	})
	if err == nil || !strings.Contains(err.Error(), "norule.v1.NoRuleService.Ping declares no (bankbridge.common.v1.access) option") {
		t.Fatalf("New = %v, want a refusal naming the method without an access rule", err)
	}
}
