package transport

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// rightCode is the code the test bank takes; any other is wrong.
const rightCode = "123456"

// testBank is a bank that starts OTP challenges, takes rightCode and
// extends consents without a new SCA.
type testBank struct{ n atomic.Int64 }

func (b *testBank) Bank(id string) (app.BankInfo, error) {
	return app.BankInfo{ID: id, DisplayName: "Acme Bank"}, nil
}

func (b *testBank) StartSca(_ context.Context, _ string, r app.StartScaRequest) (app.Challenge, error) {
	return app.Challenge{BankConsentID: fmt.Sprintf("cns-%d", b.n.Add(1)), Method: app.ScaMethodOTP,
		Instruction: "Enter the code", ExpireTime: time.Now().Add(5 * time.Minute)}, nil
}

func (b *testBank) VerifySca(_ context.Context, _ string, r app.VerifyScaRequest) (app.VerifyScaResult, error) {
	if r.Code != rightCode {
		return app.VerifyScaResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "wrong code")
	}
	return app.VerifyScaResult{Status: app.ScaStatusFinalised, BankConsentID: r.BankConsentID, ValidUntil: time.Now().Add(30 * 24 * time.Hour)}, nil
}

func (b *testBank) RevokeConsent(context.Context, string, string) error { return nil }

func (b *testBank) ExtendConsent(_ context.Context, _ string, r app.ExtendConsentRequest) (app.Extension, error) {
	return app.Extension{ValidUntil: r.ValidUntil}, nil
}

// notFingerprinted are the request fields a change of which may, and must,
// leave an idempotency key's fingerprint as it is, each with why. Every
// other field, of these requests and of the messages they hold, must
// change it: a field added later fails the test until it is fingerprinted
// or named here.
var notFingerprinted = map[string]string{
	"CreateLinkRequest.idempotency_key":    "the key itself",
	"VerifyLinkRequest.idempotency_key":    "the key itself",
	"RevokeLinkRequest.idempotency_key":    "the key itself",
	"ReconfirmLinkRequest.idempotency_key": "the key itself",
	// Keys are per user: another user's request is under another key.
	"CreateLinkRequest.parent": "the user, the key's scope",
	// Output only: CreateLink reads none of them.
	"CreateLinkRequest.link.name":              "output only",
	"CreateLinkRequest.link.bank_display_name": "output only",
	"CreateLinkRequest.link.state":             "output only",
	"CreateLinkRequest.link.create_time":       "output only",
	"CreateLinkRequest.link.verify_time":       "output only",
	"CreateLinkRequest.link.revoke_time":       "output only",
	"CreateLinkRequest.link.sca":               "output only",
	"CreateLinkRequest.link.revoked_by_bank":   "output only",
}

