package descriptor_test

// The contract tests read the compiled descriptors (with comments) and hold
// every bankbridge contract to the rules in proto/README.md. Each checker
// returns the problems it finds; TestContracts wants none, and the
// TestCheckers... tests break the real contracts on purpose (drop an HTTP
// rule, drop a validation rule, add an unmasked account number, cite an
// unknown reason) to prove that each checker notices.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/gen/descriptor"
)

const ownPrefix = "bankbridge."

// contracts is the compiled view of one FileDescriptorSet.
type contracts struct {
	files []protoreflect.FileDescriptor // bankbridge.* files only
	// reasons maps an ErrorReason name without its prefix to its status code.
	reasons map[string]code.Code
}

func load(t *testing.T, fds *descriptorpb.FileDescriptorSet) *contracts {
	t.Helper()
	reg, err := protodesc.NewFiles(fds)
	if err != nil {
		t.Fatalf("build descriptors: %v", err)
	}
	c := &contracts{reasons: map[string]code.Code{}}
	reg.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(string(f.Package()), ownPrefix) {
			c.files = append(c.files, f)
		}
		return true
	})
	slices.SortFunc(c.files, func(a, b protoreflect.FileDescriptor) int { return strings.Compare(a.Path(), b.Path()) })
	d, err := reg.FindDescriptorByName("bankbridge.common.v1.ErrorReason")
	if err != nil {
		t.Fatalf("find ErrorReason: %v", err)
	}
	values := d.(protoreflect.EnumDescriptor).Values()
	for i := range values.Len() {
		v := values.Get(i)
		c.reasons[strings.TrimPrefix(string(v.Name()), "ERROR_REASON_")] =
			proto.GetExtension(v.Options(), commonv1.E_GrpcCode).(code.Code)
	}
	return c
}

func realSet(t *testing.T) *descriptorpb.FileDescriptorSet {
	t.Helper()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	return fds
}

func comment(d protoreflect.Descriptor) string {
	return strings.TrimSpace(d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments)
}

func audience(s protoreflect.ServiceDescriptor) commonv1.Audience {
	return proto.GetExtension(s.Options(), commonv1.E_Audience).(commonv1.Audience)
}

func isPublic(s protoreflect.ServiceDescriptor) bool {
	a := audience(s)
	return a == commonv1.Audience_AUDIENCE_UNSPECIFIED || a == commonv1.Audience_AUDIENCE_PUBLIC
}

// isClient reports a service a product team's client calls with its own
// client-credentials token, under clients/{client}.
func isClient(s protoreflect.ServiceDescriptor) bool {
	return audience(s) == commonv1.Audience_AUDIENCE_CLIENT
}

// isPartner reports a service partners (payment providers, merchants,
// carriers) call with their own client-credentials token, under
// clients/{client}, to push data: partners write, never read.
func isPartner(s protoreflect.ServiceDescriptor) bool {
	return audience(s) == commonv1.Audience_AUDIENCE_PARTNER
}

// underClients reports a service whose RPCs the server kit binds to the
// token's client, under clients/{client}, rather than to a user.
func underClients(s protoreflect.ServiceDescriptor) bool { return isClient(s) || isPartner(s) }

// kind names a service's callers in problems: "public", "client", ...
func kind(s protoreflect.ServiceDescriptor) string {
	switch {
	case isPublic(s):
		return "public"
	case isClient(s):
		return "client"
	case isPartner(s):
		return "partner"
	}
	return audience(s).String()
}

// onREST reports a service that product teams or partners reach over REST
// too.
func onREST(s protoreflect.ServiceDescriptor) bool { return isPublic(s) || underClients(s) }

func (c *contracts) services() []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	for _, f := range c.files {
		for i := range f.Services().Len() {
			out = append(out, f.Services().Get(i))
		}
	}
	return out
}

func methods(s protoreflect.ServiceDescriptor) []protoreflect.MethodDescriptor {
	out := make([]protoreflect.MethodDescriptor, s.Methods().Len())
	for i := range out {
		out[i] = s.Methods().Get(i)
	}
	return out
}

// grpcCodes are the canonical status code names an RPC comment may cite.
var grpcCodes = func() map[string]code.Code {
	m := map[string]code.Code{}
	for n, v := range code.Code_value {
		if n != "OK" {
			m[n] = code.Code(v)
		}
	}
	return m
}()

