package credentials

import (
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// FuzzParseP12 feeds uploads and passwords to the .p12 parser; it must
// return an *Error, never panic, and never accept a non-push certificate.
func FuzzParseP12(f *testing.F) {
	for _, enc := range []*pkcs12.Encoder{pkcs12.Modern, pkcs12.Legacy, pkcs12.Modern2026} {
		f.Add(makeP12(f, enc, universalSpec("com.example.App"), testPassword), testPassword)
		f.Add(makeP12(f, enc, devSpec("com.example.App"), testPassword), testPassword)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03}, "pw")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		p, err := ParseP12(data, password, testNow)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if p.Certificate.Leaf == nil || p.Certificate.PrivateKey == nil || (!p.Info.Development && !p.Info.Production) {
			t.Fatalf("accepted an incomplete result: %v", p)
		}
		if ValidateBundleID(p.Info.BundleID) != nil || p.Info.Topics[0] != p.Info.BundleID {
			t.Fatalf("accepted bundle %q topics %q", p.Info.BundleID, p.Info.Topics)
		}
	})
}

// FuzzParseP8 feeds uploads and IDs to the .p8 parser.
func FuzzParseP8(f *testing.F) {
	f.Add(pemPKCS8(f, newP256(f)), testKeyID, testTeamID)
	f.Add(pemPKCS8(f, testOtherKey()), testKeyID, testTeamID)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "ABCDEFGHIJ", "0123456789")
	f.Fuzz(func(t *testing.T, data []byte, keyID, teamID string) {
		p, err := ParseP8(data, keyID, teamID)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if p.Key == nil || p.Key.Curve.Params().Name != "P-256" || !isAppleID(p.KeyID) || !isAppleID(p.TeamID) {
			t.Fatalf("accepted %v", p)
		}
	})
}
