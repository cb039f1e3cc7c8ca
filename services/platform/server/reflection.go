package server

import (
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	v1reflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1"
	v1alphareflectiongrpc "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/descriptor"
)

// Generated Go code carries no comments, so reflection served from it
// would describe the API without its documentation. bankbridge's own files
// are served from the compiled descriptor set in gen/descriptor instead,
// which keeps every doc comment (and with it each RPC's failure codes);
// anything else (health, reflection itself) comes from the Go registry.
var documentedFiles = sync.OnceValues(func() (*protoregistry.Files, error) {
	fds, err := descriptor.Set()
	if err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(fds)
	if err != nil {
		return nil, fmt.Errorf("build documented descriptors: %w", err)
	}
	return files, nil
})

// documentedResolver prefers the documented files, then the Go registry.
type documentedResolver struct{ docs *protoregistry.Files }

func (r documentedResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.docs.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r documentedResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.docs.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

// registerReflection serves gRPC reflection (v1 and v1alpha) with doc
// comments.
func registerReflection(s *grpc.Server) error {
	docs, err := documentedFiles()
	if err != nil {
		return err
	}
	opts := reflection.ServerOptions{Services: s, DescriptorResolver: documentedResolver{docs: docs}}
	v1reflectiongrpc.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	v1alphareflectiongrpc.RegisterServerReflectionServer(s, reflection.NewServer(opts))
	return nil
}
