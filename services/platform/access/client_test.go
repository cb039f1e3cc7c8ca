package access_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

func TestClientMethodsHaveNoRule(t *testing.T) {
	t.Parallel()
	m, err := access.Load([]string{"bankbridge.webhooks.v1.WebhooksService"})
	if err != nil {
		t.Fatal(err)
	}
	got := m["/bankbridge.webhooks.v1.WebhooksService/CreateEndpoint"]
	if got.Audience != commonv1.Audience_AUDIENCE_CLIENT || len(got.Rule.Purposes) != 0 || len(got.Rule.Scopes) != 0 {
		t.Errorf("CreateEndpoint = %+v, want AUDIENCE_CLIENT without a rule", got)
	}
}

// A client method the kit could not bind to a client is never served.
func TestAClientMethodWithoutANameIsRefused(t *testing.T) {
	t.Parallel()
	opts := &descriptorpb.ServiceOptions{}
	proto.SetExtension(opts, commonv1.E_Audience, commonv1.Audience_AUDIENCE_CLIENT)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("noname/v1/noname.proto"),
		Package:    proto.String("noname.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"bankbridge/common/v1/common.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  proto.String("PingRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("url"), Number: proto.Int32(1), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), JsonName: proto.String("url")}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:    proto.String("NoNameService"),
			Options: opts,
			Method:  []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Ping"), InputType: proto.String(".noname.v1.PingRequest"), OutputType: proto.String(".noname.v1.PingRequest")}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		t.Fatal(err)
	}
	_, err = access.Load([]string{"noname.v1.NoNameService"})
	if err == nil || !strings.Contains(err.Error(), "client method noname.v1.NoNameService.Ping has no name or parent field") {
		t.Fatalf("Load = %v, want a refusal naming the client method without a name", err)
	}
}
