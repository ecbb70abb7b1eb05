package credentials

import (
	"bytes"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

var testEncoders = []struct {
	name string
	enc  *pkcs12.Encoder
}{
	{"modern", pkcs12.Modern},
	{"legacy", pkcs12.Legacy},
	{"legacyRC2", pkcs12.LegacyRC2},
	{"modern2026", pkcs12.Modern2026},
}

func TestParseP12(t *testing.T) {
	const b = "com.example.Call"
	expired := universalSpec(b)
	expired.notBefore, expired.notAfter = testNow.AddDate(-1, -1, 0), testNow.Add(-time.Second)
	future := universalSpec(b)
	future.notBefore, future.notAfter = testNow.Add(time.Hour), testNow.AddDate(1, 0, 0)
	plain := certSpec{cn: "client.example.com", uid: b}
	wildcard := devSpec("com.example.*")

	tests := []struct {
		name      string
		spec      certSpec
		password  string // used to open; the file is always exported with testPassword
		wantCode  string
		dev, prod bool
		voip      bool
		topics    []string
	}{
		{name: "development only", spec: devSpec(b), dev: true, topics: []string{b}},
		{name: "production only", spec: prodSpec(b), prod: true, topics: []string{b}},
		{name: "universal", spec: universalSpec(b), dev: true, prod: true, voip: true,
			topics: []string{b, b + ".voip", b + ".complication"}},
		{name: "voip services", spec: voipSpec(b), dev: true, prod: true, voip: true,
			topics: []string{b, b + ".voip"}},
		{name: "expired", spec: expired, wantCode: CodeCertificateExpired},
		{name: "not yet valid", spec: future, wantCode: CodeCertificateNotYetValid},
		{name: "wrong password", spec: devSpec(b), password: "not-the-password", wantCode: CodeP12BadPassword},
		{name: "no password", spec: devSpec(b), password: "-", wantCode: CodeP12PasswordRequired},
		{name: "emoji password", spec: devSpec(b), password: "pw\U0001F600", wantCode: CodeP12BadPassword},
		{name: "plain certificate", spec: plain, wantCode: CodeNotPushCertificate},
		{name: "wildcard bundle", spec: wildcard, wantCode: CodeNotPushCertificate},
	}
	for _, e := range testEncoders {
		for _, tc := range tests {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				data := makeP12(t, e.enc, tc.spec, testPassword)
				pw := testPassword
				switch tc.password {
				case "-":
					pw = ""
				case "":
				default:
					pw = tc.password
				}
				p, err := ParseP12(data, pw, testNow)
				wantCode(t, err, tc.wantCode)
				if tc.wantCode != "" {
					return
				}
				checkP12(t, p, b, tc.dev, tc.prod, tc.voip, tc.topics)
			})
		}
	}
}

func checkP12(t *testing.T, p *P12, bundle string, dev, prod, voip bool, topics []string) {
	t.Helper()
	if p.Info.BundleID != bundle || p.Info.Development != dev || p.Info.Production != prod || p.Info.VoIP != voip {
		t.Errorf("info = %+v", p.Info)
	}
	if !slices.Equal(p.Info.Topics, topics) {
		t.Errorf("topics = %q, want %q", p.Info.Topics, topics)
	}
	c := p.Certificate
	if c.Leaf == nil || c.PrivateKey == nil || len(c.Certificate) == 0 || !bytes.Equal(c.Certificate[0], c.Leaf.Raw) {
		t.Fatalf("tls.Certificate incomplete: leaf %v key %v chain %d", c.Leaf != nil, c.PrivateKey != nil, len(c.Certificate))
	}
	if !testLeafKey().PublicKey.Equal(c.Leaf.PublicKey) {
		t.Errorf("leaf does not match the private key")
	}
}

