// Command bankbridge-conformance runs bankbridge's adapter conformance kit
// against a remote bank adapter (a gRPC server speaking
// bankbridge.adapter.v1, in any language), and writes a report the
// integrator can attach to their submission.
//
//	bankbridge-conformance --addr bank.example:9400 \
//	    --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem \
//	    --api-key-file api-key --fixtures fixtures.yaml
//
// The fixtures file describes the test customers the bank provides (see
// fixtures.example.yaml beside the kit). The command prints a line per
// check and a summary, and writes junit.xml and report.md to --report-dir:
// every check with PASS, FAIL, or SKIP and why it was skipped (a
// capability not declared, a fixture missing), so that a pass never hides
// an empty test.
//
// Exit status: 0 when no check failed (each one passed or was skipped with
// its reason), 1 when a check failed, 2 on a usage error, an adapter that
// cannot be reached, or a run cut short by --timeout.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// Exit statuses.
const (
	exitPassed = 0
	exitFailed = 1
	exitUsage  = 2
)

// reachTimeout bounds the first call, which tells whether the adapter
// can be reached at all.
const reachTimeout = 15 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is the command's flags.
type config struct {
	addr, tlsCA, tlsCert, tlsKey, serverName string
	insecure                                 bool
	apiKeyFile, fixtures, reportDir          string
	timeout                                  time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bankbridge-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "", "`host:port` of the adapter's gRPC server (required)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM `file` of the CA that signs the adapter's certificate (default: the system's roots)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM `file` of the client certificate to present, for mutual TLS (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM `file` of the client certificate's private key (with --tls-cert)")
	fs.StringVar(&c.serverName, "server-name", "", "`name` the adapter's certificate must carry (default: the host of --addr)")
	fs.BoolVar(&c.insecure, "insecure", false, "plaintext, no TLS: only to an adapter on a loopback address")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "", "`file` holding the API key bankbridge presents to the adapter (metadata bankbridge-credential-api_key)")
	fs.StringVar(&c.fixtures, "fixtures", "", "the fixtures `file.yaml`: the bank's test customers (required; see fixtures.example.yaml)")
	fs.StringVar(&c.reportDir, "report-dir", "conformance-report", "`directory` to write junit.xml and report.md to")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bankbridge-conformance --addr host:port --fixtures fixtures.yaml [flags]\n\n"+
			"Runs bankbridge's adapter conformance kit against a remote adapter and writes junit.xml and report.md.\n"+
			"Exit status: 0 no check failed, 1 a check failed, 2 usage or connection error.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.addr == "":
		return nil, errors.New("--addr is required")
	case c.fixtures == "":
		return nil, errors.New("--fixtures is required")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case c.insecure && (c.tlsCA != "" || c.tlsCert != "" || c.serverName != ""):
		return nil, errors.New("--insecure turns TLS off: it does not go with --tls-ca, --tls-cert or --server-name")
	case c.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	if c.insecure && !loopback(host) {
		return nil, fmt.Errorf("--insecure is for an adapter on a loopback address only, not %q: use TLS", host)
	}
	return c, nil
}

// loopback says whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transport returns the connection's credentials.
func (c *config) transport() (credentials.TransportCredentials, error) {
	if c.insecure {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if c.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}

// readAPIKey reads the key from path: one word of printable ASCII.
func readAPIKey(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--api-key-file: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		return "", fmt.Errorf("--api-key-file %s is empty", path)
	}
	for _, r := range key {
		if r <= ' ' || r > '~' {
			return "", fmt.Errorf("--api-key-file %s: the key must be one word of printable ASCII", path)
		}
	}
	return key, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPassed
	}
	if err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance:", err)
		return exitUsage
	}
	fx, err := loadFixtures(cfg.fixtures)
	if err != nil {
		fmt.Fprintf(stderr, "bankbridge-conformance: --fixtures %s: %v\n", cfg.fixtures, err)
		return exitUsage
	}
	if fx.APIKey, err = readAPIKey(cfg.apiKeyFile); err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance:", err)
		return exitUsage
	}
	creds, err := cfg.transport()
	if err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance:", err)
		return exitUsage
	}
	conn, err := grpc.NewClient(cfg.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance: --addr:", err)
		return exitUsage
	}
	defer conn.Close()
	client := adapterv1.NewBankAdapterServiceClient(conn)
	if err := reach(ctx, client, fx.APIKey); err != nil {
		fmt.Fprintf(stderr, "bankbridge-conformance: cannot reach the adapter at %s: %v\n", cfg.addr, err)
		return exitUsage
	}
	if err := os.MkdirAll(cfg.reportDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance: --report-dir:", err)
		return exitUsage
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, errors.New("--timeout reached"))
	defer cancel()
	fmt.Fprintf(stdout, "bankbridge-conformance: running %d checks against %s\n", len(conformance.Checks()), cfg.addr)
	rep, runErr := conformance.RunChecks(runCtx, client, fx, stdout)
	if err := writeReports(cfg.reportDir, rep); err != nil {
		fmt.Fprintln(stderr, "bankbridge-conformance:", err)
		return exitUsage
	}
	fmt.Fprint(stdout, "\n"+rep.Summary())
	fmt.Fprintf(stdout, "report: %s, %s\n", filepath.Join(cfg.reportDir, "report.md"), filepath.Join(cfg.reportDir, "junit.xml"))
	switch {
	case runErr != nil:
		fmt.Fprintln(stderr, "bankbridge-conformance:", runErr)
		return exitUsage
	case !rep.Passed():
		return exitFailed
	}
	return exitPassed
}

// reach makes one call to learn whether the adapter answers at all: any
// answer from the adapter, even an error it returns, will do; a failure
// of the connection (refused, TLS handshake, no answer) will not.
func reach(ctx context.Context, client adapterv1.BankAdapterServiceClient, apiKey string) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	if apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, apiKey)
	}
	_, err := client.GetAdapterInfo(ctx, &adapterv1.GetAdapterInfoRequest{})
	if err == nil || apierr.Info(err) != nil {
		return nil
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return err
	}
	return nil // the adapter answered, badly: the kit says how
}

// writeReports writes junit.xml and report.md to dir.
func writeReports(dir string, rep *conformance.Report) error {
	for name, write := range map[string]func(io.Writer) error{"junit.xml": rep.WriteJUnit, "report.md": rep.WriteMarkdown} {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
