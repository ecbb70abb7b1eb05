package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
)

// P8 is an APNs provider-token signing key with the IDs Apple issued it
// under. It prints and logs redacted: the key must never reach a log.
type P8 struct {
	Key    *ecdsa.PrivateKey
	KeyID  string
	TeamID string
}

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidCurveP256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
)

// ParseP8 reads an AuthKey_<KeyID>.p8 file: one PEM "PRIVATE KEY" block
// holding a PKCS#8 ECDSA P-256 key, the only kind ES256 tokens can use.
func ParseP8(data []byte, keyID, teamID string) (*P8, error) {
	if len(data) > MaxFileSize {
		return nil, newError(CodeFileTooLarge,
			fmt.Sprintf("the file is larger than %d KiB; upload the AuthKey_XXXXXXXXXX.p8 file downloaded from Apple", MaxFileSize>>10), nil)
	}
	if !isAppleID(keyID) {
		return nil, newError(CodeBadKeyID,
			"the key ID must be the 10 capital letters and digits shown next to the key in the Apple Developer portal (also in the file name AuthKey_<KeyID>.p8)", nil)
	}
	if !isAppleID(teamID) {
		return nil, newError(CodeBadTeamID,
			"the team ID must be the 10 capital letters and digits shown under Membership in the Apple Developer portal", nil)
	}
	key, err := parseP8Key(data)
	if err != nil {
		return nil, err
	}
	return &P8{Key: key, KeyID: keyID, TeamID: teamID}, nil
}

func parseP8Key(data []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, newError(CodeP8Malformed,
			"this file is not a PEM key; upload the AuthKey_XXXXXXXXXX.p8 file downloaded from Apple, unmodified", nil)
	}
	if block.Type != "PRIVATE KEY" || len(block.Headers) != 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, newError(CodeP8Malformed,
			"the file must hold exactly one unencrypted \"PRIVATE KEY\" block, as Apple's AuthKey_XXXXXXXXXX.p8 does", nil)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, classifyPKCS8Error(block.Bytes, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, notP256(nil)
	}
	return key, nil
}

// classifyPKCS8Error tells a well-formed key of another type (the standard
// library refuses some curves outright) from a damaged file.
func classifyPKCS8Error(der []byte, err error) error {
	var info struct {
		Version   int
		Algorithm pkix.AlgorithmIdentifier
		Key       []byte
	}
	if _, perr := asn1.Unmarshal(der, &info); perr != nil {
		return newError(CodeP8Malformed, "the key in this file is damaged; download the .p8 again (Apple lets you download it only once: otherwise create a new key)", err)
	}
	var curve asn1.ObjectIdentifier
	_, _ = asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve)
	if info.Algorithm.Algorithm.Equal(oidECPublicKey) && curve.Equal(oidCurveP256) {
		return newError(CodeP8Malformed, "the P-256 key in this file is damaged; download the .p8 again or create a new key", err)
	}
	return notP256(err)
}

func notP256(cause error) error {
	return newError(CodeP8NotP256,
		"this is not an APNs authentication key: APNs needs an ECDSA P-256 key; create a key with the Apple Push Notifications service enabled in the Apple Developer portal and upload its .p8", cause)
}

// isAppleID reports whether s looks like a Key ID or Team ID: exactly ten
// characters of A-Z and 0-9.
func isAppleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// maxBundleIDLen is Apple's limit on a bundle ID.
const maxBundleIDLen = 155

// ValidateBundleID checks an explicit (not wildcard) bundle ID: dot-separated
// labels of A-Z, a-z, 0-9 and '-'. It becomes the apns-topic header.
func ValidateBundleID(s string) error {
	if len(s) == 0 || len(s) > maxBundleIDLen {
		return newError(CodeBadBundleID, fmt.Sprintf("the bundle ID must be 1 to %d characters, such as com.example.app", maxBundleIDLen), nil)
	}
	for _, label := range strings.Split(s, ".") {
		if !isBundleLabel(label) {
			return newError(CodeBadBundleID,
				"the bundle ID must be an explicit reverse-DNS name such as com.example.app: letters, digits, '-' and '.', no '*' and no empty part", nil)
		}
	}
	return nil
}

func isBundleLabel(label string) bool {
	if label == "" {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		ok := c == '-' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		if !ok {
			return false
		}
	}
	return true
}

// LogValue logs the IDs, which Apple treats as public, never the key.
func (p P8) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", p.KeyID), slog.String("team_id", p.TeamID))
}

// String describes the key without its secret.
func (p P8) String() string {
	return fmt.Sprintf("credentials.P8{KeyID: %q, TeamID: %q, Key: [redacted]}", p.KeyID, p.TeamID)
}

// GoString keeps %#v from printing the private key.
func (p P8) GoString() string { return p.String() }

// Format keeps every verb (%d and %x included) from printing the private key.
func (p P8) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// MarshalJSON keeps the key out of API responses and JSON logs.
func (p P8) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		KeyID  string `json:"key_id"`
		TeamID string `json:"team_id"`
	}{p.KeyID, p.TeamID})
}
