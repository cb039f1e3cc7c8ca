package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// recoveryHandler turns a panic into INTERNAL with an incident id. The panic
// and its stack are logged under that id; the caller sees neither.
func recoveryHandler(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		id, err := apierr.Internal()
		log.ErrorContext(ctx, "panic in handler",
			slog.String(telemetry.AttrIncidentID, id),
			slog.String("panic", describePanic(p)),
			slog.String("stack", string(debug.Stack())))
		return err
	}
}

// describePanic keeps the text of runtime errors (index out of range, nil
// dereference: written by the runtime, free of user data) and only the type
// of any other panic value, which code may have built from a request.
func describePanic(p any) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("panic value of type %T (value not logged: it may hold personal data)", p)
}

func recoveryUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoveryHandler(log)))
}

func recoveryStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(recoveryHandler(log)))
}
