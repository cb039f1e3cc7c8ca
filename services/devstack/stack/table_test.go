package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func TestTableStartsWhatEachNeedsFirst(t *testing.T) {
	t.Parallel()
	if err := checkTable(Table()); err != nil {
		t.Fatal(err)
	}
	reordered := Table()
	slices.Reverse(reordered)
	if err := checkTable(reordered); err == nil || !strings.Contains(err.Error(), "must come before it") {
		t.Errorf("a table starting balance before consent: %v", err)
	}
}

// TestOneEntryWiresAService adds a service to the table, as the recipe
// says, and checks the flags every process gets from it: nothing else
// changes for the new service to be started, routed and trusted.
func TestOneEntryWiresAService(t *testing.T) {
	t.Parallel()
	tbl := append(Table(), Process{Name: "shipping", Package: "./shipping", Kind: Service, Port: 9105, AdminPort: 9205,
		Needs: bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true}})
	s := &Stack{opts: Options{DataDir: "/dev-data"}, table: tbl, addrs: map[string]string{}, GatewayURL: "http://gw",
		Vault: VaultRef{Addr: "http://vault", Token: "t"}, NATS: NATSRef{URL: "nats://nats", Token: "n"},
		serviceSecret: "secret", banksFile: "/dev-data/banks.yaml"}
	for _, p := range tbl {
		s.addrs[p.Name] = "addr-" + p.Name
		s.addrs[p.Name+"-admin"] = "admin-" + p.Name
	}
	if err := checkTable(tbl); err != nil {
		t.Fatal(err)
	}
	args := func(name string) []string {
		for _, p := range tbl {
			if p.Name == name {
				return s.args(p)
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	tests := []struct {
		process string
		want    []string
	}{
		{"shipping", []string{
			"--grpc-addr=addr-shipping", "--admin-addr=admin-shipping", "--issuer=http://gw", "--jwks-url=http://gw/.well-known/jwks.json",
			"--banks=/dev-data/banks.yaml", "--vault-addr=http://vault", "--consent-addr=addr-consent",
			"--token-url=http://gw/oauth/token", "--client-id=shipping", "--client-secret=secret", "--data-dir=/dev-data/shipping",
			"--nats-url=nats://nats", "--partner-clients=demo-partner,demo-shop",
		}},
		{"gateway", []string{"--addr=addr-gateway", "--shipping-addr=addr-shipping", "--receipts-addr=addr-receipts", "--balance-addr=addr-balance",
			"--dev-service-clients=consent,balance,receipts,webhooks,shipping", "--dev-partner-clients=demo-partner,demo-shop"}},
		{"consent", []string{"--internal-clients=balance,receipts,shipping", "--data-dir=/dev-data/consent"}},
		{"sandbox", []string{"--grpc-addr=addr-sandbox", "--admin-addr=admin-sandbox", "--api-key-file=/dev-data/sandbox-api-key"}},
	}
	for _, tt := range tests {
		got := args(tt.process)
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s lacks %s; got %q", tt.process, w, got)
			}
		}
	}
	if got := args("consent"); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--consent-addr") }) {
		t.Errorf("consent, which needs no consent service, got %q", got)
	}
	if got := args("balance"); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--nats-url") }) {
		t.Errorf("balance, which needs no bus, got %q", got)
	}
}
