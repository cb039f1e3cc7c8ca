// Command testbank serves Sandbox Bank for the conformance command's
// tests, well behaved or as one of the deliberately broken adapters of
// package broken (--broken), in plaintext on loopback or with (mutual)
// TLS. It prints "grpc=<addr> admin=<addr>" once it listens; the admin
// listener serves the sandbox's admin API (fraud alerts on demand), for
// the fixtures' triggers. It is a test tool, not a product: the real
// sandbox server is services/sandbox.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/conformance/internal/broken"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbank:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("testbank", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "gRPC listen address")
	adminAddr := fs.String("admin-addr", "127.0.0.1:0", "admin HTTP listen address (plaintext, loopback)")
	brokenName := fs.String("broken", "", "serve this broken adapter of package broken instead of the sandbox")
	keyFile := fs.String("api-key-file", "", "file holding the API key callers must present (empty: none)")
	certFile := fs.String("tls-cert", "", "server certificate PEM (empty: plaintext)")
	keyPEM := fs.String("tls-key", "", "server key PEM")
	clientCA := fs.String("client-ca", "", "CA PEM whose client certificates are required (mutual TLS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bank, err := sandbox.New(sandbox.Options{FraudCaseStep: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer bank.Close()

	var keys func() []string
	if *keyFile != "" {
		kf, err := adapters.NewKeyFile(*keyFile, time.Minute)
		if err != nil {
			return err
		}
		keys = kf.Keys
	}
	quiet := adapters.WithLogger(slog.New(slog.DiscardHandler))
	var srv adapterv1.BankAdapterServiceServer
	if *brokenName != "" {
		b, err := broken.Lookup(*brokenName)
		if err != nil {
			return err
		}
		srv = b.Server(bank, keys, quiet)
	} else {
		opts := []adapters.ServerOption{quiet}
		if keys != nil {
			opts = append(opts, adapters.WithAPIKeys(keys))
		}
		srv = adapters.NewServer(bank, opts...)
	}

	var gopts []grpc.ServerOption
	if *certFile != "" {
		cfg, err := serverTLS(*certFile, *keyPEM, *clientCA)
		if err != nil {
			return err
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	admin, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(gopts...)
	adapterv1.RegisterBankAdapterServiceServer(gs, srv)
	hs := &http.Server{Handler: bank.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- gs.Serve(lis) }()
	go func() { errs <- hs.Serve(admin) }()
	fmt.Printf("grpc=%s admin=%s\n", lis.Addr(), admin.Addr())
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	gs.Stop()
	_ = hs.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--client-ca holds no PEM certificate")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
