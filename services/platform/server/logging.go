package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// logCall writes one line per call: method, code, reason, duration. Never
// the request or response: they hold personal data. The context's trace and
// span ids are added by the telemetry log handler.
func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	level := slog.LevelInfo
	if strings.HasPrefix(method, "/grpc.health.v1.") {
		level = slog.LevelDebug
	}
	st := status.Convert(err)
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
