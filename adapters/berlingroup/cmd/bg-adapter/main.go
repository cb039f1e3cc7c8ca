// Command bg-adapter serves the Berlin Group NextGenPSD2 adapter
// (adapters/berlingroup) as a remote bankbridge adapter: a
// bankbridge.adapter.v1 gRPC server in front of one bank's NextGenPSD2 API.
//
// Towards the bank it is a TPP: --bank-url is the API's base URL, and
// --bank-cert/--bank-key the client certificate it presents (mutual TLS;
// a QWAC at a real ASPSP), --bank-ca the CAs it trusts for the bank's
// certificate (default: the system's).
//
// Towards bankbridge it serves gRPC on --listen with TLS (--tls-cert,
// --tls-key), and mutual TLS when --tls-client-ca is given: only client
// certificates of that CA (bankbridge's services) get in. --plaintext
// serves without TLS, on a loopback address only. --api-key-file holds
// the key bankbridge must present (metadata bankbridge-credential-api_key);
// the file is polled every --api-key-poll, and the previous key stays
// accepted for --api-key-grace after it changes. --cursor-key-file holds
// the key that seals transaction cursors (64 hex digits, the same on every
// replica); without it cursors do not outlive the process.
//
// Every flag can also be set as a BANKBRIDGE_* environment variable
// (--bank-url is BANKBRIDGE_BANK_URL); a flag wins.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/berlingroup"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/internal/flagenv"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bg-adapter:", err)
		os.Exit(1)
	}
}

type config struct {
	listen                            string
	bankURL, bankCert, bankKey        string
	bankCA                            string
	bankTimeout                       time.Duration
	tlsCert, tlsKey, tlsClientCA      string
	plaintext                         bool
	apiKeyFile                        string
	apiKeyGrace, apiKeyPoll           time.Duration
	bankID, displayName, psuIPAddress string
	scaMethods                        string
	cursorKeyFile                     string
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bg-adapter", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9400", "address to serve the adapter's gRPC on")
	fs.StringVar(&c.bankURL, "bank-url", "", "base URL of the bank's NextGenPSD2 API, https (required)")
	fs.StringVar(&c.bankCert, "bank-cert", "", "client certificate presented to the bank, PEM (required)")
	fs.StringVar(&c.bankKey, "bank-key", "", "its private key, PEM (required)")
	fs.StringVar(&c.bankCA, "bank-ca", "", "PEM CAs for the bank's certificate; default the system's")
	fs.DurationVar(&c.bankTimeout, "bank-timeout", 10*time.Second, "cap on each HTTP call to the bank")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "the adapter's gRPC server certificate, PEM")
	fs.StringVar(&c.tlsKey, "tls-key", "", "its private key, PEM")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "PEM CA of the client certificates bankbridge presents; set: mutual TLS")
	fs.BoolVar(&c.plaintext, "plaintext", false, "serve gRPC without TLS (loopback --listen only)")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "", "file holding the API key bankbridge must present; empty: no key checked")
	fs.DurationVar(&c.apiKeyGrace, "api-key-grace", 10*time.Minute, "how long the previous key stays accepted after the file changes")
	fs.DurationVar(&c.apiKeyPoll, "api-key-poll", 5*time.Second, "how often the key file is read")
	fs.StringVar(&c.bankID, "bank-id", "xs2a-sandbox", "the bank's id in banks.yaml")
	fs.StringVar(&c.displayName, "display-name", "XS2A Sandbox Bank", "the bank's name as its customers know it")
	fs.StringVar(&c.psuIPAddress, "psu-ip-address", "0.0.0.0", "PSU-IP-Address sent on consent creation (bankbridge does not know the user's)")
	fs.StringVar(&c.scaMethods, "sca-methods", "otp,decoupled,redirect", "SCA approaches the bank offers, its default first")
	fs.StringVar(&c.cursorKeyFile, "cursor-key-file", "", "file holding the transaction cursors' key, 64 hex digits, the same on every replica; empty: a random key per process")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := flagenv.Apply(fs); err != nil {
		return c, err
	}
	switch {
	case c.bankURL == "" || c.bankCert == "" || c.bankKey == "":
		return c, errors.New("--bank-url, --bank-cert and --bank-key are required")
	case c.plaintext && (c.tlsCert != "" || c.tlsClientCA != ""):
		return c, errors.New("--plaintext with --tls-cert or --tls-client-ca")
	case !c.plaintext && (c.tlsCert == "" || c.tlsKey == ""):
		return c, errors.New("--tls-cert and --tls-key are required (or --plaintext on loopback)")
	}
	if c.plaintext {
		host, _, err := net.SplitHostPort(c.listen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return c, errors.New("--plaintext needs a loopback --listen address")
		}
	}
	return c, nil
}

var scaMethodNames = map[string]adapterv1.ScaMethod{
	"otp": adapterv1.ScaMethod_SCA_METHOD_OTP, "embedded": adapterv1.ScaMethod_SCA_METHOD_OTP,
	"decoupled": adapterv1.ScaMethod_SCA_METHOD_DECOUPLED, "redirect": adapterv1.ScaMethod_SCA_METHOD_REDIRECT,
}

func serverTLS(c config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCA != "" {
		pemBytes, err := os.ReadFile(c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pemBytes) {
			return nil, errors.New("client CA: no PEM certificate")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func run(ctx context.Context, args []string) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var methods []adapterv1.ScaMethod
	for _, name := range strings.Split(c.scaMethods, ",") {
		m, ok := scaMethodNames[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("--sca-methods: unknown method %q (otp, decoupled, redirect)", name)
		}
		methods = append(methods, m)
	}
	var cursorKey []byte
	if c.cursorKeyFile != "" {
		raw, err := os.ReadFile(c.cursorKeyFile)
		if err != nil {
			return fmt.Errorf("cursor key: %w", err)
		}
		if cursorKey, err = hex.DecodeString(strings.TrimSpace(string(raw))); err != nil || len(cursorKey) != adapters.CursorKeySize {
			return fmt.Errorf("cursor key: %s must hold %d bytes as hex", c.cursorKeyFile, adapters.CursorKeySize)
		}
	}
	bankTLS, err := berlingroup.ClientTLS(c.bankCert, c.bankKey, c.bankCA)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = bankTLS
	adapter, err := berlingroup.New(berlingroup.Options{
		BankID: c.bankID, DisplayName: c.displayName, BaseURL: c.bankURL,
		HTTPClient:   &http.Client{Transport: transport, Timeout: c.bankTimeout},
		PSUIPAddress: c.psuIPAddress, ScaMethods: methods, CursorKey: cursorKey,
	})
	if err != nil {
		return err
	}
	opts := []adapters.ServerOption{adapters.WithLogger(logger)}
	if c.apiKeyFile != "" {
		keys, err := adapters.NewKeyFile(c.apiKeyFile, c.apiKeyGrace)
		if err != nil {
			return err
		}
		go keys.Watch(ctx, c.apiKeyPoll, nil, func(err error) { logger.Warn("api key file", "error", err) })
		opts = append(opts, adapters.WithAPIKeys(keys.Keys))
	}
	serverOpts := []grpc.ServerOption{adapters.KeepaliveServerOption()}
	if !c.plaintext {
		cfg, err := serverTLS(c)
		if err != nil {
			return err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	srv := grpc.NewServer(serverOpts...)
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(adapter, opts...))
	lis, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	logger.Info("bg-adapter serving", "addr", lis.Addr().String(), "bank_url", c.bankURL, "mutual_tls", c.tlsClientCA != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	return nil
}
