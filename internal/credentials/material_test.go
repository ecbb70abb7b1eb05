package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func TestMaterialSealRoundTrip(t *testing.T) {
	s := testSealer(t)
	key := newP256(t)
	tests := []struct {
		name string
		m    Material
	}{
		{"p12", Material{P12: makeP12(t, pkcs12.Modern, voipSpec("com.example.App"), testPassword), Password: testPassword}},
		{"p8", Material{P8: pemPKCS8(t, key), KeyID: testKeyID, TeamID: testTeamID}},
		{"empty", Material{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := SealMaterial(s, tc.m, []byte("cred-7"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.m.Password != "" && bytes.Contains(sealed, []byte(tc.m.Password)) {
				t.Fatal("password visible in sealed material")
			}
			got, err := OpenMaterial(s, sealed, []byte("cred-7"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.P12, tc.m.P12) || got.Password != tc.m.Password || !bytes.Equal(got.P8, tc.m.P8) ||
				got.KeyID != tc.m.KeyID || got.TeamID != tc.m.TeamID {
				t.Fatalf("round trip changed the material: %v", got)
			}
			if _, err := OpenMaterial(s, sealed, []byte("cred-8")); !errors.Is(err, ErrSealedCorrupt) {
				t.Fatalf("opened under another record: %v", err)
			}
		})
	}
}

func TestOpenMaterialNotJSON(t *testing.T) {
	s := testSealer(t)
	sealed, err := s.Seal([]byte(`{"password": "oops`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenMaterial(s, sealed, nil)
	if !errors.Is(err, ErrSealedCorrupt) || strings.Contains(err.Error(), "oops") {
		t.Fatalf("err = %v", err)
	}
}

func TestMaterialTLSCertificate(t *testing.T) {
	expired := universalSpec("com.example.App")
	expired.notBefore, expired.notAfter = testNow.AddDate(-2, 0, 0), testNow.AddDate(-1, 0, 0)
	good := makeP12(t, pkcs12.Legacy, universalSpec("com.example.App"), testPassword)

	tests := []struct {
		name    string
		m       Material
		wantErr error
	}{
		{"good", Material{P12: good, Password: testPassword}, nil},
		// Expiry was judged at upload; at send time Apple's answer is the one to show.
		{"expired still loads", Material{P12: makeP12(t, pkcs12.Legacy, expired, testPassword), Password: testPassword}, nil},
		{"wrong password", Material{P12: good, Password: "nope"}, &Error{Code: CodeP12BadPassword}},
		{"no p12", Material{P8: []byte("x")}, ErrNoMaterial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := tc.m.TLSCertificate()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cert.Leaf == nil || cert.PrivateKey == nil || !testLeafKey().PublicKey.Equal(cert.Leaf.PublicKey) {
				t.Fatal("incomplete certificate")
			}
		})
	}
}

func TestMaterialSigningKey(t *testing.T) {
	key := newP256(t)
	m := Material{P8: pemPKCS8(t, key), KeyID: testKeyID, TeamID: testTeamID}
	got, err := m.SigningKey()
	if err != nil || !got.Equal(key) {
		t.Fatalf("SigningKey = %v, %v", got != nil, err)
	}
	if _, err := (Material{P12: []byte("x")}).SigningKey(); !errors.Is(err, ErrNoMaterial) {
		t.Fatalf("err = %v", err)
	}
	m.KeyID = "bad"
	if _, err := m.SigningKey(); !errors.Is(err, &Error{Code: CodeBadKeyID}) {
		t.Fatalf("err = %v", err)
	}
}

// Every way a value can reach a log or a response must come out redacted.
func TestSecretsNeverPrinted(t *testing.T) {
	const password = "Hunter2-Very-Secret"
	key := newP256(t)
	p8File := pemPKCS8(t, key)
	p12File := makeP12(t, pkcs12.Modern, universalSpec("com.example.App"), password)
	m := Material{P12: p12File, Password: password, P8: p8File, KeyID: testKeyID, TeamID: testTeamID}
	p8, err := ParseP8(p8File, testKeyID, testTeamID)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := ParseP12(p12File, password, testNow)
	if err != nil {
		t.Fatal(err)
	}

	scalar, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		password,
		base64.StdEncoding.EncodeToString(p12File[:24]),
		base64.StdEncoding.EncodeToString(p8File[40:64]),
		"BEGIN PRIVATE KEY",
		new(big.Int).SetBytes(scalar).String(),
		fmt.Sprintf("%x", scalar),
		testLeafKey().D.String(),
		fmt.Sprintf("%d", p12File[:8]),
	}
	values := map[string]any{"material": m, "*material": &m, "p8": *p8, "*p8": p8, "p12": *p12, "*p12": p12}
	for name, v := range values {
		var out strings.Builder
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q", "%T"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintln(&out, v)
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "v", v)
		out.Write(logs.Bytes())
		if j, err := json.Marshal(v); err == nil {
			out.Write(j)
		}
		for _, s := range secrets {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s: output contains a secret (%.12q...)", name, s)
			}
		}
	}
	if !strings.Contains(m.String(), testKeyID) || !strings.Contains(m.String(), "[redacted]") {
		t.Errorf("String() = %s; want the key ID and a redaction marker", m.String())
	}
}
