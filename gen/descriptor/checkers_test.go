package descriptor_test

// These tests break the real contracts on purpose, one thing at a time, and
// expect the matching checker to name what broke: a contract test that
// cannot fail would prove nothing.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Descriptor field numbers used to address source locations.
const (
	fileServiceTag = 6 // FileDescriptorProto.service
	serviceRPCTag  = 2 // ServiceDescriptorProto.method
)

type rpcRef struct {
	file       *descriptorpb.FileDescriptorProto
	svc, rpc   int
	fullName   string
	public     bool
	client     bool // AUDIENCE_CLIENT: called with a client's own token
	partner    bool // AUDIENCE_PARTNER: called with a partner's own token, to write
	inputType  string
	outputType string
}

func (r rpcRef) method() *descriptorpb.MethodDescriptorProto {
	return r.file.GetService()[r.svc].GetMethod()[r.rpc]
}

func ownRPCs(fds *descriptorpb.FileDescriptorSet) []rpcRef {
	var out []rpcRef
	for _, f := range fds.GetFile() {
		if !strings.HasPrefix(f.GetPackage(), ownPrefix) {
			continue
		}
		for si, s := range f.GetService() {
			a := proto.GetExtension(s.GetOptions(), commonv1.E_Audience).(commonv1.Audience)
			for mi, m := range s.GetMethod() {
				out = append(out, rpcRef{
					file: f, svc: si, rpc: mi,
					fullName:   fmt.Sprintf("%s.%s.%s", f.GetPackage(), s.GetName(), m.GetName()),
					public:     a == commonv1.Audience_AUDIENCE_UNSPECIFIED || a == commonv1.Audience_AUDIENCE_PUBLIC,
					client:     a == commonv1.Audience_AUDIENCE_CLIENT,
					partner:    a == commonv1.Audience_AUDIENCE_PARTNER,
					inputType:  strings.TrimPrefix(m.GetInputType(), "."),
					outputType: strings.TrimPrefix(m.GetOutputType(), "."),
				})
			}
		}
	}
	return out
}

// findMessage returns the message proto with the given full name.
func findMessage(fds *descriptorpb.FileDescriptorSet, full string) *descriptorpb.DescriptorProto {
	var walk func(prefix string, msgs []*descriptorpb.DescriptorProto) *descriptorpb.DescriptorProto
	walk = func(prefix string, msgs []*descriptorpb.DescriptorProto) *descriptorpb.DescriptorProto {
		for _, m := range msgs {
			name := prefix + "." + m.GetName()
			if name == full {
				return m
			}
			if found := walk(name, m.GetNestedType()); found != nil {
				return found
			}
		}
		return nil
	}
	for _, f := range fds.GetFile() {
		if found := walk(f.GetPackage(), f.GetMessageType()); found != nil {
			return found
		}
	}
	return nil
}

func findField(fds *descriptorpb.FileDescriptorSet, full protoreflect.FullName) *descriptorpb.FieldDescriptorProto {
	msg := findMessage(fds, string(full.Parent()))
	for _, f := range msg.GetField() {
		if f.GetName() == string(full.Name()) {
			return f
		}
	}
	return nil
}

func mentions(problems []string, what string) bool {
	for _, p := range problems {
		if strings.Contains(p, what) {
			return true
		}
	}
	return false
}

func TestCheckersCatchAMissingRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ext   protoreflect.ExtensionType
		check func(*contracts) []string
		says  string
	}{
		{"HTTP rule", annotations.E_Http, checkHTTPRules, ": public RPC has no google.api.http rule"},
		{"access rule", commonv1.E_Access, checkAccessRules, ": public RPC declares no (bankbridge.common.v1.access) rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := realSet(t)
			n := 0
			for i, ref := range ownRPCs(base) {
				if !ref.public {
					continue
				}
				n++
				fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
				proto.ClearExtension(ownRPCs(fds)[i].method().GetOptions(), tt.ext)
				if got := tt.check(load(t, fds)); !mentions(got, ref.fullName+tt.says) {
					t.Errorf("deleting the %s of %s went unnoticed; problems: %q", tt.name, ref.fullName, got)
				}
			}
			if n == 0 {
				t.Fatal("no public RPC found")
			}
		})
	}
}

