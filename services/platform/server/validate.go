package server

import (
	"context"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/apierr"
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

func validateCheck(v protovalidate.Validator) func(context.Context, proto.Message) error {
	return func(_ context.Context, req proto.Message) error {
		if err := v.Validate(req); err != nil {
			return apierr.FromValidation(err)
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
