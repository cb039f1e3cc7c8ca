package adapters

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// inMemoryBufferSize is the in-memory connection's buffer: large enough
// for the protocol's biggest message without stalling.
const inMemoryBufferSize = 1 << 20

// NewInMemoryClient serves srv on a gRPC server that listens in memory and
// returns a client connected to it, and the function that closes both.
// Calls go through real gRPC (marshalling, metadata, status codes and their
// details, deadlines), only without a network, so a test sees what a
// remote caller would. Pass the adapter through [NewServer] to get the
// SDK's checks too:
//
//	client, stop := adapters.NewInMemoryClient(adapters.NewServer(myBank))
//	defer stop()
//	conformance.Run(t, client, fixtures)
//
// opts are added to the client's dial options (interceptors, for
// instance). NewInMemoryClient panics only when opts make the client
// impossible to create, a programming error.
func NewInMemoryClient(srv adapterv1.BankAdapterServiceServer, opts ...grpc.DialOption) (adapterv1.BankAdapterServiceClient, func()) {
	lis := bufconn.Listen(inMemoryBufferSize)
	gs := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }() // returns when stop stops the server
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///bankbridge-in-memory-adapter", dial...)
	if err != nil {
		gs.Stop()
		panic(fmt.Sprintf("adapters.NewInMemoryClient: %v", err))
	}
	return adapterv1.NewBankAdapterServiceClient(conn), func() {
		_ = conn.Close()
		gs.Stop()
	}
}
