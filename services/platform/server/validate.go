package server

import (
	"context"
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// newValidator compiles the protovalidate rules of every request message of
// the given services up front, so the first call pays no compilation and a
// broken rule stops the process at start, not on a customer's request.
func newValidator(services []string) (protovalidate.Validator, error) {
	var inputs []protoreflect.MessageDescriptor
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue // health, reflection: not ours
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		for i := range sd.Methods().Len() {
			inputs = append(inputs, sd.Methods().Get(i).Input())
		}
	}
	v, err := protovalidate.New(protovalidate.WithMessageDescriptors(inputs...))
	if err != nil {
		return nil, fmt.Errorf("compile validation rules: %w", err)
	}
	return v, nil
}

// validationError turns protovalidate's violations into INVALID_ARGUMENT
// with a BadRequest naming each field path and rule id.
func validationError(err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that cannot be evaluated is our bug, not the caller's.
		return err
	}
	violations := make([]apierr.FieldViolation, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		violations = append(violations, apierr.FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	msg := "invalid request"
	if len(violations) > 0 {
		msg = fmt.Sprintf("invalid request: %s: %s", violations[0].Field, violations[0].Description)
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, msg, apierr.WithFieldViolations(violations...))
}

func validateCheck(v protovalidate.Validator) func(context.Context, proto.Message) error {
	return func(_ context.Context, req proto.Message) error {
		if err := v.Validate(req); err != nil {
			return validationError(err)
		}
		return nil
	}
}

func validateUnary(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return unaryCheck(validateCheck(v))
}

func validateStream(v protovalidate.Validator) grpc.StreamServerInterceptor {
	return streamCheck(validateCheck(v))
}
