package credentials

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"strings"
	"testing"
)

const (
	testKeyID  = "ABC123DEFG"
	testTeamID = "TEAM123456"
)

func TestParseP8(t *testing.T) {
	good := newP256(t)
	goodPEM := pemPKCS8(t, good)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(good)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(goodPEM)
	// The SEC1 version inside PKCS#8 (02 01 01 04 20 <D>): the outer
	// structure still names P-256, the key inside does not parse.
	damaged := bytes.Clone(block.Bytes)
	damaged[bytes.Index(damaged, []byte{2, 1, 1, 4, 32})+2] = 9
	truncated := block.Bytes[:len(block.Bytes)-20]

	tests := []struct {
		name     string
		data     []byte
		keyID    string
		teamID   string
		wantCode string
	}{
		{name: "good", data: goodPEM},
		{name: "good with CRLF and no final newline", data: bytes.TrimSpace(bytes.ReplaceAll(goodPEM, []byte("\n"), []byte("\r\n")))},
		{name: "rsa", data: pemPKCS8(t, testOtherKey()), wantCode: CodeP8NotP256},
		{name: "p-384", data: pemPKCS8(t, p384), wantCode: CodeP8NotP256},
		{name: "ed25519", data: pemPKCS8(t, edKey), wantCode: CodeP8NotP256},
		{name: "x25519", data: pemPKCS8(t, x25519), wantCode: CodeP8NotP256},
		{name: "unknown curve", data: pemBlock("PRIVATE KEY", pkcs8UnknownCurve(t, sec1)), wantCode: CodeP8NotP256},
		{name: "sec1 block", data: pemBlock("EC PRIVATE KEY", sec1), wantCode: CodeP8Malformed},
		{name: "damaged key", data: pemBlock("PRIVATE KEY", damaged), wantCode: CodeP8Malformed},
		{name: "truncated key", data: pemBlock("PRIVATE KEY", truncated), wantCode: CodeP8Malformed},
		{name: "garbage in block", data: pemBlock("PRIVATE KEY", []byte("not der")), wantCode: CodeP8Malformed},
		{name: "not pem", data: []byte("MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg"), wantCode: CodeP8Malformed},
		{name: "empty", data: nil, wantCode: CodeP8Malformed},
		{name: "two blocks", data: append(bytes.Clone(goodPEM), goodPEM...), wantCode: CodeP8Malformed},
		{name: "certificate", data: pemBlock("CERTIFICATE", []byte{1}), wantCode: CodeP8Malformed},
		{name: "oversize", data: append(bytes.Clone(goodPEM), make([]byte, MaxFileSize)...), wantCode: CodeFileTooLarge},
		{name: "key id lowercase", data: goodPEM, keyID: "abc123defg", wantCode: CodeBadKeyID},
		{name: "key id short", data: goodPEM, keyID: "ABC123DEF", wantCode: CodeBadKeyID},
		{name: "key id long", data: goodPEM, keyID: "ABC123DEFGH", wantCode: CodeBadKeyID},
		{name: "key id empty", data: goodPEM, keyID: "-", wantCode: CodeBadKeyID},
		{name: "key id space", data: goodPEM, keyID: "ABC123DEF ", wantCode: CodeBadKeyID},
		{name: "key id unicode", data: goodPEM, keyID: "ABC123DEFÉ", wantCode: CodeBadKeyID},
		{name: "team id lowercase", data: goodPEM, teamID: "team123456", wantCode: CodeBadTeamID},
		{name: "team id short", data: goodPEM, teamID: "TEAM12345", wantCode: CodeBadTeamID},
		{name: "team id dash", data: goodPEM, teamID: "TEAM-12345", wantCode: CodeBadTeamID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keyID, teamID := orDefault(tc.keyID, testKeyID), orDefault(tc.teamID, testTeamID)
			p, err := ParseP8(tc.data, keyID, teamID)
			wantCode(t, err, tc.wantCode)
			if tc.wantCode != "" {
				return
			}
			if !p.Key.Equal(good) || p.KeyID != testKeyID || p.TeamID != testTeamID {
				t.Fatalf("got %v", p)
			}
		})
	}
}

func orDefault(s, def string) string {
	switch s {
	case "":
		return def
	case "-":
		return ""
	}
	return s
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// pkcs8UnknownCurve wraps an EC key in PKCS#8 naming secp256k1, a curve the
// standard library refuses to parse.
func pkcs8UnknownCurve(t *testing.T, sec1 []byte) []byte {
	t.Helper()
	curve, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 10})
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Version   int
		Algorithm pkix.AlgorithmIdentifier
		Key       []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: curve}}, sec1})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestValidateBundleID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"com.example.app", true},
		{"com.Example-Co.App2", true},
		{"app", true},
		{"com.example.app.voip", true},
		{strings.Repeat("a", 155), true},
		{strings.Repeat("a", 156), false},
		{"", false},
		{"com.example.*", false},
		{"*", false},
		{"com..example", false},
		{".com.example", false},
		{"com.example.", false},
		{"com.exa mple", false},
		{"com.example_app", false},
		{"com.exämple.app", false},
		{"com.example\napp", false},
		{"com/example", false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateBundleID(tc.id)
			if tc.ok {
				wantCode(t, err, "")
			} else {
				wantCode(t, err, CodeBadBundleID)
			}
		})
	}
}
