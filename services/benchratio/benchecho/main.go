// Command benchecho is the bare baseline of `make bench-ratio`: a grpc-go
// server with only the health service, and a net/http handler answering
// every GET with a small JSON document, both on 127.0.0.1 and both on TLS
// as every listener of the stack is. What the stack does on top of this —
// tokens, validation, consent, the access log, the bank — is what the
// benchmark's ratios measure.
//
// Its certificate is its own: a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and localhost (the key type the stack's Vault PKI issues),
// made at start and written to --ca-out for the load generators to trust.
// Unlike the stack's listeners it asks for no client certificate; the load
// generators present none to either.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("benchecho", run) }

// body is what the JSON handler answers: about the size of a small API
// response's headers-plus-body, fixed so every answer costs the same.
var body = []byte(`{"status":"SERVING"}` + "\n")

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchecho", flag.ContinueOnError)
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9900", "gRPC listen address (health service only)")
	httpAddr := fs.String("http-addr", "127.0.0.1:9901", "HTTPS listen address (a JSON answer to every GET)")
	caOut := fs.String("ca-out", "", "file to write the self-signed certificate to, for clients to trust (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caOut == "" {
		return errors.New("--ca-out is required")
	}
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*caOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		return err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}

	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	httpLis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConfig)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	httpTLS := tlsConfig.Clone()
	httpTLS.NextProtos = []string{"h2", "http/1.1"}
	web := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				http.Error(w, "GET only", http.StatusMethodNotAllowed)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         httpTLS,
		// wrk and readiness probes close connections mid-handshake by
		// the thousand; net/http would log each.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	fmt.Printf("benchecho: gRPC on %s, HTTPS on %s, certificate in %s\n", grpcLis.Addr(), httpLis.Addr(), *caOut)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(grpcLis) })
	g.Go(func() error {
		if err := web.ServeTLS(httpLis, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		srv.Stop()
		return web.Close()
	})
	return g.Wait()
}

// selfSigned makes a certificate for 127.0.0.1 and localhost that is its
// own CA, valid for a day.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "benchecho"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
