package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// mask makes sure no error text a handler did not mean for the caller leaves
// the server: an error without a gRPC status, or an INTERNAL/UNKNOWN status
// without a bankbridge ErrorInfo, is logged under an incident id and replaced
// by apierr.Internal. Context errors keep their codes.
//
// An error that says the database connection was lost or could not be
// made — a raw driver error storage.IsConnectionError knows, or storage's
// own STORAGE_UNAVAILABLE from InTx, which still carries the driver's
// text — is UNAVAILABLE (STORAGE_UNAVAILABLE) with a retry hint instead,
// logged under an incident id the caller gets, and with no driver text: a
// database restart is no bug, a retry soon succeeds, and every service's
// reads and writes answer so without mapping it themselves.
func mask(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "call cancelled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	st, ok := status.FromError(err)
	if (!ok || apierr.Reason(err) == commonv1.ErrorReason_ERROR_REASON_STORAGE_UNAVAILABLE) && storage.IsConnectionError(err) {
		id := apierr.IncidentID()
		log.WarnContext(ctx, "database unreachable", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_STORAGE_UNAVAILABLE, storage.UnavailableMessage,
			apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(storage.UnavailableRetry))
	}
	if ok && st.Code() != codes.Internal && st.Code() != codes.Unknown {
		return err
	}
	if ok && apierr.Info(err) != nil {
		return err
	}
	id, masked := apierr.Internal()
	log.ErrorContext(ctx, "unexpected error", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return masked
}

func maskUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, mask(ctx, log, err)
	}
}

func maskStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return mask(ss.Context(), log, handler(srv, ss))
	}
}