func TestCheckersCatchAnAdvertisingPurposeInAnAccessRule(t *testing.T) {
	t.Parallel()
	base := realSet(t)
	for i, ref := range ownRPCs(base) {
		if !ref.public {
			continue
		}
		fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
		opts := ownRPCs(fds)[i].method().GetOptions()
		rule := proto.GetExtension(opts, commonv1.E_Access).(*commonv1.AccessRule)
		rule.Purposes = append(rule.Purposes, commonv1.Purpose_PURPOSE_ADVERTISING)
		proto.SetExtension(opts, commonv1.E_Access, rule)
		if got := checkAccessRules(load(t, fds)); !mentions(got, ref.fullName+": access rule lists PURPOSE_ADVERTISING") {
			t.Errorf("an ADVERTISING purpose on %s went unnoticed; problems: %q", ref.fullName, got)
		}
		return
	}
}

func TestCheckersCatchAMissingValidationRule(t *testing.T) {
	t.Parallel()
	base := realSet(t)
	c := load(t, base)
	var guarded []protoreflect.FullName
	c.requestFields(func(fd protoreflect.FieldDescriptor) {
		if !outputOnly(fd) && unvalidatedOK[fd.FullName()] == "" && ruleProblem(fd, &validate.FieldRules{}, false) != "" {
			guarded = append(guarded, fd.FullName())
		}
	})
	if len(guarded) < 50 {
		t.Fatalf("only %d request fields need a rule; the walk is broken", len(guarded))
	}
	for _, name := range guarded {
		fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
		fp := findField(fds, name)
		if fp == nil {
			t.Fatalf("field %s not in the descriptor set", name)
		}
		proto.ClearExtension(fp.GetOptions(), validate.E_Field)
		if got := checkRequestValidation(load(t, fds)); !mentions(got, string(name)+":") {
			t.Errorf("deleting the validation rule of %s went unnoticed", name)
		}
	}
}

func TestCheckersCatchAnUnmaskedAccountNumber(t *testing.T) {
	t.Parallel()
	for _, field := range []string{"account_number", "iban", "card_number"} {
		fds := realSet(t)
		var out string
		for _, ref := range ownRPCs(fds) {
			out = ref.outputType
			break
		}
		msg := findMessage(fds, out)
		msg.Field = append(msg.Field, &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(field),
			Number:   proto.Int32(9999),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
			JsonName: proto.String(field),
		})
		if got := checkMaskedAccountNumbers(load(t, fds)); !mentions(got, out+"."+field+":") {
			t.Errorf("a response field %s.%s went unnoticed; problems: %q", out, field, got)
		}
	}
}

// rpcComment points at the leading comment of one RPC in its file's source info.
func rpcComment(ref rpcRef) *descriptorpb.SourceCodeInfo_Location {
	want := []int32{fileServiceTag, int32(ref.svc), serviceRPCTag, int32(ref.rpc)}
	for _, loc := range ref.file.GetSourceCodeInfo().GetLocation() {
		if fmt.Sprint(loc.GetPath()) == fmt.Sprint(want) {
			return loc
		}
	}
	return nil
}

