package server_test

// The rate-limit contract test: every RPC whose contract promises
// RESOURCE_EXHAUSTED (RATE_LIMITED) for its caller ("... when the caller
// sends too many calls", "... when the client or user calls too often"),
// in its own comment or its service's, is one the kit limits; and every
// public, client and partner RPC has a class, without which the kit would
// not serve it. It reads the compiled contracts with their comments
// (gen/descriptor), and breaks them on purpose to prove it notices.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/gen/descriptor"
	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// callerRateLimit matches a promise of RATE_LIMITED for the caller's own
// calls; a bank's rate limit ("when the bank's rate limit is reached", the
// adapter protocol) is not one.
var callerRateLimit = regexp.MustCompile(`RESOURCE_EXHAUSTED \(RATE_LIMITED\) when [^.;]*?\b(caller|client|user)\b`)

// contractMethods are the RPCs of every bankbridge contract in fds.
func contractMethods(t *testing.T, fds *descriptorpb.FileDescriptorSet) []protoreflect.MethodDescriptor {
	t.Helper()
	files, err := protodesc.NewFiles(fds)
	if err != nil {
		t.Fatal(err)
	}
	var out []protoreflect.MethodDescriptor
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "bankbridge.") {
			return true
		}
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				out = append(out, s.Methods().Get(j))
			}
		}
		return true
	})
	slices.SortFunc(out, func(a, b protoreflect.MethodDescriptor) int {
		return strings.Compare(string(a.FullName()), string(b.FullName()))
	})
	return out
}

func leadingComment(d protoreflect.Descriptor) string {
	return d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments
}

// rateLimitProblems lists the RPCs whose contract promises a limit the kit
// would not apply, and the public, client and partner RPCs without a class.
func rateLimitProblems(methods []protoreflect.MethodDescriptor) []string {
	var problems []string
	for _, m := range methods {
		s := m.Parent().(protoreflect.ServiceDescriptor)
		_, limited := limits.ClassOf(m)
		aud := proto.GetExtension(s.Options(), commonv1.E_Audience).(commonv1.Audience)
		switch {
		case limited:
		case callerRateLimit.MatchString(leadingComment(m)) || callerRateLimit.MatchString(leadingComment(s)):
			problems = append(problems, fmt.Sprintf("%s: its contract promises RESOURCE_EXHAUSTED (RATE_LIMITED) for its caller, but no rate limit applies to a %s RPC without a class", m.FullName(), aud))
		case aud == commonv1.Audience_AUDIENCE_UNSPECIFIED || aud == commonv1.Audience_AUDIENCE_PUBLIC ||
			aud == commonv1.Audience_AUDIENCE_CLIENT || aud == commonv1.Audience_AUDIENCE_PARTNER:
			problems = append(problems, fmt.Sprintf("%s: %s RPC has no rate-limit class (a unary RPC needs a google.api.http rule); the server kit would not serve it", m.FullName(), aud))
		}
	}
	return problems
}

func TestEveryPromisedRateLimitIsEnforced(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	methods := contractMethods(t, fds)
	for _, p := range rateLimitProblems(methods) {
		t.Error(p)
	}
	// The test reads what it means to: some RPCs promise the limit, in
	// their own comment or their service's.
	promised := 0
	for _, m := range methods {
		if callerRateLimit.MatchString(leadingComment(m)) || callerRateLimit.MatchString(leadingComment(m.Parent())) {
			promised++
		}
	}
	if promised < 10 {
		t.Errorf("only %d RPCs promise RATE_LIMITED for their caller; is the pattern still the contracts' wording?", promised)
	}
}

func TestClassesComeFromTheContract(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]string{}
	for _, m := range contractMethods(t, fds) {
		c, ok := limits.ClassOf(m)
		if !ok {
			c = "none"
		}
		classes[string(m.FullName())] = string(c)
	}
	tests := []struct{ method, class string }{
		{"bankbridge.balance.v1.BalanceService.GetBalance", "read"},
		{"bankbridge.consent.v1.ConsentService.CreateLink", "write"},
		{"bankbridge.receipts.v1.ReceiptsService.DeleteReceipt", "write"},
		{"bankbridge.receipts.v1.ReceiptsService.WatchReceipts", "stream"},
		{"bankbridge.support.v1.SupportService.StreamConversation", "stream"},
		{"bankbridge.receipts.v1.PartnerReceiptsService.IngestReceipt", "partner"},
		{"bankbridge.shipping.v1.PartnerShippingService.RegisterShipment", "partner"},
		{"bankbridge.webhooks.v1.WebhooksService.GetEndpoint", "read"},
		{"bankbridge.webhooks.v1.WebhooksService.CreateEndpoint", "write"},
		{"bankbridge.consent.v1.ConsentCheckService.CheckConsent", "none"},
		{"bankbridge.consent.v1.ConsentCheckService.WatchConsentChanges", "none"},
	}
	for _, tt := range tests {
		if got := classes[tt.method]; got != tt.class {
			t.Errorf("%s: class %q, want %q", tt.method, got, tt.class)
		}
	}
}

// editMethod finds a method of fds by its service and name.
func editMethod(t *testing.T, fds *descriptorpb.FileDescriptorSet, service, method string) (*descriptorpb.FileDescriptorProto, []int32, *descriptorpb.MethodDescriptorProto) {
	t.Helper()
	for _, f := range fds.GetFile() {
		for si, s := range f.GetService() {
			if f.GetPackage()+"."+s.GetName() != service {
				continue
			}
			for mi, m := range s.GetMethod() {
				if m.GetName() == method {
					return f, []int32{6, int32(si), 2, int32(mi)}, m // FileDescriptorProto.service, ServiceDescriptorProto.method
				}
			}
		}
	}
	t.Fatalf("no %s.%s", service, method)
	return nil, nil, nil
}

func TestTheRateLimitContractTestNotices(t *testing.T) {
	t.Parallel()
	t.Run("an internal RPC promising the caller's limit", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		f, path, _ := editMethod(t, fds, "bankbridge.consent.v1.ConsentCheckService", "CheckConsent")
		for _, loc := range f.GetSourceCodeInfo().GetLocation() {
			if slices.Equal(loc.GetPath(), path) {
				loc.LeadingComments = proto.String(loc.GetLeadingComments() + " Fails with RESOURCE_EXHAUSTED (RATE_LIMITED) when the caller sends too many calls.\n")
			}
		}
		problems := rateLimitProblems(contractMethods(t, fds))
		if !mentions(problems, "ConsentCheckService.CheckConsent: its contract promises") {
			t.Errorf("problems = %q", problems)
		}
	})
	t.Run("a public RPC promising it without an HTTP rule", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		_, _, m := editMethod(t, fds, "bankbridge.balance.v1.BalanceService", "GetBalance")
		proto.ClearExtension(m.GetOptions(), annotations.E_Http)
		problems := rateLimitProblems(contractMethods(t, fds))
		if !mentions(problems, "BalanceService.GetBalance: its contract promises") {
			t.Errorf("problems = %q", problems)
		}
	})
	t.Run("a public RPC without an HTTP rule that promises nothing", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		_, _, m := editMethod(t, fds, "bankbridge.receipts.v1.ReceiptsService", "GetReceipt")
		proto.ClearExtension(m.GetOptions(), annotations.E_Http)
		problems := rateLimitProblems(contractMethods(t, fds))
		if !mentions(problems, "ReceiptsService.GetReceipt: AUDIENCE_UNSPECIFIED RPC has no rate-limit class") {
			t.Errorf("problems = %q", problems)
		}
	})
}

func mentions(problems []string, what string) bool {
	return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, what) })
}
