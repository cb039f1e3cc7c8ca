package server

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// A unary call ends by itself, so a graceful stop waits for it; a stream
// may never end, and would hold the stop for the whole grace period and
// then be cut. When the drain delay is over, drainStream ends every open
// stream instead, with UNAVAILABLE (SERVER_STOPPING): its client reopens
// at once with its last cursor, and another replica answers.
func drainStream(stopping <-chan struct{}) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		ended := make(chan struct{})
		go func() {
			select {
			case <-stopping:
				close(ended)
				cancel()
			case <-ctx.Done():
			}
		}()
		err := handler(srv, &checkedStream{ServerStream: ss, ctx: ctx})
		if err == nil {
			return nil // it ended by itself, whatever the server does now
		}
		select {
		case <-ended:
			return apierr.New(commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING,
				"the server is stopping; reopen the stream with the last cursor", apierr.WithRetryAfter(time.Millisecond))
		default:
			return err
		}
	}
}