func TestCheckersCatchBadComments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		comment func(old string) string
		check   func(*contracts) []string
		want    string
	}{
		{
			name:    "unknown reason",
			comment: func(old string) string { return old + "\nFails with NOT_FOUND (NO_SUCH_REASON) when lost.\n" },
			check:   checkReasonsInComments,
			want:    "cites reason NO_SUCH_REASON, which ErrorReason lacks",
		},
		{
			name:    "reason under the wrong code",
			comment: func(old string) string { return old + "\nFails with NOT_FOUND (CONSENT_REQUIRED) when lost.\n" },
			check:   checkReasonsInComments,
			want:    "cites NOT_FOUND (CONSENT_REQUIRED), but ErrorReason says CONSENT_REQUIRED carries PERMISSION_DENIED",
		},
		{
			name:    "no comment",
			comment: func(string) string { return "" },
			check:   checkDocComments,
			want:    "RPC has no doc comment",
		},
		{
			name:    "no failure code",
			comment: func(string) string { return " Does a thing.\n" },
			check:   checkDocComments,
			want:    "RPC comment names no failure code",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fds := realSet(t)
			ref := ownRPCs(fds)[0]
			loc := rpcComment(ref)
			if loc == nil {
				t.Fatalf("no source location for %s", ref.fullName)
			}
			loc.LeadingComments = proto.String(tt.comment(loc.GetLeadingComments()))
			if got := tt.check(load(t, fds)); !mentions(got, tt.want) {
				t.Errorf("problems %q do not mention %q", got, tt.want)
			}
		})
	}
}

func TestCheckersCatchAPurposeField(t *testing.T) {
	t.Parallel()
	fds := realSet(t)
	for _, ref := range ownRPCs(fds) {
		if !ref.public {
			continue
		}
		msg := findMessage(fds, ref.inputType)
		msg.Field = append(msg.Field, &descriptorpb.FieldDescriptorProto{
			Name:     proto.String("purpose"),
			Number:   proto.Int32(9998),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(),
			TypeName: proto.String(".bankbridge.common.v1.Purpose"),
			JsonName: proto.String("purpose"),
		})
		if got := checkNoPurposeField(load(t, fds)); !mentions(got, ref.inputType+".purpose:") {
			t.Errorf("a purpose request field went unnoticed; problems: %q", got)
		}
		return
	}
	t.Fatal("no public RPC found")
}

// clientRPCs returns the indexes (into ownRPCs) of the client RPCs.
func clientRPCs(t *testing.T, fds *descriptorpb.FileDescriptorSet) []int {
	t.Helper()
	var out []int
	for i, ref := range ownRPCs(fds) {
		if ref.client {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		t.Fatal("no AUDIENCE_CLIENT RPC found")
	}
	return out
}

// setHTTPPath points an RPC's REST rule at path, keeping its verb.
func setHTTPPath(rule *annotations.HttpRule, path string) {
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		p.Get = path
	case *annotations.HttpRule_Post:
		p.Post = path
	case *annotations.HttpRule_Delete:
		p.Delete = path
	case *annotations.HttpRule_Patch:
		p.Patch = path
	case *annotations.HttpRule_Put:
		p.Put = path
	}
}

// A client RPC lives under clients/{client}: moved under users/ (where the
// kit would bind it to a user nobody checked), it is refused; so is a
// client RPC without its REST rule, and one declaring an access rule.
func TestCheckersHoldClientRPCsToClients(t *testing.T) {
	t.Parallel()
	base := realSet(t)
	for _, i := range clientRPCs(t, base) {
		ref := ownRPCs(base)[i]
		t.Run(ref.fullName, func(t *testing.T) {
			t.Parallel()
			t.Run("under users", func(t *testing.T) {
				fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
				opts := ownRPCs(fds)[i].method().GetOptions()
				rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
				path := strings.Replace(httpPath(rule), "=clients/", "=users/", 1)
				setHTTPPath(rule, path)
				proto.SetExtension(opts, annotations.E_Http, rule)
				if got := checkHTTPRules(load(t, fds)); !mentions(got, ref.fullName+": REST path \""+path+"\" is not under /v1/{name|parent=clients/...}") {
					t.Errorf("a client RPC at %s went unnoticed; problems: %q", path, got)
				}
			})
			t.Run("no REST rule", func(t *testing.T) {
				fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
				proto.ClearExtension(ownRPCs(fds)[i].method().GetOptions(), annotations.E_Http)
				if got := checkHTTPRules(load(t, fds)); !mentions(got, ref.fullName+": client RPC has no google.api.http rule") {
					t.Errorf("a client RPC without REST went unnoticed; problems: %q", got)
				}
			})
			t.Run("access rule", func(t *testing.T) {
				fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
				proto.SetExtension(ownRPCs(fds)[i].method().GetOptions(), commonv1.E_Access, &commonv1.AccessRule{
					Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}, ConsentNotRequired: true,
				})
				if got := checkAccessRules(load(t, fds)); !mentions(got, ref.fullName+": AUDIENCE_CLIENT RPC must not declare an access rule") {
					t.Errorf("an access rule on a client RPC went unnoticed; problems: %q", got)
				}
			})
			t.Run("unbound name", func(t *testing.T) {
				fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
				msg := findMessage(fds, ref.inputType)
				for _, f := range msg.GetField() {
					if f.GetName() == "name" || f.GetName() == "parent" {
						rules := proto.GetExtension(f.GetOptions(), validate.E_Field).(*validate.FieldRules)
						rules.GetString().SetPattern(strings.Replace(rules.GetString().GetPattern(), "^clients/", "^users/", 1))
						proto.SetExtension(f.GetOptions(), validate.E_Field, rules)
					}
				}
				if got := checkClientBinding(load(t, fds)); !mentions(got, ref.fullName+": client RPC's") {
					t.Errorf("a client RPC whose name is not under clients/ went unnoticed; problems: %q", got)
				}
			})
		})
	}
}

