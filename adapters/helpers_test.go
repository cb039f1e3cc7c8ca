package adapters_test

import (
	"context"
	"errors"

	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// purchasesOnlyBank has GetPurchaseDetails but no SyncTransactions, so
// PURCHASE_DETAILS is not one of its capabilities.
type purchasesOnlyBank struct{ *adaptertest.TestBank }

func (purchasesOnlyBank) GetPurchaseDetails(context.Context, *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error) {
	return nil, errors.New("never called: not a capability without TRANSACTIONS")
}
