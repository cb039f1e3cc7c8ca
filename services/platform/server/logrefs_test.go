package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// failingBalance logs as a bank client does deep in a handler, with the
// call's context, and fails as a bank that is down.
type failingBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	log *slog.Logger
}

func (b *failingBalance) GetBalance(ctx context.Context, _ *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	b.log.WarnContext(ctx, "bank call failed")
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank sandbox is unavailable")
}

// TestAFailedCallNamesWhomItAffectedPseudonymously: a line a handler logs
// with the call's context carries the pseudonymous user and link
// references of the call's grant (the same a second process with the same
// key makes), never the user id; the call's own line is a WARN with the
// reason.
func TestAFailedCallNamesWhomItAffectedPseudonymously(t *testing.T) {
	t.Parallel()
	refs, err := pseudonym.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	h := &failingBalance{}
	s := servertest.Start(t, server.Deps{Consent: &recorder{}, Recorder: &recorder{}, Banks: knownBanks{"sandbox": true}, LogRefs: refs},
		func(r grpc.ServiceRegistrar) { balancev1.RegisterBalanceServiceServer(r, h) },
		servertest.Options{Name: "refs", Telemetry: telemetry.Config{LogOutput: logs}})
	h.log = s.Telemetry.Logger

	ctx := withPurpose(withToken(context.Background(), mustMint(t, s, "alice")), "ACCOUNT_INFORMATION")
	_, err = balancev1.NewBalanceServiceClient(s.Conn).GetBalance(ctx, &balancev1.GetBalanceRequest{Name: "users/alice/accounts/sandbox~a1/balance"})
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
		t.Fatalf("GetBalance: %v", err)
	}

	var handler, rpc map[string]any
	for l := range strings.SplitSeq(logs.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil {
			continue
		}
		switch line["msg"] {
		case "bank call failed":
			handler = line
		case "rpc":
			if line["rpc.method"] == balancev1.BalanceService_GetBalance_FullMethodName {
				rpc = line
			}
		}
	}
	if handler["user_ref"] != refs.User("alice") || handler["link_ref"] != refs.Link("users/alice/links/l1") {
		t.Errorf("handler's line %v: want user_ref %s and link_ref %s", handler, refs.User("alice"), refs.Link("users/alice/links/l1"))
	}
	if rpc["level"] != "WARN" || rpc[telemetry.AttrReason] != "BANK_UNAVAILABLE" {
		t.Errorf("the call's line %v: want WARN with reason BANK_UNAVAILABLE", rpc)
	}
	if strings.Contains(logs.String(), `"alice"`) || strings.Contains(logs.String(), "users/alice") {
		t.Errorf("the logs name the user:\n%s", logs)
	}
}

func mustMint(t *testing.T, s *servertest.Server, user string) string {
	t.Helper()
	tok, err := s.Issuer.Mint(user, testClient, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
