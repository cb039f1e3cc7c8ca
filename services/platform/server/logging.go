package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// logCall writes one line per call: method, code, reason, duration; at
// WARN when the call failed for want of something on bankbridge's side or
// a bank's (failedCall), so that on-call can filter on them. Never
// the request or response: they hold personal data. The context's trace and
// span ids are added by the telemetry log handler.
func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	st := status.Convert(err)
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(method, "/grpc.health.v1."):
		level = slog.LevelDebug
	case failedCall(st.Code()):
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("rpc.method", method),
		slog.String("rpc.grpc.status_code", st.Code().String()),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if info := apierr.Info(err); info != nil {
		attrs = append(attrs, slog.String(telemetry.AttrReason, info.GetReason()))
		if id := info.GetMetadata()["incident_id"]; id != "" {
			attrs = append(attrs, slog.String(telemetry.AttrIncidentID, id))
		}
	}
	log.LogAttrs(ctx, level, "rpc", attrs...)
}

func loggingUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

func loggingStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}

// failedCall says whether a call ended with a code that is not the
// caller's doing: a bank or dependency down, out of time, or a bug. A
// refusal (invalid, not found, denied, rate limited) is the caller's.
func failedCall(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}
