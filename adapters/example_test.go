package adapters_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// acmeBank is an integrator's adapter that lists accounts and balances.
type acmeBank struct{}

func (acmeBank) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	var a acmeBank
	return &adapterv1.GetAdapterInfoResponse{
		BankId:          "acme",
		DisplayName:     "ACME Bank",
		ProtocolVersion: adapters.ProtocolVersion,
		AdapterVersion:  "0.1.0",
		Capabilities:    adapters.Capabilities(a), // exactly what it implements
	}, nil
}

func (acmeBank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

func (acmeBank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	// Call the bank with the credential bankbridge sent (remote adapters).
	_ = adapters.Credentials(ctx)["api_key"]
	// A consent the bank does not know (or no longer honours) is
	// CONSENT_REVOKED_BY_BANK, never NOT_FOUND: bankbridge then ends the
	// link and asks the user to link the bank again.
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
}

func (acmeBank) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	// NOT_FOUND is for an account the consent does not have.
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the consent has no such account")
}

// An adapter served over gRPC, refusing calls without the right API key.
func ExampleNewServer() {
	keys, err := adapters.NewKeyFile("/run/secrets/acme-api-key", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	go keys.Watch(context.Background(), time.Second, nil, func(err error) { log.Print(err) })

	srv := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(acmeBank{}, adapters.WithAPIKeys(keys.Keys)))
	lis, err := net.Listen("tcp", ":9400")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.Serve(lis))
}

// Running the conformance kit, or any test, against an adapter without a
// network: real gRPC through the SDK's server.
func ExampleNewInMemoryClient() {
	client, stop := adapters.NewInMemoryClient(adapters.NewServer(acmeBank{}))
	defer stop()
	info, err := client.GetAdapterInfo(context.Background(), &adapterv1.GetAdapterInfoRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.GetBankId(), info.GetCapabilities())
	// Output: acme [CAPABILITY_ACCOUNTS CAPABILITY_BALANCES]
}

func ExampleParseMoney() {
	m, err := adapters.ParseMoney("EUR", "-86.40")
	fmt.Println(m.GetUnits(), m.GetNanos(), err)
	_, err = adapters.ParseMoney("EUR", "86.405")
	fmt.Println(err)
	// Output:
	// -86 -400000000 <nil>
	// parse money: EUR has 2 decimals, the amount more
}

func ExampleScrubNumbers() {
	fmt.Println(adapters.ScrubNumbers("Transfer to DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111"))
	// Output: Transfer to DE•• •••• 3000, card •••• 1111
}

func ExampleMaskedAccountNumber() {
	m := adapters.MaskedAccountNumber("DE89370400440532013000")
	fmt.Println(m.GetLast4(), m.GetDisplay())
	// Output: 3000 DE•• •••• 3000
}
