package limits

import (
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Class is a kind of method, each with limits of its own. A method's class
// comes from its contract, never from a list kept by hand (ClassOf).
type Class string

// The classes.
const (
	// ClassRead: a unary method mapped to REST with GET.
	ClassRead Class = "read"
	// ClassWrite: a unary method mapped to REST with any other verb.
	ClassWrite Class = "write"
	// ClassStream: a streaming method; each open counts once, however long
	// the stream lives.
	ClassStream Class = "stream"
	// ClassPartner: every method of an AUDIENCE_PARTNER service (partners
	// push data, with POST).
	ClassPartner Class = "partner"
)

// Scope is whose calls a limit counts.
type Scope string

// The scopes. A public call counts against its user's limit and its
// client's; a client or partner call (no user) against its client's.
const (
	ScopeUser   Scope = "user"
	ScopeClient Scope = "client"
)

// ClassOf derives a method's class from its contract: partner for a method
// of an AUDIENCE_PARTNER service; otherwise, for a public or client method
// (AUDIENCE_PUBLIC, AUDIENCE_CLIENT), stream when it streams, read when its
// google.api.http rule is a GET, write for any other verb. It returns false
// for methods no limit applies to: internal ones (bankbridge's own services
// calling each other) and the adapter protocol, and a public or client
// unary method without an HTTP rule, which the contract tests forbid and
// the server kit refuses to serve.
func ClassOf(md protoreflect.MethodDescriptor) (Class, bool) {
	sd, ok := md.Parent().(protoreflect.ServiceDescriptor)
	if !ok {
		return "", false
	}
	switch proto.GetExtension(sd.Options(), commonv1.E_Audience).(commonv1.Audience) {
	case commonv1.Audience_AUDIENCE_PARTNER:
		return ClassPartner, true
	case commonv1.Audience_AUDIENCE_UNSPECIFIED, commonv1.Audience_AUDIENCE_PUBLIC, commonv1.Audience_AUDIENCE_CLIENT:
	default:
		return "", false
	}
	if md.IsStreamingServer() || md.IsStreamingClient() {
		return ClassStream, true
	}
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	switch rule.GetPattern().(type) {
	case nil:
		return "", false
	case *annotations.HttpRule_Get:
		return ClassRead, true
	}
	return ClassWrite, true
}
