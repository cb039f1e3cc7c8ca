package app

import (
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
)

// MaxEndpoints is how many endpoints one client may register.
const MaxEndpoints = 20

// AllTypes subscribes an endpoint to every event type.
const AllTypes = "*"

// Endpoint is a URL of a client's that receives webhooks.
type Endpoint struct {
	Client      string
	ID          string
	URL         string
	EventTypes  []string
	Description string
	CreateTime  time.Time
	// SecretCreateTime is when the current secret was made.
	SecretCreateTime time.Time
	// PreviousSecretExpireTime is until when a replaced secret still
	// signs; zero when only the current one does.
	PreviousSecretExpireTime time.Time
}

// Name is the endpoint's resource name.
func (e Endpoint) Name() names.Endpoint { return names.Endpoint{Client: e.Client, ID: e.ID} }

// Subscribes reports whether the endpoint takes events of type t.
func (e Endpoint) Subscribes(t string) bool {
	return slices.Contains(e.EventTypes, AllTypes) || slices.Contains(e.EventTypes, t)
}

// Event is an event kept for delivery and replay: what the bus delivered,
// for one client. Data is the thin payload (protojson of the source's
// event message): ids, types and names, never personal data.
type Event struct {
	ID       string
	Type     string
	Client   string
	Resource string
	Time     time.Time
	Data     []byte
}

// DeliveryState is where a delivery is.
type DeliveryState int

// The delivery states.
const (
	DeliveryPending DeliveryState = iota + 1
	DeliverySucceeded
	DeliveryFailed
)

func (s DeliveryState) String() string {
	switch s {
	case DeliveryPending:
		return "PENDING"
	case DeliverySucceeded:
		return "SUCCEEDED"
	case DeliveryFailed:
		return "FAILED"
	}
	return "UNSPECIFIED"
}

// ParseDeliveryState reads a state's String; 0 for anything else.
func ParseDeliveryState(s string) DeliveryState {
	for _, st := range []DeliveryState{DeliveryPending, DeliverySucceeded, DeliveryFailed} {
		if st.String() == s {
			return st
		}
	}
	return 0
}

// Outcome is how one attempt ended.
type Outcome int

// The attempt outcomes.
const (
	OutcomeSucceeded Outcome = iota + 1
	OutcomeHTTPError
	OutcomeTimeout
	OutcomeNetworkError
	OutcomeAddressRefused
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "SUCCEEDED"
	case OutcomeHTTPError:
		return "HTTP_ERROR"
	case OutcomeTimeout:
		return "TIMEOUT"
	case OutcomeNetworkError:
		return "NETWORK_ERROR"
	case OutcomeAddressRefused:
		return "ADDRESS_REFUSED"
	}
	return "UNSPECIFIED"
}

// ParseOutcome reads an outcome's String; 0 for anything else.
func ParseOutcome(s string) Outcome {
	for o := OutcomeSucceeded; o <= OutcomeAddressRefused; o++ {
		if o.String() == s {
			return o
		}
	}
	return 0
}

// Attempt is one POST of a delivery. It never holds a body.
type Attempt struct {
	Time       time.Time
	Duration   time.Duration
	StatusCode int
	Outcome    Outcome
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID         string
	Client     string
	EndpointID string
	EventID    string
	EventType  string
	State      DeliveryState
	CreateTime time.Time
	// NextAttemptTime is when the next attempt is due; zero once final.
	NextAttemptTime time.Time
	// Deadline is when retrying stops: CreateTime plus the retry window.
	Deadline time.Time
	Replay   bool
	// Attempts are the attempts made, oldest first (ListDeliveries only).
	Attempts []Attempt
}

// Name is the delivery's resource name.
func (d Delivery) Name() names.Delivery {
	return names.Endpoint{Client: d.Client, ID: d.EndpointID}.Delivery(d.ID)
}

// Due is a delivery claimed for an attempt, with what the attempt needs.
type Due struct {
	Delivery Delivery
	Event    Event
	URL      string
	// Attempts is how many attempts were made before this one.
	Attempts int
}
