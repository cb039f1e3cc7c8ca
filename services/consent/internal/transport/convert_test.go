package transport

import (
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestEnumsMatchTheContract fails when the contract gains an enum value the
// service does not know, or the service one the contract lacks.
func TestEnumsMatchTheContract(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]int32
		prefix string
		check  func(name string) bool
	}{
		{"ConsentState", consentv1.ConsentState_value, "CONSENT_STATE_", func(n string) bool {
			s := app.ParseState(n)
			return stateToProto(s).String() == "CONSENT_STATE_"+n && stateFromProto(stateToProto(s)) == s
		}},
		{"ScaMethod", consentv1.ScaMethod_value, "SCA_METHOD_", func(n string) bool {
			m := app.ParseScaMethod(n)
			return methodToProto(m).String() == "SCA_METHOD_"+n && methodFromProto(methodToProto(m)) == m
		}},
		{"ScaStatus", consentv1.ScaStatus_value, "SCA_STATUS_", func(n string) bool {
			return statusToProto(app.ParseScaStatus(n)).String() == "SCA_STATUS_"+n
		}},
		{"PartnerOptInState", consentv1.PartnerOptInState_value, "PARTNER_OPT_IN_STATE_", func(n string) bool {
			return optInStateToProto(app.ParseOptInState(n)).String() == "PARTNER_OPT_IN_STATE_"+n
		}},
		{"AccessOutcome", consentv1.AccessOutcome_value, "", func(n string) bool {
			o := app.ParseOutcome(n)
			return outcomeToProto(o).String() == n && outcomeFromProto(outcomeToProto(o)) == o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for full := range tt.values {
				if !tt.check(strings.TrimPrefix(full, tt.prefix)) {
					t.Errorf("%s does not survive the trip through the service's enum", full)
				}
			}
		})
	}
}

func TestLinkToProtoKeepsTheBankConsentIDInside(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := app.Link{User: "alice", ID: "l1", BankID: "sandbox", State: app.StateValid, ExpireTime: now,
		CreateTime: now, VerifyTime: now, BankConsentID: "cns-secret-id",
		SCA: app.SCA{Method: app.ScaMethodOTP, Status: app.ScaStatusFinalised}}
	p := linkToProto(l)
	if p.GetName() != "users/alice/links/l1" || p.GetSca().GetName() != "users/alice/links/l1/sca" {
		t.Errorf("names %q, %q", p.GetName(), p.GetSca().GetName())
	}
	if p.GetRevokeTime() != nil || p.GetTtl() != nil || !p.GetExpireTime().AsTime().Equal(now) {
		t.Errorf("times: revoke %v, ttl %v, expire %v", p.GetRevokeTime(), p.GetTtl(), p.GetExpireTime())
	}
	if strings.Contains(p.String(), "cns-secret-id") {
		t.Error("the bank's consent id reached the client's message")
	}
}

func TestParseName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		user, id string
		ok       bool
	}{
		{"link", "users/alice/links/l1", "alice", "l1", true},
		{"no link id", "users/alice/links/", "", "", false},
		{"other collection", "users/alice/accounts/a1", "", "", false},
		{"too deep", "users/alice/links/l1/sca", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := parseName(names.ParseLink, "link", tt.in)
			if tt.ok {
				if err != nil || l.User != tt.user || l.ID != tt.id {
					t.Errorf("parseName(%q) = %+v, %v", tt.in, l, err)
				}
				return
			}
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			testkit.RequireFieldViolation(t, err, "link")
		})
	}
	if u, err := parseName(names.ParseUser, "parent", "users/bob"); err != nil || u != "bob" {
		t.Errorf("parseName(users/bob) = %q, %v", u, err)
	}
	_, err := parseName(names.ParseUser, "parent", "users/bob/links/x")
	testkit.RequireFieldViolation(t, err, "parent")
}
