package server_test

// The consent-unavailable contract test: every public RPC the kit asks the
// consent checker about (its access rule lists scopes), and every partner
// RPC (which resolves its partner-scoped user id through consent before
// anything else), promises UNAVAILABLE (CONSENT_UNAVAILABLE) in its comment
// or its service's, and no other RPC does in its own, since those are the
// paths that answer it (proven through a real server in consentcheck's
// unavailable_test.go, and for the partner RPCs in the receipts and
// shipping transport tests). It breaks the contracts on purpose to prove
// it notices.

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/gen/descriptor"
)

var consentUnavailable = regexp.MustCompile(`UNAVAILABLE \(CONSENT_UNAVAILABLE\)`)

// consentGated reports whether the kit asks the consent checker before it
// serves m: a public RPC whose access rule lists scopes.
func consentGated(m protoreflect.MethodDescriptor) bool {
	s := m.Parent().(protoreflect.ServiceDescriptor)
	aud := proto.GetExtension(s.Options(), commonv1.E_Audience).(commonv1.Audience)
	if aud != commonv1.Audience_AUDIENCE_UNSPECIFIED && aud != commonv1.Audience_AUDIENCE_PUBLIC {
		return false
	}
	rule, _ := proto.GetExtension(m.Options(), commonv1.E_Access).(*commonv1.AccessRule)
	return len(rule.GetScopes()) > 0 && !rule.GetConsentNotRequired()
}

// resolvesPartner reports whether m is a partner's RPC: partners address
// users only by partner-scoped ids, which the handler resolves through the
// consent service (consentcheck's ResolvePartner) before anything else.
func resolvesPartner(m protoreflect.MethodDescriptor) bool {
	s := m.Parent().(protoreflect.ServiceDescriptor)
	return proto.GetExtension(s.Options(), commonv1.E_Audience).(commonv1.Audience) == commonv1.Audience_AUDIENCE_PARTNER
}

func consentUnavailableProblems(methods []protoreflect.MethodDescriptor) []string {
	var problems []string
	for _, m := range methods {
		promised := consentUnavailable.MatchString(leadingComment(m))
		// A service may say it once for all its RPCs, as support does.
		forAll := consentUnavailable.MatchString(leadingComment(m.Parent()))
		switch gated := consentGated(m) || resolvesPartner(m); {
		case gated && !promised && !forAll:
			problems = append(problems, fmt.Sprintf("%s: the kit answers UNAVAILABLE (CONSENT_UNAVAILABLE) when the consent service cannot be reached, but its comment does not say so", m.FullName()))
		case !gated && promised:
			problems = append(problems, fmt.Sprintf("%s: its comment promises UNAVAILABLE (CONSENT_UNAVAILABLE), but the kit never asks the consent service for it", m.FullName()))
		}
	}
	return problems
}

func TestEveryConsentGatedRPCPromisesConsentUnavailable(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	methods := contractMethods(t, fds)
	for _, p := range consentUnavailableProblems(methods) {
		t.Error(p)
	}
	gated := slices.IndexFunc(methods, consentGated)
	if gated < 0 {
		t.Error("no RPC is consent-gated; is the access rule still read the kit's way?")
	}
}

func TestTheConsentUnavailableContractTestNotices(t *testing.T) {
	t.Parallel()
	t.Run("a gated RPC that does not promise it", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		f, path, _ := editMethod(t, fds, "bankbridge.balance.v1.BalanceService", "GetBalance")
		for _, loc := range f.GetSourceCodeInfo().GetLocation() {
			if slices.Equal(loc.GetPath(), path) {
				loc.LeadingComments = proto.String(consentUnavailable.ReplaceAllString(loc.GetLeadingComments(), "UNAVAILABLE (BANK_UNAVAILABLE)"))
			}
		}
		if problems := consentUnavailableProblems(contractMethods(t, fds)); !mentions(problems, "BalanceService.GetBalance: the kit answers") {
			t.Errorf("problems = %q", problems)
		}
	})
	t.Run("an ungated RPC that promises it", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		f, path, _ := editMethod(t, fds, "bankbridge.consent.v1.ConsentCheckService", "CheckConsent")
		for _, loc := range f.GetSourceCodeInfo().GetLocation() {
			if slices.Equal(loc.GetPath(), path) {
				loc.LeadingComments = proto.String(loc.GetLeadingComments() + " Fails with UNAVAILABLE (CONSENT_UNAVAILABLE) when the consent service cannot be reached.\n")
			}
		}
		if problems := consentUnavailableProblems(contractMethods(t, fds)); !mentions(problems, "ConsentCheckService.CheckConsent: its comment promises") {
			t.Errorf("problems = %q", problems)
		}
	})
}