// checkHTTPRules: every RPC of a public service maps to REST under
// /v1/{name|parent=users/...}, every RPC of a client or partner service
// under /v1/{name|parent=clients/...}, and every RPC of a partner service
// with POST only (partners write, never read); no other service maps to
// REST.
func checkHTTPRules(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		for _, m := range methods(s) {
			rule := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			hasRule := rule != nil && rule.GetPattern() != nil
			switch {
			case onREST(s) && !hasRule:
				problems = append(problems, fmt.Sprintf("%s: %s RPC has no google.api.http rule", m.FullName(), kind(s)))
			case !onREST(s) && hasRule:
				problems = append(problems, fmt.Sprintf("%s: %s RPC must not map to REST", m.FullName(), audience(s)))
			case hasRule:
				root := "users"
				if underClients(s) {
					root = "clients"
				}
				for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					if p := httpPath(b); !strings.HasPrefix(p, "/v1/{name="+root+"/") && !strings.HasPrefix(p, "/v1/{parent="+root+"/") {
						problems = append(problems, fmt.Sprintf("%s: REST path %q is not under /v1/{name|parent=%s/...}", m.FullName(), p, root))
					}
					if _, post := b.GetPattern().(*annotations.HttpRule_Post); isPartner(s) && !post {
						problems = append(problems, fmt.Sprintf("%s: partner RPC maps to REST with %s %q; partners only write, with POST", m.FullName(), httpVerb(b), httpPath(b)))
					}
				}
			}
		}
	}
	return problems
}

// httpVerb is the HTTP method of a binding.
func httpVerb(r *annotations.HttpRule) string {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET"
	case *annotations.HttpRule_Post:
		return "POST"
	case *annotations.HttpRule_Put:
		return "PUT"
	case *annotations.HttpRule_Patch:
		return "PATCH"
	case *annotations.HttpRule_Delete:
		return "DELETE"
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind()
	}
	return ""
}

func httpPath(r *annotations.HttpRule) string {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return p.Get
	case *annotations.HttpRule_Post:
		return p.Post
	case *annotations.HttpRule_Put:
		return p.Put
	case *annotations.HttpRule_Patch:
		return p.Patch
	case *annotations.HttpRule_Delete:
		return p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetPath()
	}
	return ""
}

// checkDocComments: every service and RPC has a doc comment, and every RPC's
// comment names at least one status code it fails with.
func checkDocComments(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		if comment(s) == "" {
			problems = append(problems, fmt.Sprintf("%s: service has no doc comment", s.FullName()))
		}
		for _, m := range methods(s) {
			text := comment(m)
			if text == "" {
				problems = append(problems, fmt.Sprintf("%s: RPC has no doc comment", m.FullName()))
				continue
			}
			named := false
			for _, w := range upperWord.FindAllString(text, -1) {
				if _, ok := grpcCodes[w]; ok {
					named = true
					break
				}
			}
			if !named {
				problems = append(problems, fmt.Sprintf("%s: RPC comment names no failure code (e.g. \"Fails with NOT_FOUND when ...\")", m.FullName()))
			}
		}
	}
	return problems
}

// upperWord matches a code or reason name, e.g. PERMISSION_DENIED.
var upperWord = regexp.MustCompile(`[A-Z][A-Z0-9_]+`)

// citedReason matches "CODE (REASON)" and "CODE (REASON_A, REASON_B)".
var citedReason = regexp.MustCompile(`\b([A-Z][A-Z_]+)\s*\(\s*([A-Z][A-Z0-9_]+(?:\s*(?:,|/|or)\s*[A-Z][A-Z0-9_]+)*)\s*\)`)

// reasonWord matches "reason REASON" and "reason `REASON`".
var reasonWord = regexp.MustCompile("\\breasons?\\s+`?([A-Z][A-Z0-9_]{2,})`?")

