package server_test

// Limits on what one connection may bring: the size of a call's metadata
// and the number of calls open at once.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/server"
)

// TestHugeMetadataIsRefused: a call whose metadata is over the server's
// limit (64 KiB by default) is refused before any of the chain runs; one
// under it is served. grpc-go's client reads the limit the server
// advertises and refuses to send; a client that sends anyway has its call
// reset by the server itself.
func TestHugeMetadataIsRefused(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	padded := func(n int) context.Context {
		return metadata.AppendToOutgoingContext(e.as(t, "alice"), "x-padding", strings.Repeat("a", n))
	}
	if _, err := e.balance.GetAccount(padded(8<<10), getAccount("users/alice/accounts/sandbox~a1")); err != nil {
		t.Fatalf("8 KiB of metadata: %v, want served", err)
	}
	checked := len(e.hooks.recorded())

	_, err := e.balance.GetAccount(padded(100<<10), getAccount("users/alice/accounts/sandbox~a1"))
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "header list size") {
		t.Errorf("100 KiB of metadata: %v, want INTERNAL naming the header list size", err)
	}

	t.Run("a client that ignores the limit", func(t *testing.T) {
		fields := [][2]string{{"authorization", "Bearer " + metadataToken(t, e.as(t, "alice"))}, {"bankbridge-purpose", "ACCOUNT_INFORMATION"}}
		for i := range 20 {
			fields = append(fields, [2]string{fmt.Sprintf("x-padding-%d", i), strings.Repeat("a", 5<<10)})
		}
		frame, err := rawCall(t, e.srv.GRPCAddr(), "/bankbridge.balance.v1.BalanceService/GetAccount", fields, getAccount("users/alice/accounts/sandbox~a1"))
		// The server resets the stream, or, as here where the headers go
		// on for frames after the limit, drops the connection (x/net's
		// guard against CONTINUATION floods): either way no answer.
		if _, answered := frame.(*http2.HeadersFrame); answered || frame == nil && err == nil {
			t.Fatalf("the server answered %v (%v), want the stream reset or the connection dropped", frame, err)
		}
	})
	if n := len(e.hooks.recorded()); n != checked {
		t.Errorf("%d calls over the limit reached the access check", n-checked)
	}
}

// rawCall sends one unary gRPC call over a bare HTTP/2 connection,
// ignoring the limits the server advertises, and returns the first frame
// the server sends for the call's stream (its HEADERS, or an RST_STREAM),
// a GOAWAY, or the error that ended the connection.
func rawCall(t *testing.T, addr, method string, md [][2]string, req proto.Message) (http2.Frame, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", addr},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for _, f := range md {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	// The block is larger than a frame: HEADERS, then CONTINUATIONs.
	const chunk = 16 << 10
	rest := block.Bytes()
	first := rest[:min(chunk, len(rest))]
	rest = rest[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndHeaders: len(rest) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(rest) > 0 {
		next := rest[:min(chunk, len(rest))]
		rest = rest[len(next):]
		if err := fr.WriteContinuation(1, len(rest) == 0, next); err != nil {
			t.Fatal(err)
		}
	}
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(msg[1:5], uint32(len(body)))
	copy(msg[5:], body)
	if err := fr.WriteData(1, true, msg); err != nil {
		return nil, err // the server dropped the connection already
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.HeadersFrame:
			if f.Header().StreamID == 1 {
				return f, nil
			}
		case *http2.GoAwayFrame:
			return f, nil
		}
	}
}

// TestConcurrentStreamsPerConnectionAreBounded: a connection holds at most
// MaxConcurrentStreams calls at once; one more waits for a slot rather
// than opening, and opens when one ends.
func TestConcurrentStreamsPerConnectionAreBounded(t *testing.T) {
	t.Parallel()
	const limit = 3
	e := startExample(t, exampleOpts{config: func(c *server.Config) { c.MaxConcurrentStreams = limit }})
	conn, err := grpc.NewClient(e.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	shipping := shippingv1.NewShippingServiceClient(conn)
	ctx, cancel := context.WithCancel(e.asFor(t, "alice", "ORDER_TRACKING"))
	defer cancel()
	var held []grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]
	for range limit {
		stream, err := shipping.WatchShipments(ctx, &shippingv1.WatchShipmentsRequest{Parent: "users/alice", ResumeCursor: "hold"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("stream within the limit: %v", err)
		}
		held = append(held, stream)
	}

	// One more call on the same connection waits: it gets no answer while
	// the limit's streams are open...
	short, cancelShort := context.WithTimeout(e.as(t, "alice"), 300*time.Millisecond)
	defer cancelShort()
	if _, err := balancev1.NewBalanceServiceClient(conn).GetAccount(short, getAccount("users/alice/accounts/sandbox~a1")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call over the limit: %v, want it to wait (DEADLINE_EXCEEDED)", err)
	}
	// ...and is served once one of them ends.
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := balancev1.NewBalanceServiceClient(conn).GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~a1")); err != nil {
			t.Errorf("the waiting call after a slot freed: %v", err)
		}
	})
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	_ = held
}
