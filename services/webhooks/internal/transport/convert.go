package transport

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

// optionalTime is t, or unset for the zero time.
func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func endpointProto(e app.Endpoint) *webhooksv1.Endpoint {
	return &webhooksv1.Endpoint{
		Name:                     e.Name().String(),
		Url:                      e.URL,
		EventTypes:               e.EventTypes,
		Description:              e.Description,
		CreateTime:               timestamppb.New(e.CreateTime),
		SecretCreateTime:         timestamppb.New(e.SecretCreateTime),
		PreviousSecretExpireTime: optionalTime(e.PreviousSecretExpireTime),
	}
}

func deliveryProto(d app.Delivery) *webhooksv1.Delivery {
	out := &webhooksv1.Delivery{
		Name:            d.Name().String(),
		EventId:         d.EventID,
		EventType:       d.EventType,
		State:           deliveryStateProto(d.State),
		CreateTime:      timestamppb.New(d.CreateTime),
		NextAttemptTime: optionalTime(d.NextAttemptTime),
		Replay:          d.Replay,
	}
	for _, a := range d.Attempts {
		out.Attempts = append(out.Attempts, &webhooksv1.DeliveryAttempt{
			AttemptTime:    timestamppb.New(a.Time),
			Duration:       durationpb.New(a.Duration),
			HttpStatusCode: int32(a.StatusCode),
			Outcome:        outcomeProto(a.Outcome),
		})
	}
	return out
}

func deliveryStateProto(s app.DeliveryState) webhooksv1.DeliveryState {
	switch s {
	case app.DeliveryPending:
		return webhooksv1.DeliveryState_DELIVERY_STATE_PENDING
	case app.DeliverySucceeded:
		return webhooksv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
	case app.DeliveryFailed:
		return webhooksv1.DeliveryState_DELIVERY_STATE_FAILED
	}
	return webhooksv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED
}

func deliveryState(s webhooksv1.DeliveryState) app.DeliveryState {
	switch s {
	case webhooksv1.DeliveryState_DELIVERY_STATE_PENDING:
		return app.DeliveryPending
	case webhooksv1.DeliveryState_DELIVERY_STATE_SUCCEEDED:
		return app.DeliverySucceeded
	case webhooksv1.DeliveryState_DELIVERY_STATE_FAILED:
		return app.DeliveryFailed
	}
	return 0
}

func outcomeProto(o app.Outcome) webhooksv1.AttemptOutcome {
	switch o {
	case app.OutcomeSucceeded:
		return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED
	case app.OutcomeHTTPError:
		return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_HTTP_ERROR
	case app.OutcomeTimeout:
		return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_TIMEOUT
	case app.OutcomeNetworkError:
		return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_NETWORK_ERROR
	case app.OutcomeAddressRefused:
		return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_ADDRESS_REFUSED
	}
	return webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_UNSPECIFIED
}
