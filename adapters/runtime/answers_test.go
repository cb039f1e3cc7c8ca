package runtime_test

import (
	"context"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// rawSecret is what a bank's raw answer may carry: an IBAN, a card number
// and a token. None of it, in any case, may reach a caller.
const rawSecret = "IBAN DE89370400440532013000 card 4111111111111111 token sk_live_9f8e7d6c5b4a"

// rawSecretParts are the pieces of rawSecret a test looks for, each in the
// forms a leak might take.
var rawSecretParts = []string{"DE89370400440532013000", "4111111111111111", "sk_live_9f8e7d6c5b4a", "IBAN DE89"}

func holdsRawSecret(b []byte) bool {
	s := strings.ToUpper(string(b))
	for _, p := range rawSecretParts {
		if strings.Contains(s, strings.ToUpper(p)) {
			return true
		}
	}
	return false
}

// rawBank is an adapter written without the SDK, as one in another
// language might be: nothing between it and the registry cleans its
// errors. What ListAccounts answers depends on the consent id.
type rawBank struct {
	adapterv1.UnimplementedBankAdapterServiceServer
}

func (rawBank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	// The bank's words in the headers and trailers too.
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-bank-debug", rawSecret))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-bank-detail", rawSecret))
	noise := []protoadapt.MessageV1{
		&errdetails.LocalizedMessage{Locale: "en-US", Message: rawSecret},
		&errdetails.DebugInfo{Detail: rawSecret, StackEntries: []string{rawSecret}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)},
	}
	answer := func(code codes.Code, info *errdetails.ErrorInfo, extra ...protoadapt.MessageV1) error {
		st, err := status.New(code, "bank says: "+rawSecret).WithDetails(append(append([]protoadapt.MessageV1{info}, extra...), noise...)...)
		if err != nil {
			return err
		}
		return st.Err()
	}
	secretMD := map[string]string{"iban": rawSecret, "attempts_remaining": "2"}
	switch req.GetBankConsentId() {
	case "foreign-domain":
		// A reason bankbridge knows, under the bank's own domain.
		return nil, answer(codes.PermissionDenied, &errdetails.ErrorInfo{Domain: "api.bank.example", Reason: "CONSENT_REQUIRED", Metadata: secretMD})
	case "foreign-domain-secret-reason":
		return nil, answer(codes.NotFound, &errdetails.ErrorInfo{Domain: "api.bank.example", Reason: rawSecret, Metadata: secretMD})
	case "foreign-first":
		// The bank's ErrorInfo first, then one that claims to be bankbridge's.
		return nil, answer(codes.NotFound, &errdetails.ErrorInfo{Domain: "api.bank.example", Reason: "ACCOUNT_GONE", Metadata: secretMD},
			&errdetails.ErrorInfo{Domain: apierr.Domain, Reason: "NOT_FOUND"})
	case "unknown-reason":
		return nil, answer(codes.FailedPrecondition, &errdetails.ErrorInfo{Domain: apierr.Domain, Reason: "ACCOUNT_FROZEN", Metadata: secretMD})
	case "reason-not-for-adapters":
		return nil, answer(codes.Unavailable, &errdetails.ErrorInfo{Domain: apierr.Domain, Reason: "AUDIT_UNAVAILABLE", Metadata: secretMD})
	case "smuggled":
		// A reason adapters may use, and the bank's data hidden in every
		// detail that passes on: the incident id (an IBAN in lower case is
		// hex), the field paths and the rule ids.
		return nil, answer(codes.InvalidArgument,
			&errdetails.ErrorInfo{Domain: apierr.Domain, Reason: "INVALID_ARGUMENT",
				Metadata: map[string]string{"incident_id": "de89370400440532013000", "iban": rawSecret}},
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "bank_consent_id", Reason: "bank.consent_format", Description: rawSecret},
				{Field: "iban_de89370400440532013000", Reason: "bank.rule", Description: "x"},
				{Field: "bank_consent_id", Reason: "4111111111111111", Description: "x"},
				{Field: "bank_consent_id.de89370400440532013000", Reason: "bank.rule", Description: "x"},
			}})
	case "smuggled-card-incident":
		return nil, answer(codes.NotFound, &errdetails.ErrorInfo{Domain: apierr.Domain, Reason: "NOT_FOUND",
			Metadata: map[string]string{"incident_id": "4111111111111111"}})
	}
	return nil, status.Error(codes.Internal, rawSecret)
}

// TestAdapterErrorsNeverReachCallers serves rawBank over gRPC on 127.0.0.1
// and checks every byte of the status the registry's caller gets: code,
// message, details and their metadata.
func TestAdapterErrorsNeverReachCallers(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, rawBank{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	bank := runtime.Bank{ID: "raw", DisplayName: "Raw Bank", Kind: runtime.KindRemote, Endpoint: lis.Addr().String(),
		Breaker: runtime.Breaker{MinRequests: 1000}}
	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(nil))), "raw")

	tests := []struct {
		consent string
		want    commonv1.ErrorReason
		// wantMessage is bankbridge's whole message for the answer.
		wantMessage string
		// wantFields are the field violations that pass, "path rule".
		wantFields []string
	}{
		{consent: "foreign-domain", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: the call failed (PermissionDenied)"},
		{consent: "foreign-domain-secret-reason", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: the call failed (NotFound)"},
		{consent: "foreign-first", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: the call failed (NotFound)"},
		{consent: "unknown-reason", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: the call failed (FailedPrecondition)"},
		{consent: "reason-not-for-adapters", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: its adapter answered outside the protocol (reason AUDIT_UNAVAILABLE)"},
		{consent: "smuggled", want: commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			wantMessage: "bank raw refused the request as invalid", wantFields: []string{"bank_consent_id bank.consent_format"}},
		{consent: "smuggled-card-incident", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			wantMessage: "bank raw knows no such resource under this consent"},
		{consent: "bare-status", want: commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			wantMessage: "bank raw is unavailable: the call failed (Internal)"},
	}
	for _, tt := range tests {
		t.Run(tt.consent, func(t *testing.T) {
			t.Parallel()
			_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: tt.consent})
			adaptertest.WantReason(t, err, tt.want)
			st := status.Convert(err)
			if st.Message() != tt.wantMessage {
				t.Errorf("message %q, want bankbridge's own %q", st.Message(), tt.wantMessage)
			}
			wire, merr := proto.Marshal(st.Proto())
			if merr != nil {
				t.Fatal(merr)
			}
			if holdsRawSecret(wire) {
				t.Errorf("the bank's words reached the caller: %q", wire)
			}
			// Of the details, only bankbridge's ErrorInfo (with metadata
			// bankbridge vouches for), RetryInfo and the BadRequest pass.
			var fields []string
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					if d.GetDomain() != apierr.Domain {
						t.Errorf("ErrorInfo of domain %q passed", d.GetDomain())
					}
					for k := range d.GetMetadata() {
						if k != "attempts_remaining" && k != "incident_id" {
							t.Errorf("ErrorInfo metadata %q passed", k)
						}
					}
				case *errdetails.RetryInfo:
				case *errdetails.BadRequest:
					for _, v := range d.GetFieldViolations() {
						fields = append(fields, v.GetField()+" "+v.GetReason())
					}
				default:
					t.Errorf("detail %T passed", d)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tt.wantFields, ",") {
				t.Errorf("field violations %q, want %q", fields, tt.wantFields)
			}
		})
	}
}
