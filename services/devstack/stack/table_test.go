package stack

import (
	"slices"
	"strings"
	"testing"
	"time"

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
	tbl := append(Table(), Process{Name: "loyalty", Package: "./loyalty", Kind: Service, Port: 9107, AdminPort: 9207,
		Needs: bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true}, Calls: []string{"receipts"}})
	s := &Stack{opts: Options{DataDir: "/dev-data", CarrierStep: 500 * time.Millisecond}, table: tbl, addrs: map[string]string{}, GatewayURL: "http://gw",
		Vault: VaultRef{Addr: "http://vault", Token: "t"}, NATS: NATSRef{URL: "nats://nats", Token: "n"},
		serviceSecret: "secret", banksFile: "/dev-data/banks.yaml"}
	for _, p := range tbl {
		s.addrs[p.Name] = "addr-" + p.Name
		s.addrs[p.Name+"-admin"] = "admin-" + p.Name
		if p.HTTPPort != 0 {
			s.addrs[p.Name+"-http"] = "http-" + p.Name
		}
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
		{"loyalty", []string{
			"--grpc-addr=addr-loyalty", "--admin-addr=admin-loyalty", "--issuer=http://gw", "--jwks-url=http://gw/.well-known/jwks.json",
			"--banks=/dev-data/banks.yaml", "--vault-addr=http://vault", "--consent-addr=addr-consent",
			"--token-url=http://gw/oauth/token", "--client-id=loyalty", "--data-dir=/dev-data/loyalty",
			"--nats-url=nats://nats", "--partner-clients=demo-partner,demo-shop", "--receipts-addr=addr-receipts",
		}},
		{"support", []string{"--balance-addr=addr-balance", "--client-id=support"}},
		{"shipping", []string{
			"--grpc-addr=addr-shipping", "--admin-addr=admin-shipping", "--http-addr=http-shipping",
			"--vault-addr=http://vault", "--consent-addr=addr-consent", "--client-id=shipping", "--data-dir=/dev-data/shipping",
			"--nats-url=nats://nats",
		}},
		{"gateway", []string{"--addr=addr-gateway", "--loyalty-addr=addr-loyalty", "--support-addr=addr-support", "--shipping-addr=addr-shipping",
			"--shipping-http-addr=http-shipping", "--receipts-addr=addr-receipts", "--balance-addr=addr-balance",
			"--dev-service-clients=consent,balance,receipts,shipping,webhooks,support,loyalty", "--dev-partner-clients=demo-partner,demo-shop"}},
		{"consent", []string{"--internal-clients=balance,receipts,shipping,support,loyalty", "--data-dir=/dev-data/consent"}},
		{"sandbox", []string{"--grpc-addr=addr-sandbox", "--admin-addr=admin-sandbox", "--api-key-file=/dev-data/sandbox-api-key",
			"--carrier-push-url=http://gw/v1/carriers/sandbox/trackingEvents", "--carrier-secret-file=/dev-data/sandbox-carrier-secret",
			"--carrier-step=500ms"}},
	}
	for _, tt := range tests {
		got := args(tt.process)
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s lacks %s; got %q", tt.process, w, got)
			}
		}
	}
	for _, p := range tbl {
		if p.Kind == Web {
			continue // plain HTTP on loopback, no certificate (web_test.go)
		}
		if !slices.Contains(s.args(p), "--vault-addr=http://vault") {
			t.Errorf("%s gets no --vault-addr, where its TLS certificate comes from", p.Name)
		}
	}
	if got := args("consent"); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--consent-addr") }) {
		t.Errorf("consent, which needs no consent service, got %q", got)
	}
	if got := args("balance"); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--nats-url") }) {
		t.Errorf("balance, which needs no bus, got %q", got)
	}
	for _, name := range []string{"loyalty", "support", "balance", "sandbox"} {
		if got := args(name); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--http-addr") }) {
			t.Errorf("%s, which has no public HTTP listener, got %q", name, got)
		}
	}
	if got := args("gateway"); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--loyalty-http-addr") }) {
		t.Errorf("the gateway routes HTTP to a service without a public listener: %q", got)
	}
}

