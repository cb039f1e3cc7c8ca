package transport

import (
	"context"
	"errors"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

// CarrierIngester is the app as the carrier endpoint stores a verified
// push (carrierpush.Ingester).
type CarrierIngester struct {
	app *app.Service
}

var _ carrierpush.Ingester = CarrierIngester{}

// NewCarrierIngester stores carriers' pushes with a.
func NewCarrierIngester(a *app.Service) CarrierIngester { return CarrierIngester{app: a} }

// IngestCarrierPush stores the events of a push whose signature and body
// the endpoint checked: carrierpush.ErrReplayed, and nothing stored, when
// the carrier used pushID before.
func (c CarrierIngester) IngestCarrierPush(ctx context.Context, carrier, pushID string, push *shippingv1.CarrierPush) (recorded, duplicates int, err error) {
	res, err := c.app.IngestCarrierPush(ctx, carrier, pushID, shipmentpb.CarrierEvents(push))
	if errors.Is(err, app.ErrReplayedPush) {
		return 0, 0, carrierpush.ErrReplayed
	}
	if err != nil {
		return 0, 0, err
	}
	return res.Recorded, res.Duplicates, nil
}