// checkReasonsInComments: every reason a comment cites exists in
// ErrorReason, and, cited next to a status code, carries that code.
func checkReasonsInComments(c *contracts) []string {
	var problems []string
	for _, f := range c.files {
		locs := f.SourceLocations()
		for i := range locs.Len() {
			loc := locs.Get(i)
			text := strings.Join(append([]string{loc.LeadingComments, loc.TrailingComments}, loc.LeadingDetachedComments...), "\n")
			where := fmt.Sprintf("%s (line %d)", f.Path(), loc.StartLine+1)
			for _, m := range citedReason.FindAllStringSubmatch(text, -1) {
				want, isCode := grpcCodes[m[1]]
				if !isCode {
					continue
				}
				for _, r := range upperWord.FindAllString(m[2], -1) {
					got, ok := c.reasons[r]
					switch {
					case !ok:
						problems = append(problems, fmt.Sprintf("%s: cites reason %s, which ErrorReason lacks", where, r))
					case got != want:
						problems = append(problems, fmt.Sprintf("%s: cites %s (%s), but ErrorReason says %s carries %s", where, m[1], r, r, got))
					}
				}
			}
			for _, m := range reasonWord.FindAllStringSubmatch(text, -1) {
				if _, ok := c.reasons[m[1]]; !ok {
					problems = append(problems, fmt.Sprintf("%s: cites reason %s, which ErrorReason lacks", where, m[1]))
				}
			}
		}
	}
	return problems
}

// checkErrorReasons: every reason but UNSPECIFIED names its status code.
func checkErrorReasons(c *contracts) []string {
	var problems []string
	for name, cd := range c.reasons {
		if name != "UNSPECIFIED" && cd == code.Code_OK {
			problems = append(problems, fmt.Sprintf("ErrorReason %s has no (grpc_code)", name))
		}
	}
	slices.Sort(problems)
	return problems
}

// unvalidatedOK lists request fields that need no rule, and why.
var unvalidatedOK = map[protoreflect.FullName]string{
	"bankbridge.common.v1.Money.units": "any whole amount is valid; the sign is checked with nanos by money.sign_consistent",
}

// skippedMessages are well-known types whose own shape is their validation.
var skippedMessages = map[protoreflect.FullName]bool{
	"google.protobuf.Timestamp": true,
	"google.protobuf.Duration":  true,
	"google.protobuf.FieldMask": true,
}

func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

// ruleProblem says what rule the field (or, with items, each list item)
// obviously needs and lacks, or "" when it has one.
func ruleProblem(fd protoreflect.FieldDescriptor, r *validate.FieldRules, items bool) string {
	if !items && fd.IsList() {
		if r.GetRepeated() == nil || !r.GetRepeated().HasMaxItems() {
			return "a list needs repeated.max_items"
		}
		return ruleProblem(fd, r.GetRepeated().GetItems(), true)
	}
	if !items && fd.IsMap() {
		if r.GetMap() == nil || !r.GetMap().HasMaxPairs() {
			return "a map needs map.max_pairs"
		}
		return ""
	}
	hasCEL := len(r.GetCel()) > 0 || len(r.GetCelExpression()) > 0
	switch fd.Kind() {
	case protoreflect.StringKind:
		if r.GetString() == nil && !hasCEL {
			return "a string needs a bound (pattern, max_len, in, or a well-known format)"
		}
	case protoreflect.BytesKind:
		if r.GetBytes() == nil && !hasCEL {
			return "bytes need a bound (max_len)"
		}
	case protoreflect.EnumKind:
		if !r.GetEnum().GetDefinedOnly() {
			return "an enum needs enum.defined_only"
		}
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Uint32Kind, protoreflect.Uint64Kind,
		protoreflect.Sint32Kind, protoreflect.Sint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind,
		protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind, protoreflect.FloatKind, protoreflect.DoubleKind:
		if r.GetType() == nil && !hasCEL {
			return "a number needs a range"
		}
	}
	return ""
}

// requestFields walks every field reachable from RPC inputs (our own message
// types recursively), calling visit once per field.
func (c *contracts) requestFields(visit func(fd protoreflect.FieldDescriptor)) {
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] || skippedMessages[md.FullName()] || !strings.HasPrefix(string(md.FullName()), ownPrefix) {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			visit(fd)
			if fd.Message() != nil && !fd.IsMap() {
				walk(fd.Message())
			}
		}
	}
	for _, s := range c.services() {
		for _, m := range methods(s) {
			walk(m.Input())
		}
	}
}

