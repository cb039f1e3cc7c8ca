package server

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// IdempotencyKeyHeader is the metadata key (HTTP header Idempotency-Key,
// which the gateway passes on) that fills a request's idempotency_key.
const IdempotencyKeyHeader = "idempotency-key"

// fillIdempotencyKey copies the idempotency-key metadata into the request's
// idempotency_key field when the field is empty, before validation, so REST
// callers can use the standard header whatever the body mapping. A key in
// both places must be the same key.
func fillIdempotencyKey(ctx context.Context, req proto.Message) error {
	m := req.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("idempotency_key")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return nil
	}
	values := metadata.ValueFromIncomingContext(ctx, IdempotencyKeyHeader)
	if len(values) == 0 {
		return nil
	}
	field := m.Get(fd).String()
	switch {
	case len(values) > 1 || (field != "" && field != values[0]):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"invalid request: idempotency_key: the Idempotency-Key header and the idempotency_key field disagree",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "idempotency_key", Description: "differs from the Idempotency-Key header", Reason: "idempotency_key.conflict"}))
	case field == "":
		m.Set(fd, protoreflect.ValueOfString(values[0]))
	}
	return nil
}
