package conformance

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// capabilityCall is one RPC of a capability, with a well-formed request
// about things no bank knows.
type capabilityCall struct {
	capability adapterv1.Capability
	method     string
	call       func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error
}

func (k *kit) capabilityCalls() []capabilityCall {
	validUntil := timestamppb.New(time.Now().Add(time.Hour))
	return []capabilityCall{
		{adapterv1.Capability_CAPABILITY_ACCOUNTS, "ListAccounts", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_BALANCES, "GetBalances", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_TRANSACTIONS, "SyncTransactions", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, "GetPurchaseDetails", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.GetPurchaseDetails(ctx, &adapterv1.GetPurchaseDetailsRequest{BankConsentId: unknownID, BankAccountId: unknownID, TransactionId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "StartSca", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartSca(ctx, &adapterv1.StartScaRequest{
				UserReference: "conformance-user", LoginHint: k.fx.UnknownLoginHint,
				Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS}, ValidUntil: validUntil,
				IdempotencyKey: k.key("unimplemented-start"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "VerifySca", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.VerifySca(ctx, &adapterv1.VerifyScaRequest{BankConsentId: unknownID, Code: "000000", IdempotencyKey: k.key("unimplemented-verify")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "RevokeConsent", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.RevokeConsent(ctx, &adapterv1.RevokeConsentRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, "ExtendConsent", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ExtendConsent(ctx, &adapterv1.ExtendConsentRequest{
				BankConsentId: unknownID, ValidUntil: validUntil, IdempotencyKey: k.key("unimplemented-extend-" + randomHex()), // each call asks anew
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "StartSupportHandoff", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartSupportHandoff(ctx, &adapterv1.StartSupportHandoffRequest{
				BankConsentId: unknownID, ConversationReference: "conformance-conversation",
				Reason: "conformance check", IdempotencyKey: k.key("unimplemented-handoff"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "SendSupportMessage", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.SendSupportMessage(ctx, &adapterv1.SendSupportMessageRequest{
				BankConsentId: unknownID, CaseId: unknownID, Text: "conformance check", ClientMessageId: k.key("unimplemented-message"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "NotifyThreadControl", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.NotifyThreadControl(ctx, &adapterv1.NotifyThreadControlRequest{
				BankConsentId: unknownID, CaseId: unknownID, Action: adapterv1.ThreadControlAction_THREAD_CONTROL_ACTION_TAKE,
				IdempotencyKey: k.key("unimplemented-control"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "ReportFraud", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ReportFraud(ctx, &adapterv1.ReportFraudRequest{
				BankConsentId: unknownID, BankAccountId: unknownID,
				Category: adapterv1.FraudCategory_FRAUD_CATEGORY_OTHER, IdempotencyKey: k.key("unimplemented-report"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "AnswerFraudAlert", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.AnswerFraudAlert(ctx, &adapterv1.AnswerFraudAlertRequest{
				BankConsentId: unknownID, AlertId: unknownID, Answer: adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED,
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "ListCards", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "BlockCard", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.BlockCard(ctx, &adapterv1.BlockCardRequest{
				BankConsentId: unknownID, BankAccountId: unknownID,
				Reason: adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED, IdempotencyKey: k.key("unimplemented-block"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "StartCardUnblock", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.StartCardUnblock(ctx, &adapterv1.StartCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, IdempotencyKey: k.key("unimplemented-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "VerifyCardUnblock", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			_, err := c.VerifyCardUnblock(ctx, &adapterv1.VerifyCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, ChallengeId: unknownID, Code: "000000",
				IdempotencyKey: k.key("unimplemented-verify-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_EVENTS, "StreamEvents", func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			stream, err := c.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
			if err != nil {
				return err
			}
			if _, err := stream.Recv(); err != nil && status.Code(err) != codes.DeadlineExceeded {
				return err
			}
			return nil // open, and quiet for a second: implemented
		}},
	}
}

// testUnimplemented checks that the capabilities listed are exactly those
// implemented: every RPC of an unlisted one answers UNIMPLEMENTED
// (CAPABILITY_NOT_SUPPORTED), and no RPC of a listed one does.
func (k *kit) testUnimplemented(c *C) {
	for _, cc := range k.capabilityCalls() {
		c.Run(cc.method, func(c *C) {
			err := cc.call(k.ctx(c), k.client)
			if !k.has(cc.capability) {
				wantError(c, cc.method+" of an unlisted capability", err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)
				return
			}
			if err == nil {
				return
			}
			checkErrorInfo(c, cc.method, err)
			if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED) && cc.method != "StartSca" {
				c.Errorf("%s: capability %s is listed in GetAdapterInfo but answers CAPABILITY_NOT_SUPPORTED", cc.method, cc.capability)
			}
		})
	}
}
