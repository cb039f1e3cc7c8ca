// Package stack starts bankbridge's whole dev stack as real processes on
// 127.0.0.1: a Vault (in-memory dev server, or one you point it at), the
// event bus (one NATS server with JetStream, embedded in the stack's own
// process, for every service), then every process of the table (table.go)
// — the sandbox bank, the gateway and every service — wired the way a
// production deployment is: JWTs checked against the gateway's dev issuer,
// bank, carrier and NATS credentials read from Vault, real gRPC between
// processes.
// `make dev` runs it through ../main.go; the end-to-end tests run it too.
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/limits"
	"github.com/bankbridge/bankbridge/services/platform/pseudonym"
)

// Options say where things are and which addresses to use.
type Options struct {
	// Root is the repository root (the directory holding go.work).
	Root string
	// DataDir holds generated config, keys, binaries and SQLite files;
	// default <Root>/.dev.
	DataDir string

	// FreePorts puts every listener on a port free at start instead of the
	// table's (tests).
	FreePorts bool
	// VaultAddr is the own dev Vault's address; default 127.0.0.1:8200 (a
	// free port with FreePorts).
	VaultAddr string
	// NATSAddr is the stack's NATS server's address; default
	// 127.0.0.1:4223 (a free port with FreePorts), beside a NATS server
	// one may run on the standard 4222.
	NATSAddr string

	// ExternalVault, when its Addr is set, is used instead of starting one:
	// the stack seeds the sandbox credential there (KV v2 mount bankbridge,
	// enabled if missing).
	ExternalVault VaultRef

	// CarrierStep is how often a Bank that plays a carrier (the sandbox)
	// advances its parcels and pushes their tracking events; default
	// DefaultCarrierStep. Tests shorten it.
	CarrierStep time.Duration

	// Env is added to every process's environment (e.g. OTEL_* for tests).
	Env []string
	// OTLPEndpoint, when set, is the host:port of an OTLP/gRPC receiver on
	// loopback (no TLS) every process exports its spans to, such as a
	// collector a test runs. JaegerBin sets it to Jaeger's; the two
	// exclude each other.
	OTLPEndpoint string
	// JaegerBin, when set, is a Jaeger v2 binary (make jaeger builds
	// bin/jaeger) the stack starts first, in memory, on 127.0.0.1:16686
	// (UI and query API; a free port with FreePorts), and every process
	// exports its spans to.
	JaegerBin string
	// Logs receives every process's output, each line prefixed by its name.
	// Each process's output also goes, unprefixed, to its own file,
	// DataDir/logs/<name>.log (Stack.LogFile), appended to across restarts.
	Logs io.Writer

	// AddrRewrite, when set, maps the address ("host:port") a process is
	// given for one of its dependencies to the one it dials instead, such
	// as a fault-injecting proxy in front of it (services/faults). dep
	// names the dependency: "vault", "nats", a Bank's name (its banks.yaml
	// endpoint), or a Service of the table ("consent", or one in Calls).
	// The stack itself keeps using the real addresses.
	AddrRewrite func(dep, addr string) string
	// ExtraArgs are flags added after the stack's own, by process name, at
	// every start of that process (Restart's extra flags come after them):
	// e.g. --database-url to run a service on PostgreSQL.
	ExtraArgs map[string][]string
}

// VaultRef is a Vault address and token.
type VaultRef struct {
	Addr, Token string
}

// NATSRef is a NATS server's URL and the token it takes.
type NATSRef struct {
	URL, Token string
}

