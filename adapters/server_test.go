package adapters_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// dial is a raw client, as an adapter sees bankbridge on the wire, without
// the registry's layer.
func dial(t *testing.T, addr string) adapterv1.BankAdapterServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return adapterv1.NewBankAdapterServiceClient(conn)
}

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, key)
}

func TestServerAPIKeys(t *testing.T) {
	t.Parallel()
	keys := &adaptertest.KeySet{Keys: []string{adaptertest.TestAPIKey, "previous-key-0000"}}
	c := dial(t, adaptertest.Serve(t, &adaptertest.TestBank{}, adapters.WithAPIKeys(keys.Get)))
	tests := []struct {
		name    string
		ctx     func(context.Context) context.Context
		wantErr bool
	}{
		{name: "current key", ctx: func(ctx context.Context) context.Context { return withKey(ctx, adaptertest.TestAPIKey) }},
		{name: "previous key still accepted", ctx: func(ctx context.Context) context.Context { return withKey(ctx, "previous-key-0000") }},
		{name: "no key", ctx: func(ctx context.Context) context.Context { return ctx }, wantErr: true},
		{name: "wrong key", ctx: func(ctx context.Context) context.Context { return withKey(ctx, "wrong-key-0000") }, wantErr: true},
		{name: "prefix of the key", ctx: func(ctx context.Context) context.Context { return withKey(ctx, adaptertest.TestAPIKey[:5]) }, wantErr: true},
		{name: "empty key", ctx: func(ctx context.Context) context.Context { return withKey(ctx, "") }, wantErr: true},
		{name: "two keys", ctx: func(ctx context.Context) context.Context {
			return withKey(withKey(ctx, adaptertest.TestAPIKey), "wrong-key-0000")
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Every RPC is guarded, the required ones and streams included.
			_, err := c.GetAdapterInfo(tt.ctx(t.Context()), &adapterv1.GetAdapterInfoRequest{})
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
			// An unauthenticated caller learns nothing else, not even
			// whether its request is valid.
			_, err = c.ListAccounts(tt.ctx(t.Context()), &adapterv1.ListAccountsRequest{BankConsentId: "not valid!"})
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
		})
	}
}

func TestServerAPIKeyRotation(t *testing.T) {
	t.Parallel()
	keys := &adaptertest.KeySet{Keys: []string{adaptertest.TestAPIKey}}
	c := dial(t, adaptertest.Serve(t, &adaptertest.TestBank{}, adapters.WithAPIKeys(keys.Get)))
	if _, err := c.CheckHealth(withKey(t.Context(), adaptertest.TestAPIKey), &adapterv1.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
	keys.Set("next-key-0000")
	_, err := c.CheckHealth(withKey(t.Context(), adaptertest.TestAPIKey), &adapterv1.CheckHealthRequest{})
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
	if _, err := c.CheckHealth(withKey(t.Context(), "next-key-0000"), &adapterv1.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestServerValidatesRequests(t *testing.T) {
	t.Parallel()
	c := dial(t, adaptertest.Serve(t, &adaptertest.TestBank{}))
	tests := []struct {
		name       string
		call       func() error
		wantFields []string
	}{
		{
			name: "malformed consent id",
			call: func() error {
				_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "not valid!"})
				return err
			},
			wantFields: []string{"bank_consent_id"},
		},
		{
			name: "every broken field",
			call: func() error {
				_, err := c.GetBalances(t.Context(), &adapterv1.GetBalancesRequest{})
				return err
			},
			wantFields: []string{"bank_consent_id", "bank_account_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			var fields []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
						if v.GetReason() == "" {
							t.Errorf("violation of %s names no rule", v.GetField())
						}
					}
				}
			}
			for _, f := range tt.wantFields {
				if !slices.Contains(fields, f) {
					t.Errorf("BadRequest names %q, want %q among them", fields, f)
				}
			}
		})
	}
}

func TestServerUnimplementedCapabilities(t *testing.T) {
	t.Parallel()
	c := dial(t, adaptertest.Serve(t, &adaptertest.TestBank{}))
	calls := map[string]func() error{
		"StartSca": func() error {
			_, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{})
			return err
		},
		"SyncTransactions": func() error {
			_, err := c.SyncTransactions(t.Context(), &adapterv1.SyncTransactionsRequest{})
			return err
		},
		"BlockCard": func() error {
			_, err := c.BlockCard(t.Context(), &adapterv1.BlockCardRequest{})
			return err
		},
		"ListCards": func() error {
			_, err := c.ListCards(t.Context(), &adapterv1.ListCardsRequest{})
			return err
		},
		"StartCardUnblock": func() error {
			_, err := c.StartCardUnblock(t.Context(), &adapterv1.StartCardUnblockRequest{})
			return err
		},
		"VerifyCardUnblock": func() error {
			_, err := c.VerifyCardUnblock(t.Context(), &adapterv1.VerifyCardUnblockRequest{})
			return err
		},
		"NotifyThreadControl": func() error {
			_, err := c.NotifyThreadControl(t.Context(), &adapterv1.NotifyThreadControlRequest{})
			return err
		},
		"AnswerFraudAlert": func() error {
			_, err := c.AnswerFraudAlert(t.Context(), &adapterv1.AnswerFraudAlertRequest{})
			return err
		},
		"ExtendConsent": func() error {
			_, err := c.ExtendConsent(t.Context(), &adapterv1.ExtendConsentRequest{})
			return err
		},
		"GetPurchaseDetails": func() error {
			_, err := c.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{})
			return err
		},
		"StartSupportHandoff": func() error {
			_, err := c.StartSupportHandoff(t.Context(), &adapterv1.StartSupportHandoffRequest{})
			return err
		},
		"StreamEvents": func() error {
			s, err := c.StreamEvents(t.Context(), &adapterv1.StreamEventsRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			// Unimplemented comes before validation: these requests are empty.
			adaptertest.WantReason(t, call(), commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)
		})
	}
}

