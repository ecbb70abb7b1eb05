package apnssim

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
	"slices"
	"time"
)

// caCommonName is the issuer of Apple's push certificates. The simulator's
// CA takes the same name so certificates it issues read like Apple's.
const caCommonName = "Apple Worldwide Developer Relations Certification Authority"

// authority is the simulator's CA: it signs the endpoints' server
// certificate and the client (push) certificates.
type authority struct {
	key     *ecdsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	roots   *x509.CertPool
}

type caFile struct {
	Key  string `json:"key"`  // PKCS#8 PEM
	Cert string `json:"cert"` // PEM
}

func newAuthority(now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         caCommonName,
			OrganizationalUnit: []string{"G4"},
			Organization:       []string{"Apple Inc."},
			Country:            []string{"US"},
		},
		NotBefore:             now.AddDate(-10, 0, 0), // covers backdated test certificates
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return authorityFrom(key, der)
}

func authorityFrom(key *ecdsa.PrivateKey, der []byte) (*authority, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &authority{
		key:     key,
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		roots:   roots,
	}, nil
}

func (a *authority) file() (caFile, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return caFile{}, fmt.Errorf("ca key: %w", err)
	}
	return caFile{
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		Cert: string(a.certPEM),
	}, nil
}

func authorityFromFile(f caFile) (*authority, error) {
	kb, _ := pem.Decode([]byte(f.Key))
	cb, _ := pem.Decode([]byte(f.Cert))
	if kb == nil || cb == nil {
		return nil, errors.New("ca file: missing PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("ca key: not ECDSA")
	}
	return authorityFrom(key, cb.Bytes)
}

// pool returns a copy so callers cannot add to the simulator's trust.
func (a *authority) pool() *x509.CertPool { return a.roots.Clone() }

// issueServerCert signs a certificate for the loopback addresses and Apple's
// host names, so a client may dial 127.0.0.1 or override DNS.
func (a *authority) issueServerCert(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "api.push.apple.com", Organization: []string{"Apple Inc."}},
		DNSNames: []string{
			"localhost", "api.push.apple.com", "api.sandbox.push.apple.com",
			"api.development.push.apple.com",
		},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// verifyClientChain checks that a client certificate was signed by this CA
// for client authentication. Validity dates are deliberately not checked
// here: Apple answers an expired certificate with 403 BadCertificate, which
// needs the TLS layer to let it through (the handler checks NotAfter against
// the simulator's clock). A certificate from another CA fails the handshake.
func (a *authority) verifyClientChain(raw [][]byte) error {
	if len(raw) == 0 {
		return nil // no certificate: token authentication
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if err := leaf.CheckSignatureFrom(a.cert); err != nil {
		return fmt.Errorf("client certificate not issued by the simulator: %w", err)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return errors.New("client certificate: no client-auth usage")
	}
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
