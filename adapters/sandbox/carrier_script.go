package sandbox

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

// The sandbox carrier's tracking numbers, one per outcome: "SBX", nine
// digits, and a Luhn (mod 10) check digit over the nine digits.
var (
	// TrackingDelivered is delivered, signed for, after two stops in
	// transit and a round out for delivery.
	TrackingDelivered = trackingNumber("000000001")
	// TrackingException is held at customs (EXCEPTION).
	TrackingException = trackingNumber("000000002")
	// TrackingReturned fails a delivery attempt and goes back to the
	// sender (RETURNED).
	TrackingReturned = trackingNumber("000000003")
	// TrackingFailedThenDelivered fails a first delivery attempt (nobody
	// home), goes out again the next round and is delivered.
	TrackingFailedThenDelivered = trackingNumber("000000004")
)

// TrackingNumbers returns the sandbox carrier's tracking numbers, in the
// order of their nine digits.
func TrackingNumbers() []string {
	return []string{TrackingDelivered, TrackingException, TrackingReturned, TrackingFailedThenDelivered}
}

// trackingNumber is "SBX", digits and their Luhn check digit.
func trackingNumber(digits string) string {
	return "SBX" + digits + strconv.Itoa(luhnCheckDigit(digits))
}

// luhnCheckDigit returns the digit that, appended to digits, makes the
// whole pass the Luhn (mod 10) check: from the right, every other digit,
// starting with the last, is doubled (less 9 above 9), and the check digit
// brings the sum to a multiple of 10. digits holds ASCII digits only.
func luhnCheckDigit(digits string) int {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// carrierStep is one scripted tracking event.
type carrierStep struct {
	status    shippingv1.ShipmentStatus
	substatus string
	code      string // carrier_status_code
	message   string // carrier_message
	city      string
	country   string
	signedBy  string
	// estimate is how many steps after this one delivery is expected, for
	// estimated_delivery_time on the compressed clock; 0 sends none.
	estimate int
}

// event is the step as the carrier sends it: eventID, checkpoint time at,
// and the delivery estimate step apart from at on the compressed clock.
func (s carrierStep) event(number, eventID string, at time.Time, step time.Duration) *shippingv1.CarrierEvent {
	ev := &shippingv1.CarrierEvent{
		EventId:        eventID,
		TrackingNumber: number,
		Checkpoint: &shippingv1.Checkpoint{
			Time:              timestamppb.New(at),
			Status:            s.status,
			Substatus:         s.substatus,
			CarrierStatusCode: s.code,
			CarrierMessage:    s.message,
			Location:          &shippingv1.Location{City: s.city, CountryCode: s.country},
		},
		SignedBy: s.signedBy,
	}
	if s.estimate > 0 {
		ev.EstimatedDeliveryTime = timestamppb.New(at.Add(time.Duration(s.estimate) * step))
	}
	return ev
}

// carrierScripts returns each tracking number's events, in order.
func carrierScripts() map[string][]carrierStep {
	const (
		infoReceived   = shippingv1.ShipmentStatus_SHIPMENT_STATUS_INFO_RECEIVED
		inTransit      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT
		outForDelivery = shippingv1.ShipmentStatus_SHIPMENT_STATUS_OUT_FOR_DELIVERY
		attemptFailed  = shippingv1.ShipmentStatus_SHIPMENT_STATUS_ATTEMPT_FAILED
		delivered      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED
		exception      = shippingv1.ShipmentStatus_SHIPMENT_STATUS_EXCEPTION
		returned       = shippingv1.ShipmentStatus_SHIPMENT_STATUS_RETURNED
	)
	return map[string][]carrierStep{
		TrackingDelivered: {
			{status: infoReceived, code: "IR", message: "Shipment information received", city: "Hamburg", country: "DE", estimate: 4},
			{status: inTransit, code: "IT", message: "Departed sort facility", city: "Hamburg", country: "DE", estimate: 3},
			{status: inTransit, code: "IT", message: "Arrived at sort facility", city: "Leipzig", country: "DE", estimate: 2},
			{status: outForDelivery, code: "OD", message: "Out for delivery", city: "Munich", country: "DE"},
			{status: delivered, substatus: "delivered.signed", code: "DEL", message: "Delivered, signed for", city: "Munich", country: "DE", signedBy: "A. Example"},
		},
		TrackingException: {
			{status: infoReceived, code: "IR", message: "Shipment information received", city: "Zurich", country: "CH", estimate: 3},
			{status: inTransit, code: "IT", message: "Departed sort facility", city: "Basel", country: "CH", estimate: 2},
			{status: exception, substatus: "exception.customs", code: "CUS", message: "Held at customs: documents required", city: "Weil am Rhein", country: "DE"},
		},
		TrackingReturned: {
			{status: infoReceived, code: "IR", message: "Shipment information received", city: "Rotterdam", country: "NL", estimate: 3},
			{status: inTransit, code: "IT", message: "Arrived at sort facility", city: "Antwerp", country: "BE", estimate: 2},
			{status: attemptFailed, substatus: "attempt_failed.address_issue", code: "AF", message: "Delivery attempted: address not found", city: "Brussels", country: "BE"},
			{status: returned, code: "RTS", message: "Returned to sender", city: "Rotterdam", country: "NL"},
		},
		TrackingFailedThenDelivered: {
			{status: infoReceived, code: "IR", message: "Shipment information received", city: "Lyon", country: "FR", estimate: 3},
			{status: inTransit, code: "IT", message: "Arrived at sort facility", city: "Paris", country: "FR", estimate: 2},
			{status: outForDelivery, code: "OD", message: "Out for delivery", city: "Paris", country: "FR"},
			{status: attemptFailed, substatus: "attempt_failed.recipient_absent", code: "AF", message: "Delivery attempted: recipient absent, next attempt tomorrow", city: "Paris", country: "FR", estimate: 2},
			{status: outForDelivery, code: "OD", message: "Out for delivery", city: "Paris", country: "FR"},
			{status: delivered, substatus: "delivered.left_at_door", code: "DEL", message: "Delivered", city: "Paris", country: "FR"},
		},
	}
}