// Stack is a running dev stack.
type Stack struct {
	opts       Options
	table      []Process
	addrs      map[string]string // "<name>" and "<name>-admin"
	GatewayURL string
	// JaegerURL is the trace viewer's UI and query API
	// (GET <JaegerURL>/api/traces/<trace id>), "" without one.
	JaegerURL string
	// OTLPEndpoint is where every process exports its spans (OTLP/gRPC,
	// host:port), "" when they are only recorded.
	OTLPEndpoint string
	Vault        VaultRef
	// NATS is the event bus every process that needs one connects to: a
	// NATS server with JetStream in the stack's process, its streams in
	// DataDir/nats, its token in Vault at bankbridge/nats.
	NATS NATSRef
	// SandboxKeyFile is the sandbox's accepted API key; rotate by writing a
	// new key to Vault (bankbridge/banks/sandbox api_key) and to this file.
	SandboxKeyFile string
	// SandboxCarrierSecretFile holds the signing secret ("whsec_...") the
	// sandbox signs its carrier pushes with, the one in Vault at
	// bankbridge/carriers/sandbox (key secret), for tests that push as the
	// sandbox carrier themselves.
	SandboxCarrierSecretFile string
	// DevClient is the client id of user tokens from POST /v1/dev/tokens.
	DevClient string
	// CAFile is the PEM certificate of the dev CA (Vault's PKI engine at
	// pki/) that signs every listener's certificate: curl --cacert it.
	CAFile string
	// CAPool holds that CA.
	CAPool *x509.CertPool

	http *http.Client // trusts CAPool

	serviceSecret string
	// pageTokenKey signs every service's page tokens: one key for the
	// stack, as replicas share one, so a token survives a restart.
	pageTokenKey string
	banksFile    string

	nats *events.Server

	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

const devClient = "dev-client"

// The dev stack's partners (payment providers, merchants, carriers): the
// gateway's dev issuer gives them client-credentials tokens with the dev
// partner secret, and every service knows them as partners. Two, so the
// tests can show one partner cannot push for another's users.
const (
	DevPartners      = "demo-partner,demo-shop"
	DevPartnerSecret = "dev-partner-secret"
)

// DevOperator is the on-call operator client the gateway's dev token
// endpoint mints with {"operator": true} (its default --dev-operator-client),
// and every service knows as an operator, so the look-up by trace id can be
// tried in dev.
const DevOperator = "dev-oncall"

// The purposes the dev client may declare: every one bankbridge serves.
const devClientPurposes = devClient + "=ACCOUNT_INFORMATION,PURCHASE_HISTORY,ORDER_TRACKING,CUSTOMER_SUPPORT,FRAUD_PREVENTION,CONSENT_MANAGEMENT"

// DevRateLimit is every rate limit of the dev stack's services
// (--rate-limit-*): far above the production defaults, so the end-to-end
// tests, load tests and benchmarks — thousands of calls from one client,
// a hundred a second from one user — measure the services, not the
// limits. Run a service with its own --rate-limit-* flags to try them.
const DevRateLimit = "100000/1s:100000"

// devRateLimits are the flags that set every rate limit to DevRateLimit.
func devRateLimits() []string {
	var args []string
	for _, b := range limits.Buckets() {
		args = append(args, "--"+b.Flag()+"="+DevRateLimit)
	}
	return args
}

// DefaultCarrierStep is Options.CarrierStep's default.
const DefaultCarrierStep = 2 * time.Second

func (o *Options) defaults() {
	if o.CarrierStep <= 0 {
		o.CarrierStep = DefaultCarrierStep
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.Root, ".dev")
	}
	if o.VaultAddr == "" {
		o.VaultAddr = "127.0.0.1:8200"
		if o.FreePorts {
			o.VaultAddr = mustFreeAddr()
		}
	}
	if o.NATSAddr == "" {
		o.NATSAddr = "127.0.0.1:4223"
		if o.FreePorts {
			o.NATSAddr = mustFreeAddr()
		}
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
}

// BinDir is where Build puts the binaries.
func (o Options) BinDir() string {
	if o.DataDir == "" {
		return filepath.Join(o.Root, ".dev", "bin")
	}
	return filepath.Join(o.DataDir, "bin")
}

// Build compiles every process of the table into BinDir, and checks that
// the Vault binary exists (make vault builds it).
func Build(ctx context.Context, o Options) error {
	o.defaults()
	if err := Compile(ctx, o); err != nil {
		return err
	}
	if _, err := os.Stat(vaultBin(o)); err != nil && o.ExternalVault.Addr == "" {
		return fmt.Errorf("no Vault server binary at %s: run `make vault` (or set VAULT_ADDR and VAULT_TOKEN)", vaultBin(o))
	}
	return nil
}

// Compile compiles every process of the table into BinDir: Build without
// the Vault check, for make dev to run while Vault itself compiles.
func Compile(ctx context.Context, o Options) error {
	o.defaults()
	if err := os.MkdirAll(o.BinDir(), 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", o.BinDir() + "/"}
	for _, p := range table {
		args = append(args, p.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(o.Root, "services")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func vaultBin(o Options) string { return filepath.Join(o.Root, "bin", "vault") }

// Start starts the stack from binaries Build made: Vault, then the table in
// order, each once it answers /readyz; it returns once the gateway reports
// every backend SERVING. On error, what started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	o.defaults()
	s = &Stack{opts: o, table: Table(), addrs: map[string]string{}, DevClient: devClient,
		serviceSecret: randomHex(16), pageTokenKey: randomHex(32)}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := checkTable(s.table); err != nil {
		return s, err
	}
	for _, p := range s.table {
		s.addrs[p.Name] = s.listenAddr(p.Port)
		if p.AdminPort != 0 {
			s.addrs[p.Name+"-admin"] = s.listenAddr(p.AdminPort)
		}
		if p.HTTPPort != 0 {
			s.addrs[p.Name+"-http"] = s.listenAddr(p.HTTPPort)
		}
	}
	s.GatewayURL = "https://" + s.addrs["gateway"]
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return s, err
	}
	switch {
	case o.JaegerBin != "" && o.OTLPEndpoint != "":
		return s, errors.New("dev stack: JaegerBin and OTLPEndpoint exclude each other")
	case o.JaegerBin != "":
		if err := s.startJaeger(ctx); err != nil {
			return s, err
		}
	default:
		s.OTLPEndpoint = o.OTLPEndpoint
	}
	if err := s.startVault(ctx); err != nil {
		return s, err
	}
	if err := s.setUpTLS(ctx); err != nil {
		return s, err
	}
	if err := s.startNATS(ctx); err != nil {
		return s, err
	}
	s.banksFile = filepath.Join(o.DataDir, "banks.yaml")
	if err := os.WriteFile(s.banksFile, []byte(s.banksYAML()), 0o600); err != nil {
		return s, err
	}
	for _, p := range s.table {
		if err := s.startProcess(ctx, p); err != nil {
			return s, err
		}
	}
	if err := waitHTTP(ctx, s.http, s.GatewayURL+"/healthz", 60*time.Second); err != nil {
		return s, fmt.Errorf("backends did not become healthy: %w", err)
	}
	return s, nil
}

// checkTable refuses a table where a process starts before what it needs,
// or whose entries contradict themselves.
func checkTable(t []Process) error {
	started := map[string]bool{}
	for _, p := range t {
		switch {
		case p.Needs.HTTP != (p.HTTPPort != 0):
			return fmt.Errorf("dev stack table: %s: a public HTTP listener needs both Needs.HTTP and an HTTPPort", p.Name)
		case p.Needs.HTTP && p.Kind != Service:
			return fmt.Errorf("dev stack table: %s: only a Service has a public HTTP listener", p.Name)
		case p.Carrier != "" && p.Kind != Bank:
			return fmt.Errorf("dev stack table: %s: only a Bank plays a carrier", p.Name)
		}
		for _, q := range p.Calls {
			if i := slices.IndexFunc(t, func(o Process) bool { return o.Name == q }); i < 0 || t[i].Kind != Service {
				return fmt.Errorf("dev stack table: %s calls %s, which is not a Service of the table", p.Name, q)
			}
		}
		for _, d := range p.dependencies(t) {
			if !started[d] {
				return fmt.Errorf("dev stack table: %s needs %s, which must come before it", p.Name, d)
			}
		}
		started[p.Name] = true
	}
	return nil
}

func (s *Stack) listenAddr(port int) string {
	if s.opts.FreePorts {
		return mustFreeAddr()
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// Addr is the address of a process's gRPC listener (the gateway: HTTP).
func (s *Stack) Addr(name string) string { return s.addrs[name] }

// AdminAddr is the address of a process's admin listener (/healthz,
// /readyz, /metrics), "" without one.
func (s *Stack) AdminAddr(name string) string { return s.addrs[name+"-admin"] }

// HTTPAddr is the address of a service's public HTTP listener, "" without
// one.
func (s *Stack) HTTPAddr(name string) string { return s.addrs[name+"-http"] }

// CarrierPushURL is where a carrier pushes its tracking events: the
// gateway's carrier endpoint, passed through to the shipping service.
func (s *Stack) CarrierPushURL(carrier string) string {
	return s.GatewayURL + "/v1/carriers/" + carrier + "/trackingEvents"
}

// startVault starts the own dev Vault, unless an external one is given,
// and seeds in it every bank's API key and a fresh signing secret for
// every Bank that plays a carrier.
func (s *Stack) startVault(ctx context.Context) error {
	o := s.opts
	if o.ExternalVault.Addr != "" {
		s.Vault = o.ExternalVault
	} else {
		s.Vault = VaultRef{Addr: "http://" + o.VaultAddr, Token: randomHex(16)}
		// The root token in the environment, not on the command line.
		if err := s.start(ctx, "vault", vaultBin(o), []string{"VAULT_DEV_ROOT_TOKEN_ID=" + s.Vault.Token}, "server", "-dev",
			"-dev-listen-address="+o.VaultAddr, "-dev-no-store-token"); err != nil {
			return err
		}
		if err := waitHTTP(ctx, http.DefaultClient, s.Vault.Addr+"/v1/sys/health", 30*time.Second); err != nil {
			return fmt.Errorf("vault: %w", err)
		}
	}
	if err := s.vaultCLI(ctx, "secrets", "enable", "-path=bankbridge", "kv-v2"); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		return fmt.Errorf("enable KV v2 at bankbridge/: %w", err)
	}
	// The consent service signs access log heads with this Transit key (its
	// --access-log-key default); writing an existing key changes nothing.
	if err := s.vaultCLI(ctx, "secrets", "enable", "transit"); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		return fmt.Errorf("enable Transit at transit/: %w", err)
	}
	if err := s.vaultCLI(ctx, "write", "transit/keys/bankbridge-access-log", "type=ed25519"); err != nil {
		return fmt.Errorf("create the access log signing key: %w", err)
	}
	// The consent service's keys of request fingerprints and login hashes.
	if err := s.kvPut(ctx, "keys/consent", map[string]any{"code_hmac_key": randomHex(32), "login_hmac_key": randomHex(32)}); err != nil {
		return fmt.Errorf("seed the consent service's keys: %w", err)
	}
	// The key of the pseudonymous user and link references in every
	// service's logs (platform/pseudonym): one key, one reference per user.
	if err := s.kvPut(ctx, pseudonym.Path, map[string]any{pseudonym.KeyField: randomHex(32)}); err != nil {
		return fmt.Errorf("seed the pseudonym key: %w", err)
	}
	for _, p := range s.table {
		if p.Kind != Bank {
			continue
		}
		key := randomHex(24)
		if err := s.kvPut(ctx, "banks/"+p.Name, map[string]any{"api_key": key}); err != nil {
			return fmt.Errorf("seed %s credential: %w", p.Name, err)
		}
		if err := os.WriteFile(s.keyFile(p.Name), []byte(key+"\n"), 0o600); err != nil {
			return err
		}
		if p.Carrier == "" {
			continue
		}
		secret := stdwebhook.NewSecret()
		if err := s.kvPut(ctx, "carriers/"+p.Carrier, map[string]any{"secret": secret}); err != nil {
			return fmt.Errorf("seed carrier %s's signing secret: %w", p.Carrier, err)
		}
		if err := os.WriteFile(s.CarrierSecretFile(p.Carrier), []byte(secret+"\n"), 0o600); err != nil {
			return err
		}
	}
	s.SandboxKeyFile = s.keyFile("sandbox")
	s.SandboxCarrierSecretFile = s.CarrierSecretFile("sandbox")
	return nil
}

// startNATS starts the stack's event bus in this process and puts its
// token in Vault, where services read it as they would a cluster's.
func (s *Stack) startNATS(ctx context.Context) error {
	token := randomHex(16)
	srv, err := events.Embedded(filepath.Join(s.opts.DataDir, "nats"), events.WithListenAddr(s.opts.NATSAddr), events.WithToken(token))
	if err != nil {
		return fmt.Errorf("NATS on %s: %w", s.opts.NATSAddr, err)
	}
	s.nats = srv
	s.NATS = NATSRef{URL: srv.URL(), Token: token}
	if err := s.kvPut(ctx, credentials.NATSPath, map[string]any{"token": token}); err != nil {
		return fmt.Errorf("seed the NATS token: %w", err)
	}
	return nil
}

// RestartNATS stops the stack's event bus, waits down, and starts it again
// on the same address, directory and token, as a NATS server restart does:
// every connection drops, the streams' messages stay on disk.
func (s *Stack) RestartNATS(ctx context.Context, down time.Duration) error {
	s.mu.Lock()
	srv := s.nats
	s.nats = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	srv, err := events.Embedded(filepath.Join(s.opts.DataDir, "nats"), events.WithListenAddr(s.opts.NATSAddr), events.WithToken(s.NATS.Token))
	if err != nil {
		return fmt.Errorf("NATS on %s: %w", s.opts.NATSAddr, err)
	}
	s.mu.Lock()
	s.nats = srv
	s.mu.Unlock()
	return nil
}

func (s *Stack) keyFile(bank string) string {
	return filepath.Join(s.opts.DataDir, bank+"-api-key")
}

// CarrierSecretFile is the file holding the signing secret of a carrier
// the stack seeded (a Bank's Carrier), as in Vault.
func (s *Stack) CarrierSecretFile(carrier string) string {
	return filepath.Join(s.opts.DataDir, carrier+"-carrier-secret")
}

// banksYAML lists every Bank of the table, as remote banks reached over
// mutual TLS: their certificates are the dev CA's, for their name, and
// the services present their own.
func (s *Stack) banksYAML() string {
	var b strings.Builder
	b.WriteString("# Written by the dev stack. See adapters/README.md for every field.\nbanks:\n")
	for _, p := range s.table {
		if p.Kind == Bank {
			fmt.Fprintf(&b, banksEntry, p.Name, strings.ToUpper(p.Name[:1])+p.Name[1:]+" Bank", s.dialAddr(p.Name, s.Addr(p.Name)), s.CAFile, p.Name)
		}
	}
	return b.String()
}

const banksEntry = `  - id: %s
    display_name: %s
    kind: remote
    endpoint: %s
    timeout: 5s
    # Generous for load tests on one machine (make bench-ratio passes 3,600
    # calls/s through it); a real bank sets its own.
    rate_limit:
      per_second: 20000
      burst: 20000
    tls:
      ca_file: %s
      server_name: %s
      client_cert_from_service: true
`

// args are the flags the stack gives p, derived from its kind and needs.
func (s *Stack) args(p Process) []string {
	var args []string
	switch p.Kind {
	case Bank:
		args = []string{"--grpc-addr=" + s.Addr(p.Name), "--api-key-file=" + s.keyFile(p.Name)}
		if p.Carrier != "" {
			step := s.opts.CarrierStep
			if step <= 0 {
				step = DefaultCarrierStep
			}
			args = append(args, "--carrier-push-url="+s.CarrierPushURL(p.Carrier),
				"--carrier-secret-file="+s.CarrierSecretFile(p.Carrier), "--carrier-step="+step.String())
		}
	case Gateway:
		var clients []string
		for _, q := range s.table {
			if q.Kind == Service {
				clients = append(clients, q.Name)
				args = append(args, "--"+q.Name+"-addr="+s.Addr(q.Name))
			}
			if q.Kind == Service && q.Needs.HTTP {
				args = append(args, "--"+q.Name+"-http-addr="+s.HTTPAddr(q.Name))
			}
		}
		args = append([]string{"--addr=" + s.Addr(p.Name), "--dev-mode", "--dev-issuer=" + s.GatewayURL,
			"--dev-service-clients=" + strings.Join(clients, ","), "--dev-partner-clients=" + DevPartners}, args...)
	case Service:
		var internal []string
		for _, q := range s.table {
			if q.Needs.Consent {
				internal = append(internal, q.Name)
			}
		}
		args = []string{
			"--grpc-addr=" + s.Addr(p.Name), "--dev-mode", "--drain-delay=0s",
			"--issuer=" + s.GatewayURL, "--jwks-url=" + s.GatewayURL + "/.well-known/jwks.json",
			"--client-purposes=" + devClientPurposes, "--internal-clients=" + strings.Join(internal, ","),
			"--partner-clients=" + DevPartners, "--operator-clients=" + DevOperator,
			"--reflection", // grpcurl without .proto files; off by default
		}
		args = append(args, devRateLimits()...)
		if p.Needs.HTTP {
			args = append(args, "--http-addr="+s.HTTPAddr(p.Name))
		}
	case Web:
		partner, _, _ := strings.Cut(DevPartners, ",")
		args = []string{"--addr=" + s.Addr(p.Name), "--gateway-url=" + s.GatewayURL, "--ca-file=" + s.CAFile, "--partner-client=" + partner}
		for _, q := range s.table {
			if q.Kind == Bank && q.AdminPort != 0 {
				args = append(args, "--sandbox-admin-url=https://"+s.AdminAddr(q.Name))
				break
			}
		}
		return append(append(args, p.Flags...), s.opts.ExtraArgs[p.Name]...)
	}
	if p.AdminPort != 0 {
		args = append(args, "--admin-addr="+s.AdminAddr(p.Name))
	} else if p.Kind == Bank {
		args = append(args, "--admin-addr=")
	}
	// Every process: its TLS certificate comes from Vault; its profiles
	// on its admin listener (the gateway: its own, in dev mode).
	args = append(args, "--vault-addr="+s.dialURL("vault", s.Vault.Addr), "--pprof")
	if p.Needs.Bus {
		args = append(args, "--nats-url="+s.dialURL("nats", s.NATS.URL))
	}
	if p.Needs.Banks {
		args = append(args, "--banks="+s.banksFile)
	}
	if p.Needs.Consent {
		args = append(args, "--consent-addr="+s.dialAddr("consent", s.Addr("consent")), "--token-url="+s.GatewayURL+"/oauth/token",
			"--client-id="+p.Name)
	}
	if p.Needs.Storage {
		args = append(args, "--data-dir="+filepath.Join(s.opts.DataDir, p.Name))
	}
	for _, q := range p.Calls {
		args = append(args, "--"+q+"-addr="+s.dialAddr(q, s.Addr(q)))
	}
	args = append(args, p.Flags...)
	return append(args, s.opts.ExtraArgs[p.Name]...)
}

// dialAddr is the address a process dials for dep at addr: the one
// Options.AddrRewrite gives, when set.
func (s *Stack) dialAddr(dep, addr string) string {
	if s.opts.AddrRewrite == nil {
		return addr
	}
	return s.opts.AddrRewrite(dep, addr)
}

// dialURL is dialAddr for a URL: its host:port rewritten, the rest kept.
func (s *Stack) dialURL(dep, raw string) string {
	if s.opts.AddrRewrite == nil {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.Host = s.dialAddr(dep, u.Host)
	return u.String()
}

// startProcess starts p with extra flags after its own, and its secrets
// in its environment, and waits until it answers /readyz.
func (s *Stack) startProcess(ctx context.Context, p Process, extra ...string) error {
	if err := s.start(ctx, p.Name, filepath.Join(s.opts.BinDir(), filepath.Base(p.Package)), append(append(s.otlpEnv(), s.opts.Env...), s.secretEnv(p)...),
		append(s.args(p), extra...)...); err != nil {
		return err
	}
	readyz := "https://" + s.Addr(p.Name) + "/readyz"
	if p.Kind == Web {
		readyz = "http://" + s.Addr(p.Name) + "/readyz"
	} else if p.Kind != Gateway {
		if p.AdminPort == 0 {
			return nil
		}
		readyz = "https://" + s.AdminAddr(p.Name) + "/readyz"
	}
	if err := waitHTTP(ctx, s.http, readyz, 60*time.Second); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}

// vaultCLI runs the real vault binary as a client.
func (s *Stack) vaultCLI(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, vaultBin(s.opts), args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Vault.Addr, "VAULT_TOKEN="+s.Vault.Token)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vault %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Stack) start(ctx context.Context, name, bin string, env []string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	logFile, err := s.openLog(name)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			// One file per process, so that one service's lines are read
			// alone; and the mixed, prefixed stream for the terminal.
			_, _ = fmt.Fprintf(logFile, "%s\n", sc.Bytes())
			fmt.Fprintf(s.opts.Logs, "%-8s| %s\n", name, sc.Text())
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	// A process that dies at once (bad flag, port taken) is an error now,
	// not a mystery later.
	select {
	case <-p.done:
		return fmt.Errorf("%s exited at start (%v); its output is above", name, cmd.ProcessState)
	case <-time.After(200 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// LogFile is the file process name's output goes to: every line it wrote
// to stdout and stderr (the JSON log lines), unprefixed.
func (s *Stack) LogFile(name string) string {
	return filepath.Join(s.opts.DataDir, "logs", name+".log")
}

// openLog opens process name's log file for appending.
func (s *Stack) openLog(name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(s.opts.DataDir, "logs"), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.LogFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file of %s: %w", name, err)
	}
	return f, nil
}

// StopProcess stops one process of the stack by name ("sandbox",
// "balance", ...) with SIGTERM, as an outage or a rolling deploy would, and
// returns once it has exited. The error says when it did not exit cleanly
// (a non-zero status, or killed after 10 seconds).
func (s *Stack) StopProcess(name string) error {
	s.mu.Lock()
	var p *proc
	for i, q := range s.procs {
		if q.name == name {
			p = q
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no process %q in the stack", name)
	}
	return stop(p)
}

// Signal sends sig to the running process name: SIGSTOP and SIGCONT freeze
// and thaw it, as a stalled host or a long GC pause would.
func (s *Stack) Signal(name string, sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.name == name {
			return p.cmd.Process.Signal(sig)
		}
	}
	return fmt.Errorf("no process %q in the stack", name)
}

// PID is the process id of the running process name, 0 when none runs
// (for tests that read its resource use from /proc).
func (s *Stack) PID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.name == name {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

// DataDir is the directory the stack's processes keep their state in; a
// process with storage uses DataDir/<name>.
func (s *Stack) DataDir() string { return s.opts.DataDir }

// BinDir is where the stack's binaries are.
func (s *Stack) BinDir() string { return s.opts.BinDir() }

// Restart starts a stopped process of the table again, with extra flags
// after the stack's, and waits until it is ready.
func (s *Stack) Restart(ctx context.Context, name string, extra ...string) error {
	for _, p := range s.table {
		if p.Name == name {
			return s.startProcess(ctx, p, extra...)
		}
	}
	return fmt.Errorf("no process %q in the table", name)
}

// Stop sends SIGTERM to every process, newest first, and kills what has not
// exited after 10 seconds; then it stops the event bus.
func (s *Stack) Stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	nats := s.nats
	s.nats = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = stop(procs[i])
	}
	if nats != nil {
		nats.Close()
	}
}

func stop(p *proc) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within 10s of SIGTERM; killed", p.name)
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("%s exited with %v after SIGTERM", p.name, p.cmd.ProcessState)
	}
	return nil
}

func waitHTTP(ctx context.Context, client *http.Client, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %w", limit, last)
}

// FreeAddr returns a 127.0.0.1 address with a port free right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func mustFreeAddr() string {
	a, err := FreeAddr()
	if err != nil {
		panic(err)
	}
	return a
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ErrNoRoot is returned by FindRoot outside the repository.
var ErrNoRoot = errors.New("not inside the bankbridge repository (no go.work found)")

// FindRoot walks up from dir to the directory holding go.work.
func FindRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRoot
		}
		dir = parent
	}
}