func TestServerChecksInfo(t *testing.T) {
	t.Parallel()
	liar := &adaptertest.TestBank{InfoCaps: []adapterv1.Capability{adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES, adapterv1.Capability_CAPABILITY_EVENTS}}
	c := dial(t, adaptertest.Serve(t, liar))
	_, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)
	if apierr.Info(err).GetMetadata()["incident_id"] == "" {
		t.Error("INTERNAL without an incident_id")
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	got := adapters.Capabilities(&adaptertest.TestBank{})
	want := []adapterv1.Capability{adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES}
	if !slices.Equal(got, want) {
		t.Errorf("Capabilities(testBank) = %v, want %v", got, want)
	}
	if n, all := len(adapters.Capabilities(adaptertest.NewSandbox(t))), len(adapterv1.Capability_name)-1; n != all {
		t.Errorf("the sandbox implements %d capabilities, want all %d", n, all)
	}
}

// TestPurchaseDetailsNeedsTransactions shows that PURCHASE_DETAILS is a
// capability only together with TRANSACTIONS, whose transactions it
// details: without it, the SDK neither lists nor serves it.
func TestPurchaseDetailsNeedsTransactions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		adapter    adapters.Adapter
		wantListed bool
		wantReason commonv1.ErrorReason
		wantCaps   []adapterv1.Capability
	}{
		{
			name:       "with transactions",
			adapter:    &adaptertest.PurchaseBank{TestBank: &adaptertest.TestBank{}},
			wantListed: true,
			wantReason: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			wantCaps: []adapterv1.Capability{
				adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES,
				adapterv1.Capability_CAPABILITY_TRANSACTIONS, adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS,
			},
		},
		{
			name:       "without transactions",
			adapter:    purchasesOnlyBank{TestBank: &adaptertest.TestBank{}},
			wantReason: commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
			wantCaps:   []adapterv1.Capability{adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := adapters.Capabilities(tt.adapter); !slices.Equal(got, tt.wantCaps) {
				t.Errorf("Capabilities = %v, want %v", got, tt.wantCaps)
			}
			c := dial(t, adaptertest.Serve(t, tt.adapter))
			info, err := c.GetAdapterInfo(t.Context(), &adapterv1.GetAdapterInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if listed := slices.Contains(info.GetCapabilities(), adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS); listed != tt.wantListed {
				t.Errorf("GetAdapterInfo lists PURCHASE_DETAILS: %v, want %v", listed, tt.wantListed)
			}
			_, err = c.GetPurchaseDetails(t.Context(), &adapterv1.GetPurchaseDetailsRequest{
				BankConsentId: "ok", BankAccountId: "acc-1", TransactionId: "tx-unknown",
			})
			adaptertest.WantReason(t, err, tt.wantReason)
		})
	}
}

func TestCredentialsHelper(t *testing.T) {
	t.Parallel()
	ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs(
		adapters.APIKeyMetadata, "k", "bankbridge-credential-client_id", "c", "bankbridge-purpose", "ACCOUNT_INFORMATION"))
	got := adapters.Credentials(ctx)
	if len(got) != 2 || got["api_key"] != "k" || got["client_id"] != "c" {
		t.Errorf("Credentials = %v", got)
	}
}

// TestCardsCapability: CARDS is the four card calls together; an adapter
// written before it (BlockCard with ReportFraud, no AnswerFraudAlert) has
// neither FRAUD nor CARDS, and the SDK serves neither.
func TestCardsCapability(t *testing.T) {
	t.Parallel()
	base := []adapterv1.Capability{adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES}
	tests := []struct {
		name      string
		adapter   adapters.Adapter
		wantCaps  []adapterv1.Capability
		wantBlock commonv1.ErrorReason
	}{
		{name: "cards", adapter: adaptertest.CardsBank{TestBank: &adaptertest.TestBank{}}, wantCaps: append(slices.Clone(base), adapterv1.Capability_CAPABILITY_CARDS)},
		{name: "written before CARDS", adapter: adaptertest.OldFraudBank{TestBank: &adaptertest.TestBank{}}, wantCaps: base,
			wantBlock: commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := adapters.Capabilities(tt.adapter); !slices.Equal(got, tt.wantCaps) {
				t.Errorf("Capabilities = %v, want %v", got, tt.wantCaps)
			}
			c := dial(t, adaptertest.Serve(t, tt.adapter))
			_, err := c.BlockCard(t.Context(), &adapterv1.BlockCardRequest{
				BankConsentId: "ok", BankAccountId: "acc-1", Reason: adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST, IdempotencyKey: "block-0001",
			})
			if tt.wantBlock == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if err != nil {
					t.Errorf("BlockCard: %v", err)
				}
				return
			}
			adaptertest.WantReason(t, err, tt.wantBlock)
		})
	}
}
