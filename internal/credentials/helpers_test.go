package credentials

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// testNow is the clock every test certificate is judged against.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testPassword = "s3cret-Export-pw"

// Keys are generated once: RSA-2048 generation is slow under -race, and
// Apple's push certificates are RSA-2048.
var (
	testLeafKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	testOtherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	testCA       = sync.OnceValues(newTestCA)
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func newTestCA() (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Apple Worldwide Developer Relations Certification Authority (test)"},
		NotBefore:             testNow.AddDate(-5, 0, 0),
		NotAfter:              testNow.AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c, key
}

// certSpec describes a test certificate the way Apple issues them.
type certSpec struct {
	cn        string
	uid       string            // subject UID (bundle ID); empty = none
	dev, prod bool              // .3.1 and .3.2 extensions
	topics    []string          // .3.6 topics in order; nil = no extension
	kinds     map[string]string // topic -> type for .3.6
	rawTopics []byte            // overrides topics with raw extension bytes
	notBefore time.Time
	notAfter  time.Time
}

func devSpec(bundle string) certSpec {
	return certSpec{cn: CNPrefixDevelopment + bundle, uid: bundle, dev: true}
}

func prodSpec(bundle string) certSpec {
	return certSpec{cn: CNPrefixProduction + bundle, uid: bundle, prod: true}
}

func universalSpec(bundle string) certSpec {
	return certSpec{
		cn: CNPrefixUniversal + bundle, uid: bundle, dev: true, prod: true,
		topics: []string{bundle, bundle + ".voip", bundle + ".complication"},
		kinds:  map[string]string{bundle: "app", bundle + ".voip": "voip", bundle + ".complication": "complication"},
	}
}

func voipSpec(bundle string) certSpec {
	return certSpec{
		cn: CNPrefixVoIP + bundle, uid: bundle, dev: true, prod: true,
		topics: []string{bundle, bundle + ".voip"},
		kinds:  map[string]string{bundle: "app", bundle + ".voip": "voip"},
	}
}

func (s certSpec) extensions(t testing.TB) []pkix.Extension {
	t.Helper()
	var exts []pkix.Extension
	if s.dev {
		exts = append(exts, pkix.Extension{Id: OIDDevelopment, Value: asn1.NullBytes})
	}
	if s.prod {
		exts = append(exts, pkix.Extension{Id: OIDProduction, Value: asn1.NullBytes})
	}
	switch {
	case s.rawTopics != nil:
		exts = append(exts, pkix.Extension{Id: OIDTopics, Value: s.rawTopics})
	case s.topics != nil:
		v, err := TopicsExtension(s.kinds, s.topics)
		if err != nil {
			t.Fatalf("TopicsExtension: %v", err)
		}
		exts = append(exts, pkix.Extension{Id: OIDTopics, Value: v})
	}
	return exts
}

// makeCert issues a certificate for spec with key's public key, signed by
// the test CA.
func makeCert(t testing.TB, spec certSpec, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	ca, caKey := testCA()
	name := pkix.Name{CommonName: spec.cn, Organization: []string{"Example Inc."}}
	if spec.uid != "" {
		name.ExtraNames = []pkix.AttributeTypeAndValue{{Type: OIDUserID, Value: spec.uid}}
	}
	nb, na := spec.notBefore, spec.notAfter
	if nb.IsZero() {
		nb = testNow.AddDate(0, -1, 0)
	}
	if na.IsZero() {
		na = testNow.AddDate(0, 11, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		Subject:         name,
		NotBefore:       nb,
		NotAfter:        na,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: spec.extensions(t),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return c
}

// makeP12 issues a certificate for spec and exports it with its key and
// the CA, as Keychain Access does.
func makeP12(t testing.TB, enc *pkcs12.Encoder, spec certSpec, password string) []byte {
	t.Helper()
	key := testLeafKey()
	leaf := makeCert(t, spec, key.Public())
	ca, _ := testCA()
	data, err := enc.Encode(key, leaf, []*x509.Certificate{ca}, password)
	if err != nil {
		t.Fatalf("pkcs12 Encode: %v", err)
	}
	return data
}

// pemPKCS8 returns key as a .p8 file, like Apple's AuthKey_XXXXXXXXXX.p8.
func pemPKCS8(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantCode fails unless err is a *Error with the given code ("" = no error).
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want *Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %s (%v), want %s", e.Code, err, code)
	}
	if e.Message == "" {
		t.Fatalf("code %s has an empty message", code)
	}
}
