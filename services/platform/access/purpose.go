package access

import (
	"fmt"
	"slices"
	"strings"

	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Two purposes are refused by code, before any rule, consent or client
// setting is read: ADVERTISING and MARKETING.

// ResourceOf returns the request's `name` or `parent` field, if it has one.
func ResourceOf(req proto.Message) (string, bool) {
	m := req.ProtoReflect()
	for _, field := range []protoreflect.Name{"name", "parent"} {
		fd := m.Descriptor().Fields().ByName(field)
		if fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			return m.Get(fd).String(), true
		}
	}
	return "", false
}

// PurposeHeader is the gRPC metadata key every call to a public service
// declares its purpose in; the gateway fills it from the HTTP header
// Bankbridge-Purpose. It is the key bankbridge passes the purpose on to
// banks with, defined once in the adapter SDK.
const PurposeHeader = adapters.PurposeMetadata

// PurposeFromContext reads the declared purpose from the incoming metadata:
// a Purpose name without or with its PURPOSE_ prefix, in any case. A missing,
// repeated or unknown value is INVALID_ARGUMENT naming the header.
func PurposeFromContext(ctx context.Context) (commonv1.Purpose, error) {
	values := metadata.ValueFromIncomingContext(ctx, PurposeHeader)
	if len(values) != 1 || strings.TrimSpace(values[0]) == "" {
		return 0, purposeInvalid("missing", "declare why you call in metadata bankbridge-purpose (HTTP header Bankbridge-Purpose), e.g. ACCOUNT_INFORMATION")
	}
	name := strings.ToUpper(strings.TrimSpace(values[0]))
	v, ok := commonv1.Purpose_value["PURPOSE_"+strings.TrimPrefix(name, "PURPOSE_")]
	if !ok || v == 0 {
		return 0, purposeInvalid("unknown", "unknown purpose; use a bankbridge.common.v1.Purpose name such as ACCOUNT_INFORMATION")
	}
	return commonv1.Purpose(v), nil
}

func purposeInvalid(rule, desc string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+PurposeHeader+": "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: PurposeHeader, Description: desc, Reason: "purpose." + rule}))
}

// neverAllowed are the purposes bankbridge refuses whatever else is true.
var neverAllowed = []commonv1.Purpose{commonv1.Purpose_PURPOSE_ADVERTISING, commonv1.Purpose_PURPOSE_MARKETING}

// Clients maps a client id to the purposes it may declare.
type Clients map[string][]commonv1.Purpose

// CheckPurpose refuses ADVERTISING and MARKETING for everyone
// (PURPOSE_NOT_ALLOWED), then any purpose the client is not configured for
// (CLIENT_PURPOSE_NOT_ALLOWED).
func (c Clients) CheckPurpose(client string, p commonv1.Purpose) error {
	if slices.Contains(neverAllowed, p) {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED,
			"bankbridge never serves data for "+p.String(),
			apierr.WithMetadata("purpose", p.String()))
	}
	if !slices.Contains(c[client], p) {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED,
			"client "+client+" may not declare "+p.String(),
			apierr.WithMetadata("purpose", p.String()), apierr.WithMetadata("client_id", client))
	}
	return nil
}

// ParseClients reads "client-a=ACCOUNT_INFORMATION,CUSTOMER_SUPPORT;client-b=..."
// (purpose names with or without the PURPOSE_ prefix). ADVERTISING and
// MARKETING are refused here too, so a config cannot even name them.
func ParseClients(s string) (Clients, error) {
	c := Clients{}
	for entry := range strings.SplitSeq(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		client, list, ok := strings.Cut(entry, "=")
		client = strings.TrimSpace(client)
		if !ok || client == "" {
			return nil, fmt.Errorf("client purposes %q: want client=PURPOSE[,PURPOSE...]", entry)
		}
		for name := range strings.SplitSeq(list, ",") {
			name = strings.TrimSpace(name)
			v, ok := commonv1.Purpose_value["PURPOSE_"+strings.TrimPrefix(name, "PURPOSE_")]
			if !ok || v == 0 {
				return nil, fmt.Errorf("client %s: unknown purpose %q", client, name)
			}
			if slices.Contains(neverAllowed, commonv1.Purpose(v)) {
				return nil, fmt.Errorf("client %s: purpose %s can never be allowed", client, name)
			}
			c[client] = append(c[client], commonv1.Purpose(v))
		}
	}
	return c, nil
}
