// Command xs2a-sandbox serves the NextGenPSD2 sandbox bank
// (adapters/berlingroup/xs2asandbox) over HTTPS with mutual TLS: every
// connection must present a client certificate of --client-ca.
//
// With --pki-dir it first writes a throwaway test PKI into that directory
// (ca.pem, server.pem, server-key.pem, client.pem, client-key.pem) and
// serves with it, so that a test or a developer can start the bank and its
// adapter (bg-adapter --bank-cert DIR/client.pem ...) in two commands:
//
//	xs2a-sandbox --addr 127.0.0.1:9443 --pki-dir /tmp/xs2a-pki
//	bg-adapter --bank-url https://127.0.0.1:9443 --bank-ca /tmp/xs2a-pki/ca.pem \
//	    --bank-cert /tmp/xs2a-pki/client.pem --bank-key /tmp/xs2a-pki/client-key.pem ...
//
// eIDAS certificates (QWAC) are out of scope: any client certificate of
// the CA is a TPP. Every flag can also be set as a BANKBRIDGE_* environment
// variable (--pki-dir is BANKBRIDGE_PKI_DIR); a flag wins.
package main

import (
	"context"
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

	"github.com/bankbridge/bankbridge/adapters/berlingroup/internal/flagenv"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xs2a-sandbox:", err)
		os.Exit(1)
	}
}

type config struct {
	addr, certFile, keyFile, clientCA, pkiDir string
	pageSize                                  int
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("xs2a-sandbox", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9443", "address to serve HTTPS on")
	fs.StringVar(&c.certFile, "tls-cert", "", "the bank's certificate (PEM); with --pki-dir, the generated one")
	fs.StringVar(&c.keyFile, "tls-key", "", "the bank's private key (PEM)")
	fs.StringVar(&c.clientCA, "client-ca", "", "PEM CA whose client certificates are TPPs")
	fs.StringVar(&c.pkiDir, "pki-dir", "", "write a test CA, server and client certificates here and serve with them")
	fs.IntVar(&c.pageSize, "page-size", 3, "transactions per page of GET /v1/accounts/{id}/transactions")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := flagenv.Apply(fs); err != nil {
		return c, err
	}
	if c.pkiDir == "" && (c.certFile == "" || c.keyFile == "" || c.clientCA == "") {
		return c, errors.New("give --pki-dir, or --tls-cert, --tls-key and --client-ca")
	}
	return c, nil
}

func run(ctx context.Context, args []string) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.pkiDir != "" {
		host, _, _ := net.SplitHostPort(c.addr)
		pki, err := xs2asandbox.WriteTestPKI(c.pkiDir, host)
		if err != nil {
			return fmt.Errorf("write test PKI: %w", err)
		}
		c.certFile, c.keyFile, c.clientCA = pki.ServerCert, pki.ServerKey, pki.CAFile
	}
	cfg, err := xs2asandbox.ServerTLS(c.certFile, c.keyFile, c.clientCA)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	bank := xs2asandbox.New(xs2asandbox.Options{PageSize: c.pageSize})
	srv := &http.Server{Handler: bank.Handler(), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("xs2a sandbox serving", "url", "https://"+lis.Addr().String(), "pki_dir", c.pkiDir)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(lis, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