func TestParseP12BadFiles(t *testing.T) {
	good := makeP12(t, pkcs12.Modern, devSpec("com.example.App"), testPassword)
	truncated := good[:len(good)/2]
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	passwordless, err := pkcs12.Passwordless.Encode(testLeafKey(), makeCert(t, devSpec("com.example.App"), testLeafKey().Public()), nil, "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		data     []byte
		wantCode string
	}{
		{"garbage", []byte("this is not a p12 file at all"), CodeP12Malformed},
		{"empty", nil, CodeP12Malformed},
		{"pem instead of der", pemPKCS8(t, newP256(t)), CodeP12Malformed},
		{"truncated", truncated, CodeP12Malformed},
		// A flipped byte fails the MAC, which is indistinguishable from a
		// wrong password: the library reports it as such.
		{"flipped byte", flipped, CodeP12BadPassword},
		{"passwordless file", passwordless, CodeP12Malformed},
		{"oversize", append(bytes.Clone(good), make([]byte, MaxFileSize)...), CodeFileTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseP12(tc.data, testPassword, testNow)
			if tc.name == "flipped byte" {
				// Depending on where the byte lands, the DER breaks or the MAC fails.
				var e *Error
				if !errors.As(err, &e) || (e.Code != CodeP12BadPassword && e.Code != CodeP12Malformed) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			wantCode(t, err, tc.wantCode)
		})
	}
}

// Exports that list the CA before the leaf must still yield the leaf.
func TestParseP12PicksLeafMatchingKey(t *testing.T) {
	key := testLeafKey()
	leaf := makeCert(t, voipSpec("com.example.App"), key.Public())
	ca, _ := testCA()
	data, err := pkcs12.Modern.Encode(key, ca, []*x509.Certificate{leaf}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseP12(data, testPassword, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if p.Certificate.Leaf.Subject.CommonName != CNPrefixVoIP+"com.example.App" || len(p.Certificate.Certificate) != 2 {
		t.Fatalf("leaf = %q, chain %d", p.Certificate.Leaf.Subject.CommonName, len(p.Certificate.Certificate))
	}
}

func TestParseP12KeyMatchesNoCertificate(t *testing.T) {
	leaf := makeCert(t, devSpec("com.example.App"), testOtherKey().Public())
	data, err := pkcs12.Modern.Encode(testLeafKey(), leaf, nil, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseP12(data, testPassword, testNow)
	wantCode(t, err, CodeP12Malformed)
}

// A file may ask for any number of KDF iterations; the cap must reject it
// before the work is done, not after.
// Not parallel: it lowers the package-level cap.
func TestParseP12IterationCap(t *testing.T) {
	old := maxP12Iterations
	maxP12Iterations = 4096
	t.Cleanup(func() { maxP12Iterations = old })
	for _, e := range testEncoders {
		t.Run(e.name, func(t *testing.T) {
			atCap := makeP12(t, e.enc.WithIterations(maxP12Iterations), devSpec("com.example.App"), testPassword)
			if _, err := ParseP12(atCap, testPassword, testNow); err != nil {
				t.Fatalf("at the cap: %v", err)
			}
			over := makeP12(t, e.enc.WithIterations(maxP12Iterations+1), devSpec("com.example.App"), testPassword)
			_, err := ParseP12(over, testPassword, testNow)
			wantCode(t, err, CodeP12Malformed)
		})
	}
}

// The cap's cost bound: the slowest legitimate-looking file at the cap.
func BenchmarkParseP12AtIterationCap(b *testing.B) {
	data := makeP12(b, pkcs12.Legacy.WithIterations(maxP12Iterations), devSpec("com.example.App"), testPassword)
	for b.Loop() {
		if _, err := ParseP12(data, testPassword, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func TestErrorIsByCode(t *testing.T) {
	_, err := ParseP12([]byte("x"), "", testNow)
	if !errors.Is(err, &Error{Code: CodeP12PasswordRequired}) {
		t.Fatalf("errors.Is by code failed for %v", err)
	}
	if errors.Is(err, &Error{Code: CodeP12BadPassword}) {
		t.Fatalf("errors.Is matched another code")
	}
}