// TestIdempotencyFingerprintCoversEveryRequestField changes each field of
// each request that takes an idempotency key, one at a time, found by
// reflection over the contract, and sends the changed request with the key
// of the first: every change must be refused as another request
// (IDEMPOTENCY_KEY_REUSED) rather than answered with the first answer.
func TestIdempotencyFingerprintCoversEveryRequestField(t *testing.T) {
	t.Parallel()
	db := storagetest.OpenSQLite(t)
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), db, events.NewOutbox(db), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(st, &testBank{}, app.Config{PendingLinkLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	s := NewConsentServer(a)
	ctx := access.WithGrant(t.Context(), access.Grant{Principal: auth.Principal{Client: "chat-app"}})

	var n atomic.Int64
	newKey := func() string { return fmt.Sprintf("key-%08d", n.Add(1)) }
	createReq := func(user string) *consentv1.CreateLinkRequest {
		return &consentv1.CreateLinkRequest{
			Parent: "users/" + user,
			Link: &consentv1.Link{
				BankId:        "acme",
				Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
				Purposes:      []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
				BankLoginHint: user,
			},
			IdempotencyKey: newKey(),
		}
	}
	link := func(t *testing.T, user string, valid bool) string {
		t.Helper()
		resp, err := s.CreateLink(ctx, createReq(user))
		if err != nil {
			t.Fatal(err)
		}
		name := resp.GetLink().GetName()
		if valid {
			if _, err := s.VerifyLink(ctx, &consentv1.VerifyLinkRequest{Name: name, Code: rightCode, IdempotencyKey: newKey()}); err != nil {
				t.Fatal(err)
			}
		}
		return name
	}

	type call func(proto.Message) error
	rpcs := []struct {
		desc protoreflect.MessageDescriptor
		// base returns a fresh request for a fresh user, with a key of
		// its own.
		base func(t *testing.T, user string) proto.Message
		call call
	}{
		{
			desc: (&consentv1.CreateLinkRequest{}).ProtoReflect().Descriptor(),
			base: func(t *testing.T, user string) proto.Message { return createReq(user) },
			call: func(m proto.Message) error { _, err := s.CreateLink(ctx, m.(*consentv1.CreateLinkRequest)); return err },
		},
		{
			// A wrong code: its answer (SCA_FAILED) is recorded too.
			desc: (&consentv1.VerifyLinkRequest{}).ProtoReflect().Descriptor(),
			base: func(t *testing.T, user string) proto.Message {
				return &consentv1.VerifyLinkRequest{Name: link(t, user, false), Code: "000000", IdempotencyKey: newKey()}
			},
			call: func(m proto.Message) error { _, err := s.VerifyLink(ctx, m.(*consentv1.VerifyLinkRequest)); return err },
		},
		{
			desc: (&consentv1.RevokeLinkRequest{}).ProtoReflect().Descriptor(),
			base: func(t *testing.T, user string) proto.Message {
				return &consentv1.RevokeLinkRequest{Name: link(t, user, false), IdempotencyKey: newKey()}
			},
			call: func(m proto.Message) error { _, err := s.RevokeLink(ctx, m.(*consentv1.RevokeLinkRequest)); return err },
		},
		{
			desc: (&consentv1.ReconfirmLinkRequest{}).ProtoReflect().Descriptor(),
			base: func(t *testing.T, user string) proto.Message {
				return &consentv1.ReconfirmLinkRequest{Name: link(t, user, true), IdempotencyKey: newKey()}
			},
			call: func(m proto.Message) error {
				_, err := s.ReconfirmLink(ctx, m.(*consentv1.ReconfirmLinkRequest))
				return err
			},
		},
	}

	seen := map[string]bool{}
	users := 0
	for _, rpc := range rpcs {
		for _, path := range fieldPaths(rpc.desc, string(rpc.desc.Name())) {
			exempt := ""
			for name := path.name; name != ""; name = name[:max(strings.LastIndex(name, "."), 0)] {
				seen[name] = true
				if _, ok := notFingerprinted[name]; ok && exempt == "" {
					exempt = name
				}
			}
			if exempt != "" {
				t.Logf("%s: not fingerprinted (%s)", path.name, notFingerprinted[exempt])
				continue
			}
			t.Run(path.name, func(t *testing.T) {
				users++
				first := rpc.base(t, fmt.Sprintf("u%d", users))
				if err := rpc.call(first); err != nil && !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED) {
					t.Fatalf("first request: %v", err)
				}
				changed := proto.Clone(first)
				path.change(t, changed.ProtoReflect())
				if proto.Equal(first, changed) {
					t.Fatalf("the change left the request as it was")
				}
				err := rpc.call(changed)
				if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED) {
					t.Errorf("the request with %s changed, under the first one's key: %v; want IDEMPOTENCY_KEY_REUSED (the fingerprint leaves the field out)", path.name, err)
				}
			})
		}
	}
	for name := range notFingerprinted {
		if !seen[name] {
			t.Errorf("notFingerprinted names %s, which the requests no longer have", name)
		}
	}
}

// fieldPath is a field of a request, or of a message it holds, and how to
// change it.
type fieldPath struct {
	name   string
	change func(t *testing.T, m protoreflect.Message)
}

