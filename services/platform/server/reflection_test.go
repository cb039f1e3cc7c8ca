package server_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	v1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestReflectionIsOffByDefault: a server not asked for reflection
// (--reflection) describes nothing to a caller, with or without a token,
// over either version of the protocol; health still answers.
func TestReflectionIsOffByDefault(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	tests := []struct {
		name string
		ctx  context.Context
	}{{"no token", t.Context()}, {"a user's token", e.as(t, "alice")}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A Send on a stream the server already ended says io.EOF; Recv
			// then says how it ended.
			v1, err := rpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(tt.ctx)
			if err == nil {
				if err = v1.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err == nil || err == io.EOF {
					_, err = v1.Recv()
				}
			}
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("reflection v1 answered %v, want UNIMPLEMENTED", err)
			}
			alpha, err := v1alpha.NewServerReflectionClient(e.conn).ServerReflectionInfo(tt.ctx)
			if err == nil {
				if err = alpha.Send(&v1alpha.ServerReflectionRequest{MessageRequest: &v1alpha.ServerReflectionRequest_ListServices{}}); err == nil || err == io.EOF {
					_, err = alpha.Recv()
				}
			}
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("reflection v1alpha answered %v, want UNIMPLEMENTED", err)
			}
		})
	}
	if resp, err := healthpb.NewHealthClient(e.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
}

// TestReflectionCarriesDocComments: with --reflection, what grpcurl
// describe shows includes each RPC's documentation and failure codes.
func TestReflectionCarriesDocComments(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{reflection: true})
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
