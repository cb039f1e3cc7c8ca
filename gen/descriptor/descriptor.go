// Package descriptor embeds the compiled bankbridge contracts as a
// FileDescriptorSet with source info (comments included), written by
// `make generate` with `buf build`. Tools that need the contracts at run
// time — contract tests, gRPC reflection with doc comments, API explorers —
// read it from here instead of parsing .proto files.
package descriptor

import (
	_ "embed"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// Linked so that their options are parsed into typed messages.
	_ "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	_ "google.golang.org/genproto/googleapis/api/annotations"
)

//go:embed bankbridge.binpb
var fileDescriptorSet []byte

// Bytes returns the serialized FileDescriptorSet. The slice is shared: do not
// modify it.
func Bytes() []byte { return fileDescriptorSet }

// Set returns a fresh copy of the FileDescriptorSet, with custom options
// (google.api.http, buf.validate, bankbridge.common.v1) parsed through the
// global type registry, so the caller may modify it.
func Set() (*descriptorpb.FileDescriptorSet, error) {
	fds := &descriptorpb.FileDescriptorSet{}
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(fileDescriptorSet, fds); err != nil {
		return nil, fmt.Errorf("unmarshal embedded descriptor set: %w", err)
	}
	return fds, nil
}
