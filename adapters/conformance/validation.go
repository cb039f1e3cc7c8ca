package conformance

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testInvalidRequests sends one request per implemented capability that
// breaks a rule of the protocol, and wants INVALID_ARGUMENT naming the field.
func (k *kit) testInvalidRequests(c *C) {
	tests := []struct {
		capability adapterv1.Capability
		name       string
		field      string
		call       func(ctx context.Context) error
	}{
		{adapterv1.Capability_CAPABILITY_ACCOUNTS, "ListAccounts with a malformed consent id", "bank_consent_id", func(ctx context.Context) error {
			_, err := k.client.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: "not a valid id!"})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_BALANCES, "GetBalances without an account", "bank_account_id", func(ctx context.Context) error {
			_, err := k.client.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_TRANSACTIONS, "SyncTransactions with count above 500", "count", func(ctx context.Context) error {
			_, err := k.client.SyncTransactions(ctx, &adapterv1.SyncTransactionsRequest{BankConsentId: unknownID, BankAccountId: unknownID, Count: 501})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, "GetPurchaseDetails without a transaction", "transaction_id", func(ctx context.Context) error {
			_, err := k.client.GetPurchaseDetails(ctx, &adapterv1.GetPurchaseDetailsRequest{BankConsentId: unknownID, BankAccountId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SCA, "StartSca without scopes", "scopes", func(ctx context.Context) error {
			_, err := k.client.StartSca(ctx, &adapterv1.StartScaRequest{
				UserReference: "conformance-user", LoginHint: k.fx.LoginHint,
				ValidUntil: timestamppb.New(time.Now().Add(time.Hour)), IdempotencyKey: k.key("invalid-start"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, "ExtendConsent without valid_until", "valid_until", func(ctx context.Context) error {
			_, err := k.client.ExtendConsent(ctx, &adapterv1.ExtendConsentRequest{BankConsentId: unknownID, IdempotencyKey: k.key("invalid-extend")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "SendSupportMessage without text", "text", func(ctx context.Context) error {
			_, err := k.client.SendSupportMessage(ctx, &adapterv1.SendSupportMessageRequest{
				BankConsentId: unknownID, CaseId: unknownID, ClientMessageId: k.key("invalid-message"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, "NotifyThreadControl without an action", "action", func(ctx context.Context) error {
			_, err := k.client.NotifyThreadControl(ctx, &adapterv1.NotifyThreadControlRequest{
				BankConsentId: unknownID, CaseId: unknownID, IdempotencyKey: k.key("invalid-control"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_FRAUD, "AnswerFraudAlert without an answer", "answer", func(ctx context.Context) error {
			_, err := k.client.AnswerFraudAlert(ctx, &adapterv1.AnswerFraudAlertRequest{BankConsentId: unknownID, AlertId: unknownID})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "ListCards with a malformed consent id", "bank_consent_id", func(ctx context.Context) error {
			_, err := k.client.ListCards(ctx, &adapterv1.ListCardsRequest{BankConsentId: "not a valid id!"})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "BlockCard without a reason", "reason", func(ctx context.Context) error {
			_, err := k.client.BlockCard(ctx, &adapterv1.BlockCardRequest{
				BankConsentId: unknownID, BankAccountId: unknownID, IdempotencyKey: k.key("invalid-block"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "StartCardUnblock without a card", "bank_card_id", func(ctx context.Context) error {
			_, err := k.client.StartCardUnblock(ctx, &adapterv1.StartCardUnblockRequest{BankConsentId: unknownID, IdempotencyKey: k.key("invalid-unblock")})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_CARDS, "VerifyCardUnblock with a three-digit code", "code", func(ctx context.Context) error {
			_, err := k.client.VerifyCardUnblock(ctx, &adapterv1.VerifyCardUnblockRequest{
				BankConsentId: unknownID, BankCardId: unknownID, ChallengeId: unknownID, Code: "123", IdempotencyKey: k.key("invalid-verify-unblock"),
			})
			return err
		}},
		{adapterv1.Capability_CAPABILITY_EVENTS, "StreamEvents with an overlong cursor", "resume_cursor", func(ctx context.Context) error {
			stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{ResumeCursor: strings.Repeat("x", 1025)})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
	}
	for _, tt := range tests {
		if !k.has(tt.capability) {
			continue
		}
		c.Run(tt.name, func(c *C) {
			err := tt.call(k.ctx(c))
			if !wantError(c, tt.name, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT) {
				return
			}
			if !slices.Contains(violatedFields(err), tt.field) {
				c.Errorf("%s: BadRequest names %q, want it to name %q", tt.name, violatedFields(err), tt.field)
			}
		})
	}
}

func violatedFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}