// outputOnly reports a field the server sets and ignores on input.
func outputOnly(fd protoreflect.FieldDescriptor) bool {
	return strings.HasPrefix(comment(fd), "Output only")
}

// checkRequestValidation: every request field where a rule obviously
// applies (ids, names, texts, lists, enums, numbers) has one.
func checkRequestValidation(c *contracts) []string {
	var problems []string
	c.requestFields(func(fd protoreflect.FieldDescriptor) {
		if outputOnly(fd) || unvalidatedOK[fd.FullName()] != "" {
			return
		}
		r := fieldRules(fd)
		if r.GetIgnore() == validate.Ignore_IGNORE_ALWAYS {
			problems = append(problems, fmt.Sprintf("%s: validation is switched off (IGNORE_ALWAYS)", fd.FullName()))
			return
		}
		if p := ruleProblem(fd, r, false); p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", fd.FullName(), p))
		}
	})
	return problems
}

// checkNoPurposeField: purpose travels in the bankbridge-purpose metadata
// of every call, not in requests, so no public request declares it twice.
func checkNoPurposeField(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		if !isPublic(s) {
			continue
		}
		for _, m := range methods(s) {
			if fd := m.Input().Fields().ByName("purpose"); fd != nil {
				problems = append(problems, fmt.Sprintf("%s: purpose is declared in metadata bankbridge-purpose, not as a request field", fd.FullName()))
			}
		}
	}
	return problems
}

// fullNumber matches field names that would hold a full account or card number.
var fullNumber = regexp.MustCompile(`(^|_)(account_number|account_no|iban|bban|pan|card_number|primary_account_number|routing_number|sort_code)$`)

// checkMaskedAccountNumbers: no message an RPC returns (or streams), at any
// depth, has a field that would hold a full account or card number.
func checkMaskedAccountNumbers(c *contracts) []string {
	var problems []string
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] || !strings.HasPrefix(string(md.FullName()), ownPrefix) {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Message() != nil {
				if fd.Message().FullName() != "bankbridge.common.v1.MaskedAccountNumber" {
					walk(fd.Message())
				}
				continue
			}
			if fullNumber.MatchString(string(fd.Name())) {
				problems = append(problems, fmt.Sprintf("%s: a response field that holds a full account number; use bankbridge.common.v1.MaskedAccountNumber", fd.FullName()))
			}
		}
	}
	for _, s := range c.services() {
		for _, m := range methods(s) {
			walk(m.Output())
		}
	}
	return problems
}

// checkAccessRules: every public RPC declares its access rule (scopes and
// purposes, or consent_not_required), the server kit's only source for the
// consent check; no other RPC declares one.
func checkAccessRules(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		for _, m := range methods(s) {
			has := proto.HasExtension(m.Options(), commonv1.E_Access)
			rule, _ := proto.GetExtension(m.Options(), commonv1.E_Access).(*commonv1.AccessRule)
			if !isPublic(s) {
				// Internal, adapter, client and partner RPCs read no
				// user's data: the kit binds them to a client, not to a
				// consent.
				if has {
					problems = append(problems, fmt.Sprintf("%s: %s RPC must not declare an access rule", m.FullName(), audience(s)))
				}
				continue
			}
			if !has {
				problems = append(problems, fmt.Sprintf("%s: public RPC declares no (bankbridge.common.v1.access) rule", m.FullName()))
				continue
			}
			if len(rule.GetPurposes()) == 0 {
				problems = append(problems, fmt.Sprintf("%s: access rule lists no purpose", m.FullName()))
			}
			for _, p := range rule.GetPurposes() {
				if p == commonv1.Purpose_PURPOSE_ADVERTISING || p == commonv1.Purpose_PURPOSE_MARKETING || p == commonv1.Purpose_PURPOSE_UNSPECIFIED {
					problems = append(problems, fmt.Sprintf("%s: access rule lists %s, which is never allowed", m.FullName(), p))
				}
			}
			if (len(rule.GetScopes()) == 0) != rule.GetConsentNotRequired() {
				problems = append(problems, fmt.Sprintf("%s: access rule must list scopes, or set consent_not_required, not both", m.FullName()))
			}
			if f := rule.GetBankField(); f != "" && !isStringPath(m.Input(), f) {
				problems = append(problems, fmt.Sprintf("%s: access rule bank_field %q is not a string field of %s", m.FullName(), f, m.Input().FullName()))
			}
		}
	}
	return problems
}