// A public RPC moved under clients/ is refused too: only client services
// live there.
func TestCheckersKeepPublicRPCsUnderUsers(t *testing.T) {
	t.Parallel()
	base := realSet(t)
	for i, ref := range ownRPCs(base) {
		if !ref.public {
			continue
		}
		opts := ownRPCs(base)[i].method().GetOptions()
		rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
		path := strings.Replace(httpPath(rule), "=users/", "=clients/", 1)
		setHTTPPath(rule, path)
		proto.SetExtension(opts, annotations.E_Http, rule)
		if got := checkHTTPRules(load(t, base)); !mentions(got, ref.fullName+": REST path \""+path+"\" is not under /v1/{name|parent=users/...}") {
			t.Errorf("a public RPC at %s went unnoticed; problems: %q", path, got)
		}
		return
	}
}

// partnerRPCs returns the indexes (into ownRPCs) of the partner RPCs.
func partnerRPCs(t *testing.T, fds *descriptorpb.FileDescriptorSet) []int {
	t.Helper()
	var out []int
	for i, ref := range ownRPCs(fds) {
		if ref.partner {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		t.Fatal("no AUDIENCE_PARTNER RPC found")
	}
	return out
}

// editField changes a field of a message in place, if it has the field.
func editField(msg *descriptorpb.DescriptorProto, name string, edit func(f *descriptorpb.FieldDescriptorProto)) {
	for _, f := range msg.GetField() {
		if f.GetName() == name {
			edit(f)
		}
	}
}

// dropField deletes a field of a request message.
func dropField(msg *descriptorpb.DescriptorProto, name string) {
	msg.Field = slices.DeleteFunc(msg.Field, func(f *descriptorpb.FieldDescriptorProto) bool { return f.GetName() == name })
}

// A partner RPC writes under clients/{client}, bound to the partner's own
// token: each way of breaking that is refused, one at a time — moved under
// users/, without its REST rule, reading with GET, declaring an access
// rule, without a parent rooted at clients/, without an idempotency key,
// or with one that may be left empty.
func TestCheckersHoldPartnerRPCsToWritesUnderClients(t *testing.T) {
	t.Parallel()
	base := realSet(t)
	for _, i := range partnerRPCs(t, base) {
		ref := ownRPCs(base)[i]
		tests := []struct {
			name  string
			edit  func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string // returns what the check must say
			check func(*contracts) []string
		}{
			{"under users", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				opts := ref.method().GetOptions()
				rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
				path := strings.Replace(httpPath(rule), "=clients/", "=users/", 1)
				setHTTPPath(rule, path)
				proto.SetExtension(opts, annotations.E_Http, rule)
				return ": REST path \"" + path + "\" is not under /v1/{name|parent=clients/...}"
			}, checkHTTPRules},
			{"no REST rule", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				proto.ClearExtension(ref.method().GetOptions(), annotations.E_Http)
				return ": partner RPC has no google.api.http rule"
			}, checkHTTPRules},
			{"read with GET", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				opts := ref.method().GetOptions()
				rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
				rule.Pattern, rule.Body = &annotations.HttpRule_Get{Get: httpPath(rule)}, ""
				proto.SetExtension(opts, annotations.E_Http, rule)
				return ": partner RPC maps to REST with GET"
			}, checkHTTPRules},
			{"a GET binding besides the POST", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				opts := ref.method().GetOptions()
				rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
				rule.AdditionalBindings = append(rule.AdditionalBindings, &annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: httpPath(rule)}})
				proto.SetExtension(opts, annotations.E_Http, rule)
				return ": partner RPC maps to REST with GET"
			}, checkHTTPRules},
			{"access rule", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				proto.SetExtension(ref.method().GetOptions(), commonv1.E_Access, &commonv1.AccessRule{
					Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_RECEIPTS}, Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_PURCHASE_HISTORY},
				})
				return ": AUDIENCE_PARTNER RPC must not declare an access rule"
			}, checkAccessRules},
			{"parent not under clients", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				msg := findMessage(fds, ref.inputType)
				for _, name := range []string{"name", "parent"} {
					editField(msg, name, func(f *descriptorpb.FieldDescriptorProto) {
						rules := proto.GetExtension(f.GetOptions(), validate.E_Field).(*validate.FieldRules)
						rules.GetString().SetPattern(strings.Replace(rules.GetString().GetPattern(), "^clients/", "^users/", 1))
						proto.SetExtension(f.GetOptions(), validate.E_Field, rules)
					})
				}
				return ": partner RPC's"
			}, checkClientBinding},
			{"no parent", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				msg := findMessage(fds, ref.inputType)
				dropField(msg, "name")
				dropField(msg, "parent")
				return ": partner RPC has no name or parent field to bind to the token's client"
			}, checkClientBinding},
			{"no idempotency key", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				dropField(findMessage(fds, ref.inputType), "idempotency_key")
				return ": partner RPC has no string idempotency_key field"
			}, checkPartnerWrites},
			{"an idempotency key without a rule", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				editField(findMessage(fds, ref.inputType), "idempotency_key", func(f *descriptorpb.FieldDescriptorProto) {
					proto.ClearExtension(f.GetOptions(), validate.E_Field)
				})
				return ".idempotency_key needs a validation rule that refuses an empty key"
			}, checkPartnerWrites},
			{"an idempotency key that may be empty", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				editField(findMessage(fds, ref.inputType), "idempotency_key", func(f *descriptorpb.FieldDescriptorProto) {
					rules := proto.GetExtension(f.GetOptions(), validate.E_Field).(*validate.FieldRules)
					rules.SetIgnore(validate.Ignore_IGNORE_IF_ZERO_VALUE)
					proto.SetExtension(f.GetOptions(), validate.E_Field, rules)
				})
				return ".idempotency_key needs a validation rule that refuses an empty key"
			}, checkPartnerWrites},
			{"an idempotency key bounded only in length", func(fds *descriptorpb.FileDescriptorSet, ref rpcRef) string {
				editField(findMessage(fds, ref.inputType), "idempotency_key", func(f *descriptorpb.FieldDescriptorProto) {
					proto.SetExtension(f.GetOptions(), validate.E_Field, validate.FieldRules_builder{
						String: validate.StringRules_builder{MaxLen: proto.Uint64(128)}.Build(),
					}.Build())
				})
				return ".idempotency_key needs a validation rule that refuses an empty key"
			}, checkPartnerWrites},
		}
		t.Run(ref.fullName, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					fds := proto.Clone(base).(*descriptorpb.FileDescriptorSet)
					says := tt.edit(fds, ownRPCs(fds)[i])
					if got := tt.check(load(t, fds)); !mentions(got, ref.fullName+says) && !mentions(got, ref.inputType+says) {
						t.Errorf("%s on %s went unnoticed; problems: %q", tt.name, ref.fullName, got)
					}
				})
			}
		})
	}
}
