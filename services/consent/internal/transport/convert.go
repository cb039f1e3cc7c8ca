// Package transport serves the consent service's gRPC API on top of app:
// ConsentService (public, for users through their products),
// ConsentCheckService (internal, for bankbridge's data services), and the
// audit hook that records the public calls in each user's access log. It
// translates between the contract's messages and app's types and nothing
// more; validation, authentication, user binding and purpose checks happen
// before it, in the platform server's interceptors.
package transport

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
)

// parseName reads the resource name in the named request field with parse
// (names.ParseUser, names.ParseLink). A name that does not parse, which
// validation should have refused already, is INVALID_ARGUMENT naming the
// field.
func parseName[T any](parse func(string) (T, error), field, name string) (T, error) {
	v, err := parse(name)
	if err != nil {
		return v, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": not a valid resource name",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: "not a valid resource name", Reason: "string.pattern"}))
	}
	return v, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// The enums of app and of the contract share their names.

func stateToProto(s app.State) consentv1.ConsentState {
	return consentv1.ConsentState(consentv1.ConsentState_value["CONSENT_STATE_"+s.String()])
}

func stateFromProto(s consentv1.ConsentState) app.State {
	return app.ParseState(strings.TrimPrefix(s.String(), "CONSENT_STATE_"))
}

func methodToProto(m app.ScaMethod) consentv1.ScaMethod {
	return consentv1.ScaMethod(consentv1.ScaMethod_value["SCA_METHOD_"+m.String()])
}

func methodFromProto(m consentv1.ScaMethod) app.ScaMethod {
	return app.ParseScaMethod(strings.TrimPrefix(m.String(), "SCA_METHOD_"))
}

func statusToProto(s app.ScaStatus) consentv1.ScaStatus {
	return consentv1.ScaStatus(consentv1.ScaStatus_value["SCA_STATUS_"+s.String()])
}

func optInStateToProto(s app.OptInState) consentv1.PartnerOptInState {
	return consentv1.PartnerOptInState(consentv1.PartnerOptInState_value["PARTNER_OPT_IN_STATE_"+s.String()])
}

func outcomeToProto(o app.Outcome) consentv1.AccessOutcome {
	return consentv1.AccessOutcome(consentv1.AccessOutcome_value[o.String()])
}

func outcomeFromProto(o consentv1.AccessOutcome) app.Outcome { return app.ParseOutcome(o.String()) }

// linkToProto renders a link for its user. The bank's consent id stays
// inside bankbridge.
func linkToProto(l app.Link) *consentv1.Link {
	return &consentv1.Link{
		Name:            l.Name(),
		BankId:          l.BankID,
		BankDisplayName: l.BankDisplayName,
		State:           stateToProto(l.State),
		Scopes:          l.Scopes,
		Purposes:        l.Purposes,
		Expiration:      &consentv1.Link_ExpireTime{ExpireTime: ts(l.ExpireTime)},
		CreateTime:      ts(l.CreateTime),
		VerifyTime:      ts(l.VerifyTime),
		RevokeTime:      ts(l.RevokeTime),
		RevokedByBank:   l.RevokedByBank,
		Sca: &consentv1.ScaChallenge{
			Name:              l.Name() + "/sca",
			Method:            methodToProto(l.SCA.Method),
			Status:            statusToProto(l.SCA.Status),
			AttemptsRemaining: int32(l.SCA.AttemptsRemaining),
			ExpireTime:        ts(l.SCA.ExpireTime),
			RedirectUri:       l.SCA.RedirectURI,
			Instruction:       l.SCA.Instruction,
		},
	}
}

func entryToProto(e app.AccessEntry) *consentv1.AccessLogEntry {
	return &consentv1.AccessLogEntry{
		Sequence:     e.Sequence,
		AccessTime:   ts(e.AccessTime),
		ClientId:     e.ClientID,
		SubjectId:    e.SubjectID,
		Method:       e.Method,
		Resource:     e.Resource,
		Purpose:      e.Purpose,
		Scope:        e.Scope,
		Outcome:      outcomeToProto(e.Outcome),
		Reason:       e.Reason,
		TraceId:      e.TraceID,
		Hash:         e.Hash,
		PreviousHash: e.PreviousHash,
	}
}

// optInToProto renders a partner opt-in for its user, partner_user_id
// included: the product hands it to the partner.
func optInToProto(o app.PartnerOptIn) *consentv1.PartnerOptIn {
	return &consentv1.PartnerOptIn{
		Name:          o.Name(),
		Partner:       o.Partner,
		Scopes:        o.Scopes,
		PartnerUserId: o.PartnerUserID,
		State:         optInStateToProto(o.State),
		CreateTime:    ts(o.CreateTime),
		RevokeTime:    ts(o.RevokeTime),
	}
}

// coveringLinkToProto renders a link for a bankbridge service that reads
// the user's banks under it: the bank's consent id included.
func coveringLinkToProto(l app.Link) *consentv1.CoveringLink {
	return &consentv1.CoveringLink{
		Link:          l.Name(),
		BankId:        l.BankID,
		BankConsentId: l.BankConsentID,
		ExpireTime:    ts(l.ExpireTime),
		Scopes:        l.Scopes,
		Client:        l.Client,
	}
}