// isStringPath tells whether path ("bank_id", "conversation.bank_id") names
// a singular string field of md, through singular message fields.
func isStringPath(md protoreflect.MessageDescriptor, path string) bool {
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

// clientNamePrefix starts the pattern of a name or parent field under
// clients/{client}.
const clientNamePrefix = "^clients/"

// checkClientBinding: every RPC of a client or partner service names its
// client in a name or parent field whose pattern is rooted at clients/,
// which is what the server kit binds to the token's client. Without one a
// client could reach another client's resources, or a partner push data as
// another partner.
func checkClientBinding(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		if !underClients(s) {
			continue
		}
		for _, m := range methods(s) {
			var fd protoreflect.FieldDescriptor
			for _, name := range []protoreflect.Name{"name", "parent"} {
				if f := m.Input().Fields().ByName(name); f != nil && f.Kind() == protoreflect.StringKind && !f.IsList() {
					fd = f
					break
				}
			}
			if fd == nil {
				problems = append(problems, fmt.Sprintf("%s: %s RPC has no name or parent field to bind to the token's client", m.FullName(), kind(s)))
				continue
			}
			if !strings.HasPrefix(fieldRules(fd).GetString().GetPattern(), clientNamePrefix) {
				problems = append(problems, fmt.Sprintf("%s: %s RPC's %s must have a pattern rooted at %s", m.FullName(), kind(s), fd.FullName(), clientNamePrefix))
			}
		}
	}
	return problems
}

// checkPartnerWrites: partners write, never read, and a partner's push
// must be safe to retry, so every RPC of a partner service takes a string
// idempotency_key (over REST the Idempotency-Key header fills it) whose
// validation rule refuses an empty key.
func checkPartnerWrites(c *contracts) []string {
	var problems []string
	for _, s := range c.services() {
		if !isPartner(s) {
			continue
		}
		for _, m := range methods(s) {
			fd := m.Input().Fields().ByName("idempotency_key")
			if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
				problems = append(problems, fmt.Sprintf("%s: partner RPC has no string idempotency_key field; partners only write, and a write takes an idempotency key", m.FullName()))
				continue
			}
			if !refusesEmpty(fieldRules(fd)) {
				problems = append(problems, fmt.Sprintf("%s: partner RPC's %s needs a validation rule that refuses an empty key (a pattern, min_len or required)", m.FullName(), fd.FullName()))
			}
		}
	}
	return problems
}

// refusesEmpty reports a string field rule that an empty value breaks.
func refusesEmpty(r *validate.FieldRules) bool {
	if r.GetIgnore() == validate.Ignore_IGNORE_IF_ZERO_VALUE || r.GetIgnore() == validate.Ignore_IGNORE_ALWAYS {
		return false
	}
	if r.GetRequired() {
		return true
	}
	sr := r.GetString()
	if sr.GetMinLen() > 0 || sr.GetMinBytes() > 0 || (sr.HasLen() && sr.GetLen() > 0) {
		return true
	}
	if sr.HasPattern() {
		re, err := regexp.Compile(sr.GetPattern())
		return err == nil && !re.MatchString("")
	}
	return false
}

var checkers = map[string]func(*contracts) []string{
	"client binding":         checkClientBinding,
	"partner writes":         checkPartnerWrites,
	"access rules":           checkAccessRules,
	"http rules":             checkHTTPRules,
	"doc comments":           checkDocComments,
	"reasons in comments":    checkReasonsInComments,
	"error reasons":          checkErrorReasons,
	"request validation":     checkRequestValidation,
	"no purpose field":       checkNoPurposeField,
	"masked account numbers": checkMaskedAccountNumbers,
}

func TestContracts(t *testing.T) {
	t.Parallel()
	c := load(t, realSet(t))
	if len(c.files) < 7 {
		t.Fatalf("found %d bankbridge files, want every area (common, consent, balance, receipts, shipping, support, adapter)", len(c.files))
	}
	for name, check := range checkers {
		t.Run(name, func(t *testing.T) {
			for _, p := range check(c) {
				t.Error(p)
			}
		})
	}
}
