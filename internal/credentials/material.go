package credentials

import (
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Material is the secret half of a credential, stored only sealed: either a
// .p12 with its password, or a .p8 with its key and team IDs. It prints,
// logs and marshals to JSON redacted, so a stray log line or API response
// cannot leak it; SealMaterial is the only way its secrets leave the process.
type Material struct {
	P12      []byte
	Password string
	P8       []byte
	KeyID    string
	TeamID   string
}

// sealedMaterial is the JSON layout inside the seal. It is separate from
// Material so that Material's own JSON form can stay redacted.
type sealedMaterial struct {
	P12      []byte `json:"p12,omitempty"`
	Password string `json:"password,omitempty"`
	P8       []byte `json:"p8,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	TeamID   string `json:"team_id,omitempty"`
}

// ErrNoMaterial means the material holds no file of the requested kind.
var ErrNoMaterial = errors.New("credentials: material holds no such credential")

// SealMaterial encodes m and seals it; aad should identify the owning record.
func SealMaterial(s *Sealer, m Material, aad []byte) ([]byte, error) {
	plain, err := json.Marshal(sealedMaterial(m))
	if err != nil {
		return nil, fmt.Errorf("credentials: encode material: %w", err)
	}
	defer clear(plain)
	return s.Seal(plain, aad)
}

// OpenMaterial reverses SealMaterial.
func OpenMaterial(s *Sealer, sealed, aad []byte) (Material, error) {
	plain, err := s.Open(sealed, aad)
	if err != nil {
		return Material{}, err
	}
	defer clear(plain)
	var sm sealedMaterial
	if err := json.Unmarshal(plain, &sm); err != nil {
		// The JSON error may quote plaintext; keep only the fact.
		return Material{}, fmt.Errorf("%w: material does not decode", ErrSealedCorrupt)
	}
	return Material(sm), nil
}

// TLSCertificate decodes the .p12 for a TLS client connection. Dates and
// environment were checked at upload; an expired certificate still loads so
// that Apple's rejection, not ours, shows in delivery traces.
func (m Material) TLSCertificate() (*tls.Certificate, error) {
	if len(m.P12) == 0 {
		return nil, fmt.Errorf("%w: no .p12", ErrNoMaterial)
	}
	cert, err := decodeP12(m.P12, m.Password)
	if err != nil {
		return nil, fmt.Errorf("credentials: stored .p12: %w", err)
	}
	return &cert, nil
}

// SigningKey returns the .p8 key that signs provider tokens.
func (m Material) SigningKey() (*ecdsa.PrivateKey, error) {
	if len(m.P8) == 0 {
		return nil, fmt.Errorf("%w: no .p8", ErrNoMaterial)
	}
	p8, err := ParseP8(m.P8, m.KeyID, m.TeamID)
	if err != nil {
		return nil, fmt.Errorf("credentials: stored .p8: %w", err)
	}
	return p8.Key, nil
}

// LogValue logs sizes and public IDs, never secrets.
func (m Material) LogValue() slog.Value {
	attrs := []slog.Attr{}
	if len(m.P12) > 0 {
		attrs = append(attrs, slog.Int("p12_bytes", len(m.P12)), slog.Bool("password_set", m.Password != ""))
	}
	if len(m.P8) > 0 {
		attrs = append(attrs, slog.Int("p8_bytes", len(m.P8)), slog.String("key_id", m.KeyID), slog.String("team_id", m.TeamID))
	}
	return slog.GroupValue(attrs...)
}

// String describes the material without its secrets.
func (m Material) String() string {
	return fmt.Sprintf("credentials.Material{P12: %d bytes, Password: %s, P8: %d bytes, KeyID: %q, TeamID: %q}",
		len(m.P12), redacted(m.Password), len(m.P8), m.KeyID, m.TeamID)
}

// GoString keeps %#v from printing the secrets.
func (m Material) GoString() string { return m.String() }

// Format keeps every verb (%d, %x, %q...) from printing the secrets, which
// String alone does not: fmt uses String only for %v, %s, %q, %x and %X.
func (m Material) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }

// MarshalJSON keeps Material out of API responses and JSON logs.
func (m Material) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.String())
}

func redacted(s string) string {
	if s == "" {
		return "[empty]"
	}
	return "[redacted]"
}
