package certs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/certs"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// provider logs in to v with token.
func provider(t *testing.T, v *vaulttest.Server, token string) *credentials.Provider {
	t.Helper()
	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(token)},
	}, credentials.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func source(t *testing.T, issuer certs.Issuer, cfg certs.Config) *certs.Source {
	t.Helper()
	s, err := certs.New(t.Context(), issuer, cfg, certs.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serve answers every TLS connection on a 127.0.0.1 port with its
// certificate's serial number, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(conn, "hello\n")
			}()
		}
	}()
	return lis.Addr().String()
}

// TestRenewsWithoutRestart serves a certificate of a 10 s life from a real
// Vault: the server keeps answering every connection while the
// certificate it serves is replaced, before the first one expires.
func TestRenewsWithoutRestart(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	pool := v.EnablePKI(t, "balance")
	s := source(t, provider(t, v, v.RootToken()), certs.Config{Name: "balance", TTL: 10 * time.Second})
	first := s.Certificate().Leaf
	if first.Subject.CommonName != "balance" || !slices.Contains(first.DNSNames, "localhost") || len(first.IPAddresses) == 0 {
		t.Fatalf("certificate for %q, %v, %v", first.Subject.CommonName, first.DNSNames, first.IPAddresses)
	}
	addr := serve(t, s.ServerTLS(tls.NoClientCert))

	serials := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(serials) < 2 && time.Now().Before(deadline) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("after %d certificates: %v", len(serials), err) // the server must never stop serving
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		_ = conn.Close()
		if time.Now().After(leaf.NotAfter) {
			t.Fatalf("served an expired certificate (NotAfter %s)", leaf.NotAfter)
		}
		serials[leaf.SerialNumber.String()] = true
		time.Sleep(200 * time.Millisecond)
	}
	if len(serials) < 2 {
		t.Fatalf("the served certificate was not renewed within 20 s (serials %v)", serials)
	}
	if !time.Now().Before(first.NotAfter.Add(2 * time.Second)) {
		t.Errorf("renewed only after the first certificate expired (%s)", first.NotAfter)
	}
}

// TestClientTLSChecksThePeer: a client reaching "consent" accepts only a
// certificate of the CA that names consent; the server takes the
// client's certificate; a second connection resumes the TLS session.
func TestClientTLSChecksThePeer(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.EnablePKI(t, "consent", "balance")
	p := provider(t, v, v.RootToken())
	consent := source(t, p, certs.Config{Name: "consent"})
	balance := source(t, p, certs.Config{Name: "balance"})
	foreign := testkit.NewCA(t).Issue(t, "consent")

	var peerNames []string
	srv := consent.ServerTLS(tls.RequireAndVerifyClientCert)
	srv.VerifyConnection = func(cs tls.ConnectionState) error {
		peerNames = append(peerNames, cs.PeerCertificates[0].Subject.CommonName)
		return nil
	}
	addr := serve(t, srv)
	dial := func(cfg *tls.Config) (tls.ConnectionState, error) {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		// TLS 1.3 sends the session ticket after the handshake: read the
		// server's line so the ticket is in.
		_, err = io.ReadAll(conn)
		return conn.ConnectionState(), err
	}
	if _, err := dial(balance.ClientTLS("consent")); err != nil {
		t.Fatalf("balance to consent: %v", err)
	}
	if cs, err := dial(balance.ClientTLS("consent")); err != nil || !cs.DidResume {
		t.Errorf("second connection: resumed %v, %v; want a resumed session", cs.DidResume, err)
	}
	if len(peerNames) == 0 || peerNames[0] != "balance" {
		t.Errorf("the server saw client certificates %q, want balance's", peerNames)
	}
	if _, err := dial(balance.ClientTLS("receipts")); err == nil || !strings.Contains(err.Error(), `names "consent", not "receipts"`) {
		t.Errorf("balance to a server it takes for receipts: %v, want the certificate refused", err)
	}
	impostor := serve(t, &tls.Config{Certificates: []tls.Certificate{foreign}})
	conn, err := tls.Dial("tcp", impostor, balance.ClientTLS("consent"))
	if err == nil {
		_ = conn.Close()
		t.Error("a server with another CA's certificate for consent was trusted")
	}
}

