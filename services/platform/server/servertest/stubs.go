package servertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/gen/descriptor"
)

// ContractServices returns every bankbridge service of the compiled
// descriptor set (gen/descriptor) whose audience is one of audiences (all
// of them when none is named; a service without one is PUBLIC), as the Go
// registry knows it. It fails t when a service of the set is not in the
// registry: the test must import the service's Go package, or the service
// would go untried.
func ContractServices(t testing.TB, audiences ...commonv1.Audience) []protoreflect.ServiceDescriptor {
	t.Helper()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(fds)
	if err != nil {
		t.Fatal(err)
	}
	var out []protoreflect.ServiceDescriptor
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "bankbridge.") {
			return true
		}
		for i := range f.Services().Len() {
			name := f.Services().Get(i).FullName()
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
			if err != nil {
				t.Fatalf("service %s of the contracts is not linked into this test: import its Go package", name)
			}
			sd := d.(protoreflect.ServiceDescriptor)
			if len(audiences) == 0 || slices.Contains(audiences, AudienceOf(sd)) {
				out = append(out, sd)
			}
		}
		return true
	})
	slices.SortFunc(out, func(a, b protoreflect.ServiceDescriptor) int {
		return strings.Compare(string(a.FullName()), string(b.FullName()))
	})
	return out
}

// AudienceOf is a service's (bankbridge.common.v1.audience), PUBLIC when
// it declares none.
func AudienceOf(sd protoreflect.ServiceDescriptor) commonv1.Audience {
	aud := proto.GetExtension(sd.Options(), commonv1.E_Audience).(commonv1.Audience)
	if aud == commonv1.Audience_AUDIENCE_UNSPECIFIED {
		return commonv1.Audience_AUDIENCE_PUBLIC
	}
	return aud
}

// RegisterStubs registers, for each service, a stand-in whose every method
// reads its request and answers reached: a call that comes back with
// reached went through the whole chain. It serves contracts that have no
// implementation at hand, for tests that try the chain on every method.
func RegisterStubs(r grpc.ServiceRegistrar, services []protoreflect.ServiceDescriptor, reached error) {
	for _, sd := range services {
		desc := &grpc.ServiceDesc{
			ServiceName: string(sd.FullName()),
			HandlerType: (*any)(nil),
			Metadata:    sd.ParentFile().Path(),
		}
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
			newRequest := func() proto.Message {
				mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					panic(fmt.Sprintf("servertest: request type of %s: %v", full, err))
				}
				return mt.New().Interface()
			}
			if md.IsStreamingClient() || md.IsStreamingServer() {
				desc.Streams = append(desc.Streams, grpc.StreamDesc{
					StreamName:    string(md.Name()),
					ServerStreams: md.IsStreamingServer(),
					ClientStreams: md.IsStreamingClient(),
					Handler: func(_ any, stream grpc.ServerStream) error {
						if err := stream.RecvMsg(newRequest()); err != nil {
							return err
						}
						return reached
					},
				})
				continue
			}
			desc.Methods = append(desc.Methods, grpc.MethodDesc{
				MethodName: string(md.Name()),
				Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
					in := newRequest()
					if err := dec(in); err != nil {
						return nil, err
					}
					handler := func(context.Context, any) (any, error) { return nil, reached }
					if ic == nil {
						return handler(ctx, in)
					}
					return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, handler)
				},
			})
		}
		r.RegisterService(desc, struct{}{})
	}
}
