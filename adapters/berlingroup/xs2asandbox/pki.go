package xs2asandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway test CA with a server certificate for the bank and a
// client certificate for a TPP, written as PEM files into Dir. It stands
// in for eIDAS: a real ASPSP wants a QWAC issued by a qualified trust
// service provider, which is out of scope here.
type PKI struct {
	Dir string
	// CAFile holds the CA certificate; ServerCert/ServerKey the bank's
	// (for 127.0.0.1, ::1 and localhost); ClientCert/ClientKey the TPP's
	// (common name TPPName).
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	// OtherCAFile, OtherClientCert and OtherClientKey are a client
	// certificate from another CA, which the bank must refuse.
	OtherCAFile, OtherClientCert, OtherClientKey string
}

// TPPName is the common name of the PKI's client certificate.
const TPPName = "bankbridge-tpp"

// WriteTestPKI creates a CA, a server certificate for hosts (IP addresses
// or DNS names; 127.0.0.1, ::1 and localhost are always included) and a
// client certificate, valid for a day, and writes them into dir.
func WriteTestPKI(dir string, hosts ...string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir,
		CAFile: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem"), OtherClientCert: filepath.Join(dir, "other-client.pem"), OtherClientKey: filepath.Join(dir, "other-client-key.pem"),
	}
	ca, caKey, err := newCA("xs2a sandbox test CA", p.CAFile)
	if err != nil {
		return nil, err
	}
	hosts = append(hosts, "127.0.0.1", "::1", "localhost")
	server := &x509.Certificate{Subject: pkix.Name{CommonName: "xs2a-sandbox"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if err := issue(server, ca, caKey, p.ServerCert, p.ServerKey); err != nil {
		return nil, err
	}
	client := &x509.Certificate{Subject: pkix.Name{CommonName: TPPName, Organization: []string{"bankbridge test TPP"}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if err := issue(client, ca, caKey, p.ClientCert, p.ClientKey); err != nil {
		return nil, err
	}
	other, otherKey, err := newCA("another CA", p.OtherCAFile)
	if err != nil {
		return nil, err
	}
	stranger := &x509.Certificate{Subject: pkix.Name{CommonName: TPPName}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if err := issue(stranger, other, otherKey, p.OtherClientCert, p.OtherClientKey); err != nil {
		return nil, err
	}
	return p, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func newCA(name, certFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, writePEM(certFile, "CERTIFICATE", der)
}

func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", keyDER)
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// ServerTLS is the bank's TLS configuration: its certificate, and a
// client certificate of the CA in caFile required on every connection.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pool, err := certPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}, nil
}

// ServerTLS is [ServerTLS] for the PKI's files.
func (p *PKI) ServerTLS() (*tls.Config, error) { return ServerTLS(p.ServerCert, p.ServerKey, p.CAFile) }

func certPool(caFile string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("CA file: no PEM certificate")
	}
	return pool, nil
}

// ClientTLS is a TPP's TLS configuration for the PKI: its client
// certificate, trusting the test CA.
func (p *PKI) ClientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	pool, err := certPool(p.CAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
