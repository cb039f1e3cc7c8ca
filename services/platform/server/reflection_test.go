package server_test

import (
	"strings"
	"testing"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestReflectionCarriesDocComments: what grpcurl describe shows over
// reflection includes each RPC's documentation and failure codes.
func TestReflectionCarriesDocComments(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	stream, err := rpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "bankbridge.balance.v1.BalanceService",
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			t.Fatal(err)
		}
		if fd.GetName() != "bankbridge/balance/v1/balance.proto" {
			continue
		}
		for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
			if strings.Contains(loc.GetLeadingComments(), "GetBalance reads") && strings.Contains(loc.GetLeadingComments(), "Fails with UNAVAILABLE (BANK_UNAVAILABLE)") {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("reflection served balance.proto without GetBalance's doc comment")
	}
	// Health is still resolvable, from the Go registry.
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "grpc.health.v1.Health",
	}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetErrorResponse() != nil {
		t.Fatalf("health over reflection: %v, %v", resp.GetErrorResponse(), err)
	}
}
