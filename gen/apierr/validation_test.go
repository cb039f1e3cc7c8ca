package apierr_test

import (
	"errors"
	"fmt"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// fakeValidationError has the shape of protovalidate's *ValidationError
// (the adapters module checks FromValidation against the real one).
type fakeValidationError struct{ v *validate.Violations }

func (e *fakeValidationError) Error() string                 { return "validation error" }
func (e *fakeValidationError) ToProto() *validate.Violations { return e.v }

func violation(rule, msg string, path ...*validate.FieldPathElement) *validate.Violation {
	return validate.Violation_builder{
		Field:   validate.FieldPath_builder{Elements: path}.Build(),
		RuleId:  proto.String(rule),
		Message: proto.String(msg),
	}.Build()
}

func elem(name string) validate.FieldPathElement_builder {
	return validate.FieldPathElement_builder{FieldName: proto.String(name)}
}

func TestFromValidation(t *testing.T) {
	t.Parallel()
	indexed, keyed := elem("scopes"), elem("labels")
	indexed.Index = proto.Uint64(2)
	keyed.StringKey = proto.String(`a"b`)
	verr := &fakeValidationError{validate.Violations_builder{Violations: []*validate.Violation{
		violation("int32.gte_lte", "must be at most 100", elem("page_size").Build()),
		violation("enum.defined_only", "must be a defined value", elem("link").Build(), indexed.Build()),
		violation("string.min_len", "must not be empty", keyed.Build()),
		violation("message.oneof", "exactly one field is required"),
	}}.Build()}
	// Wrapping must not hide it: callers add context with %w.
	err := apierr.FromValidation(fmt.Errorf("check request: %w", verr))

	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT) {
		t.Fatalf("got %v %v, want INVALID_ARGUMENT with reason INVALID_ARGUMENT", st.Code(), apierr.Reason(err))
	}
	if want := "invalid request: page_size: must be at most 100"; st.Message() != want {
		t.Errorf("message = %q, want %q", st.Message(), want)
	}
	var got []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				got = append(got, v.GetField()+" "+v.GetReason()+" "+v.GetDescription())
			}
		}
	}
	want := []string{
		"page_size int32.gte_lte must be at most 100",
		"link.scopes[2] enum.defined_only must be a defined value",
		`labels["a\"b"] string.min_len must not be empty`,
		" message.oneof exactly one field is required",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("field violations =\n%q\nwant\n%q", got, want)
	}
}

func TestFromValidationOfAnotherError(t *testing.T) {
	t.Parallel()
	err := apierr.FromValidation(errors.New("no such overload"))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "invalid request" {
		t.Errorf("got %v %q, want INVALID_ARGUMENT %q", st.Code(), st.Message(), "invalid request")
	}
	if vs := apierr.ValidationViolations(errors.New("no such overload")); vs != nil {
		t.Errorf("ValidationViolations of a plain error = %v, want nil", vs)
	}
}
