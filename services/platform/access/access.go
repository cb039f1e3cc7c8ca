// Package access is what the server kit knows about each public call before
// a handler runs: the rule its contract declares (the consent scopes it
// reads, the purposes a caller may declare, which request field names the
// bank), and the grant the kit hands the handler once the call passed
// authentication, validation, the purpose check and the consent check.
//
// A grant is a value, made once and never changed: a handler reads it with
// GrantFrom; nothing writes to it after the kit made it.
package access

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
)

// Rule is a public method's (bankbridge.common.v1.access) option.
type Rule struct {
	// Scopes the user's consent must cover; empty when ConsentNotRequired.
	Scopes []commonv1.Scope
	// Purposes a caller may declare for the method.
	Purposes []commonv1.Purpose
	// ConsentNotRequired: the method reads no consented data.
	ConsentNotRequired bool
	// BankField is the path of the request field naming the bank ("" for
	// any bank): a field ("name") or a field of a message field
	// ("conversation.bank_id").
	BankField string
}

// BankValue reads the request field BankField names: "" when the rule names
// no field or a message on the path is unset.
func (r Rule) BankValue(req protoreflect.Message) string {
	if r.BankField == "" {
		return ""
	}
	m := req
	parts := strings.Split(r.BankField, ".")
	for i, p := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return ""
		}
		if i == len(parts)-1 {
			return m.Get(fd).String()
		}
		if !m.Has(fd) {
			return ""
		}
		m = m.Get(fd).Message()
	}
	return ""
}

// NamesBankID tells whether BankField is a bank id (its last part is
// "bank_id") rather than a resource name whose id carries the bank.
func (r Rule) NamesBankID() bool {
	return r.BankField == "bank_id" || strings.HasSuffix(r.BankField, ".bank_id")
}

// Method is what the kit knows of one registered method.
type Method struct {
	Audience commonv1.Audience
	// Rule is set for public methods only.
	Rule Rule
}

// Methods maps full method names (/pkg.Service/Method) to what the
// contract declares for them.
type Methods map[string]Method

// Load reads the audience and access rule of every method of the named
// services from the compiled descriptors. It fails when a service is not
// in the registry, a public method declares no access rule (there is no
// default scope, and a method nobody declared is never served), or a
// client or partner method (AUDIENCE_CLIENT, AUDIENCE_PARTNER) has no name
// or parent to bind it to its client. Client and partner methods have no
// rule: they read no user's data.
func Load(services []string) (Methods, error) {
	out := Methods{}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("access rules: service %s: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("access rules: %s is not a service", name)
		}
		aud := proto.GetExtension(sd.Options(), commonv1.E_Audience).(commonv1.Audience)
		if aud == commonv1.Audience_AUDIENCE_UNSPECIFIED {
			aud = commonv1.Audience_AUDIENCE_PUBLIC
		}
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + name + "/" + string(md.Name())
			m := Method{Audience: aud}
			switch aud {
			case commonv1.Audience_AUDIENCE_PUBLIC:
				r, err := ruleOf(md)
				if err != nil {
					return nil, err
				}
				m.Rule = r
			case commonv1.Audience_AUDIENCE_CLIENT, commonv1.Audience_AUDIENCE_PARTNER:
				// The kit binds a client or partner method to the token's
				// client through its name or parent; one without either
				// could reach any client's resources.
				if !hasResourceField(md.Input()) {
					return nil, fmt.Errorf("access rules: %s method %s has no name or parent field to bind to the token's client; refusing to serve it", strings.ToLower(strings.TrimPrefix(aud.String(), "AUDIENCE_")), md.FullName())
				}
			}
			out[full] = m
		}
	}
	return out, nil
}

// hasResourceField reports whether a request has the string name or
// parent field ResourceOf reads.
func hasResourceField(md protoreflect.MessageDescriptor) bool {
	for _, field := range []protoreflect.Name{"name", "parent"} {
		if fd := md.Fields().ByName(field); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			return true
		}
	}
	return false
}

func ruleOf(md protoreflect.MethodDescriptor) (Rule, error) {
	if !proto.HasExtension(md.Options(), commonv1.E_Access) {
		return Rule{}, fmt.Errorf("access rules: public method %s declares no (bankbridge.common.v1.access) option; refusing to serve it", md.FullName())
	}
	pr := proto.GetExtension(md.Options(), commonv1.E_Access).(*commonv1.AccessRule)
	r := Rule{
		Scopes:             slices.Clone(pr.GetScopes()),
		Purposes:           slices.Clone(pr.GetPurposes()),
		ConsentNotRequired: pr.GetConsentNotRequired(),
		BankField:          pr.GetBankField(),
	}
	switch {
	case len(r.Purposes) == 0:
		return Rule{}, fmt.Errorf("access rules: %s lists no purpose", md.FullName())
	case (len(r.Scopes) == 0) != r.ConsentNotRequired:
		return Rule{}, fmt.Errorf("access rules: %s must list scopes or set consent_not_required", md.FullName())
	}
	if r.BankField != "" && !stringPath(md.Input(), r.BankField) {
		return Rule{}, fmt.Errorf("access rules: %s: bank_field %q is not a string field of %s", md.FullName(), r.BankField, md.Input().FullName())
	}
	return r, nil
}

// stringPath tells whether path names a singular string field of md,
// through singular message fields.
func stringPath(md protoreflect.MessageDescriptor, path string) bool {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := md.Fields().ByName(protoreflect.Name(p))
		if fd == nil || fd.IsList() || fd.IsMap() {
			return false
		}
		if i == len(parts)-1 {
			return fd.Kind() == protoreflect.StringKind
		}
		if fd.Kind() != protoreflect.MessageKind {
			return false
		}
		md = fd.Message()
	}
	return false
}

// Grant is the kit's decision on one allowed public call.
type Grant struct {
	// Method is the full gRPC method.
	Method string
	// Principal is the authenticated caller.
	Principal auth.Principal
	// User is the user the request names, the token's subject.
	User string
	// Resource is the request's validated name or parent.
	Resource string
	// Purpose is the purpose the call declared.
	Purpose commonv1.Purpose
	// Scopes are the scopes the method's rule declares.
	Scopes []commonv1.Scope
	// BankID is the bank whose consent allowed the call; "" when the call
	// names no bank (e.g. listing accounts across banks) or needs no consent.
	BankID string
	// Link is the consent link that allowed the call, users/{user}/links/{link}.
	Link string
	// BankConsentID is the bank-side consent id of that link.
	BankConsentID string
}

type grantKey struct{}

// WithGrant returns ctx carrying g. Only the server kit (and tests of
// handlers) call it.
func WithGrant(ctx context.Context, g Grant) context.Context {
	g.Scopes = slices.Clone(g.Scopes)
	return context.WithValue(ctx, grantKey{}, g)
}

// LookupGrant returns the call's grant, if the kit made one.
func LookupGrant(ctx context.Context) (Grant, bool) {
	g, ok := ctx.Value(grantKey{}).(Grant)
	if ok {
		g.Scopes = slices.Clone(g.Scopes)
	}
	return g, ok
}

// GrantFrom returns the call's grant. It panics when there is none: a
// handler of a public method always runs behind the kit, so a missing grant
// is a wiring bug, and the kit's recovery turns the panic into INTERNAL
// with an incident id rather than serving data unchecked.
func GrantFrom(ctx context.Context) Grant {
	g, ok := LookupGrant(ctx)
	if !ok {
		panic("access: no grant in context: the handler runs outside the server kit's access check")
	}
	return g
}