// fieldPaths lists the fields of md, prefix their path so far: the fields
// of nested messages one by one (but Timestamp and Duration, which are
// values), each member of a oneof on its own.
func fieldPaths(md protoreflect.MessageDescriptor, prefix string) []fieldPath {
	var out []fieldPath
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := prefix + "." + string(fd.Name())
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && !isValue(fd.Message()) {
			for _, sub := range fieldPaths(fd.Message(), name) {
				out = append(out, fieldPath{name: sub.name, change: func(t *testing.T, m protoreflect.Message) {
					sub.change(t, m.Mutable(fd).Message())
				}})
			}
			continue
		}
		out = append(out, fieldPath{name: name, change: func(t *testing.T, m protoreflect.Message) { changeField(t, m, fd) }})
	}
	return out
}

// isValue reports the well-known messages that stand for one value.
func isValue(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.Timestamp", "google.protobuf.Duration":
		return true
	}
	return false
}

// neverSent are the enum values no request may carry, which the service
// refuses before it looks at the key.
var neverSent = []protoreflect.FullName{"bankbridge.common.v1.PURPOSE_ADVERTISING", "bankbridge.common.v1.PURPOSE_MARKETING"}

// changeField sets fd of m to another valid-looking value.
func changeField(t *testing.T, m protoreflect.Message, fd protoreflect.FieldDescriptor) {
	t.Helper()
	if fd.IsList() {
		list := m.Mutable(fd).List()
		switch fd.Kind() {
		case protoreflect.EnumKind:
			var have []protoreflect.EnumNumber
			for i := range list.Len() {
				have = append(have, list.Get(i).Enum())
			}
			values := fd.Enum().Values()
			for i := range values.Len() {
				v := values.Get(i)
				if v.Number() != 0 && !slices.Contains(have, v.Number()) && !slices.Contains(neverSent, v.FullName()) {
					list.Append(protoreflect.ValueOfEnum(v.Number()))
					return
				}
			}
			t.Fatalf("%s: no enum value left to add", fd.FullName())
		case protoreflect.StringKind:
			list.Append(protoreflect.ValueOfString("1"))
		default:
			t.Fatalf("%s: the test cannot change a list of %s yet; teach changeField", fd.FullName(), fd.Kind())
		}
		return
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		// Appended, so that a name stays a name of the same user.
		m.Set(fd, protoreflect.ValueOfString(m.Get(fd).String()+"1"))
	case protoreflect.BoolKind:
		m.Set(fd, protoreflect.ValueOfBool(!m.Get(fd).Bool()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		m.Set(fd, protoreflect.ValueOfInt32(int32(m.Get(fd).Int())+1))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		m.Set(fd, protoreflect.ValueOfInt64(m.Get(fd).Int()+1))
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		cur := m.Get(fd).Enum()
		for i := range values.Len() {
			if v := values.Get(i); v.Number() != 0 && v.Number() != cur && !slices.Contains(neverSent, v.FullName()) {
				m.Set(fd, protoreflect.ValueOfEnum(v.Number()))
				return
			}
		}
		t.Fatalf("%s: no other enum value", fd.FullName())
	case protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			at := time.Now().Add(48 * time.Hour)
			if m.Has(fd) {
				at = m.Get(fd).Message().Interface().(*timestamppb.Timestamp).AsTime().Add(time.Hour)
			}
			m.Set(fd, protoreflect.ValueOfMessage(timestamppb.New(at).ProtoReflect()))
		case "google.protobuf.Duration":
			d := 48 * time.Hour
			if m.Has(fd) {
				d = m.Get(fd).Message().Interface().(*durationpb.Duration).AsDuration() + time.Hour
			}
			m.Set(fd, protoreflect.ValueOfMessage(durationpb.New(d).ProtoReflect()))
		default:
			t.Fatalf("%s: the test cannot change a %s yet; teach changeField", fd.FullName(), fd.Message().FullName())
		}
	default:
		t.Fatalf("%s: the test cannot change a %s yet; teach changeField", fd.FullName(), strings.ToLower(fd.Kind().String()))
	}
}