// TestTheShippingEntry: the shipping service is in the table with its
// carrier listener, and the sandbox plays the carrier that pushes to it.
func TestTheShippingEntry(t *testing.T) {
	t.Parallel()
	tbl := Table()
	i := slices.IndexFunc(tbl, func(p Process) bool { return p.Name == "shipping" })
	if i < 0 {
		t.Fatal("no shipping in the table")
	}
	p := tbl[i]
	if p.Port != 9105 || p.AdminPort != 9205 || p.HTTPPort != 9305 || p.Kind != Service ||
		!p.Needs.Consent || !p.Needs.Storage || !p.Needs.Bus || !p.Needs.HTTP || !p.Needs.Vault {
		t.Errorf("shipping = %+v", p)
	}
	if j := slices.IndexFunc(tbl, func(p Process) bool { return p.Name == "receipts" }); j < 0 || j > i {
		t.Errorf("shipping at %d, receipts at %d; want shipping after receipts", i, j)
	}
	if j := slices.IndexFunc(tbl, func(p Process) bool { return p.Carrier == "sandbox" }); j < 0 || tbl[j].Name != "sandbox" {
		t.Error("the sandbox does not play the sandbox carrier")
	}
	ports := map[int]string{}
	for _, p := range tbl {
		for _, port := range []int{p.Port, p.AdminPort, p.HTTPPort} {
			if port == 0 {
				continue
			}
			if other, dup := ports[port]; dup {
				t.Errorf("port %d is both %s's and %s's", port, other, p.Name)
			}
			ports[port] = p.Name
		}
	}
}

func TestTableEntriesAgreeWithThemselves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Process
		want string
	}{
		{"HTTP without a port", Process{Name: "x", Kind: Service, Needs: bootstrap.Needs{HTTP: true}}, "needs both Needs.HTTP and an HTTPPort"},
		{"a port without HTTP", Process{Name: "x", Kind: Service, HTTPPort: 9399}, "needs both Needs.HTTP and an HTTPPort"},
		{"a carrier that is no bank", Process{Name: "x", Kind: Service, Carrier: "x"}, "only a Bank plays a carrier"},
	}
	for _, tt := range tests {
		if err := checkTable(append(Table(), tt.p)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestSecretsGoInTheEnvironment: no process of the stack gets a secret on
// its command line, which every user of the machine can read; each gets
// the ones it needs as the environment variables of their flags.
func TestSecretsGoInTheEnvironment(t *testing.T) {
	t.Parallel()
	s := &Stack{table: Table(), addrs: map[string]string{}, GatewayURL: "https://gw", Vault: VaultRef{Addr: "http://vault", Token: "vault-token"},
		serviceSecret: "service-secret", pageTokenKey: "page-token-key"}
	secrets := []string{"vault-token", "service-secret", "page-token-key", DevPartnerSecret}
	want := map[string][]string{
		"sandbox": {"BANKBRIDGE_VAULT_TOKEN=vault-token"},
		"gateway": {"BANKBRIDGE_VAULT_TOKEN=vault-token", "BANKBRIDGE_DEV_SERVICE_SECRET=service-secret", "BANKBRIDGE_DEV_PARTNER_SECRET=" + DevPartnerSecret},
		"consent": {"BANKBRIDGE_VAULT_TOKEN=vault-token", "BANKBRIDGE_PAGE_TOKEN_KEY=page-token-key"},
		"balance": {"BANKBRIDGE_VAULT_TOKEN=vault-token", "BANKBRIDGE_PAGE_TOKEN_KEY=page-token-key", "BANKBRIDGE_CLIENT_SECRET=service-secret"},
	}
	for _, p := range Table() {
		for _, a := range s.args(p) {
			for _, secret := range secrets {
				if strings.Contains(a, secret) {
					t.Errorf("%s's argument %q holds a secret", p.Name, a)
				}
			}
		}
		env := s.secretEnv(p)
		for _, w := range want[p.Name] {
			if !slices.Contains(env, w) {
				t.Errorf("%s's environment lacks %s; got %q", p.Name, w, env)
			}
		}
	}
	if env := s.secretEnv(Table()[slices.IndexFunc(Table(), func(p Process) bool { return p.Name == "consent" })]); slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "BANKBRIDGE_CLIENT_SECRET=") }) {
		t.Errorf("consent, which calls no consent service, gets a client secret: %q", env)
	}
}