// TestFailsAtStart: a process that cannot get a certificate does not
// start, and the error names the role and Vault's status, never a token.
func TestFailsAtStart(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.EnablePKI(t, "balance")
	_, err := certs.New(t.Context(), provider(t, v, v.RootToken()), certs.Config{Name: "ghost"})
	if err == nil || !strings.Contains(err.Error(), "pki/issue/ghost") || strings.Contains(err.Error(), v.RootToken()) {
		t.Fatalf("New for a role Vault lacks: %v", err)
	}
}

// flaky fails the issues it is told to, as a Vault outage would.
type flaky struct {
	certs.Issuer
	fail chan bool
}

func (f flaky) IssueCertificate(ctx context.Context, mount, role string, data map[string]any) (credentials.IssuedCertificate, error) {
	select {
	case down := <-f.fail:
		if down {
			return credentials.IssuedCertificate{}, fmt.Errorf("vault down: %w", credentials.ErrUnavailable)
		}
	default:
	}
	return f.Issuer.IssueCertificate(ctx, mount, role, data)
}

// TestKeepsServingWhileVaultIsDown: a failed renewal keeps the current
// certificate and is retried.
func TestKeepsServingWhileVaultIsDown(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.EnablePKI(t, "balance")
	f := flaky{Issuer: provider(t, v, v.RootToken()), fail: make(chan bool, 2)}
	s := source(t, f, certs.Config{Name: "balance", TTL: 6 * time.Second})
	first := s.Certificate()
	f.fail <- true // the first renewal, at ~4 s, fails; the retry a second later succeeds
	testkit.Eventually(t, func() bool { return len(f.fail) == 0 }, 10*time.Second)
	if s.Certificate() != first {
		t.Fatal("the certificate changed although Vault failed")
	}
	testkit.Eventually(t, func() bool { return s.Certificate() != first }, 5*time.Second)
}

// TestPKIPolicies loads each process's PKI policy
// (deploy/vault/policies/bankbridge-pki-<name>.hcl) into a real Vault: a
// token with it is issued its own certificate, and is refused another
// process's.
func TestPKIPolicies(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../../deploy/vault/policies/bankbridge-pki-*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no PKI policies: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "bankbridge-pki-"), ".hcl"))
	}
	for _, want := range []string{"balance", "consent", "gateway", "receipts", "sandbox", "shipping", "support", "webhooks"} {
		if !slices.Contains(names, want) {
			t.Errorf("no PKI policy for %s", want)
		}
	}
	v := vaulttest.Start(t)
	v.EnablePKI(t, names...)
	for i, name := range names {
		rules, err := os.ReadFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		v.PutPolicy(t, "bankbridge-pki-"+name, string(rules))
		p := provider(t, v, v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-pki-" + name}}))
		if s, err := certs.New(t.Context(), p, certs.Config{Name: name}); err != nil {
			t.Errorf("%s's policy: its own certificate: %v", name, err)
		} else {
			_ = s.Close()
		}
		other := names[(i+1)%len(names)]
		_, err = certs.New(t.Context(), p, certs.Config{Name: other})
		if !errors.Is(err, credentials.ErrPermissionDenied) {
			t.Errorf("%s's policy: %s's certificate: %v, want permission denied", name, other, err)
		}
	}
}

// TestRoleIssuesNoOtherName: a process's role issues certificates for its
// own name only, so one process cannot get a certificate naming another.
func TestRoleIssuesNoOtherName(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)
	v.EnablePKI(t, "balance")
	_, err := certs.New(t.Context(), provider(t, v, v.RootToken()), certs.Config{Name: "consent", Role: "balance"})
	if err == nil {
		t.Fatal("the balance role issued a certificate for consent")
	}
	_, err = certs.New(t.Context(), provider(t, v, v.RootToken()), certs.Config{Name: "balance", Hosts: []string{"consent"}})
	if err == nil {
		t.Fatal("the balance role issued a certificate also valid for consent")
	}
}
