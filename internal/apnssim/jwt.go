package apnssim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// maxJWTBytes bounds the provider token; Apple's are about 200 bytes.
const maxJWTBytes = 4096

// Reasons a provider token is refused; all become 403 InvalidProviderToken
// on the wire, the distinction is for logs.
var (
	errJWTMalformed = errors.New("malformed provider token")
	errJWTAlg       = errors.New("provider token alg is not ES256")
	errJWTSignature = errors.New("provider token signature does not verify")
)

// providerToken is a parsed, not yet verified, APNs JWT.
type providerToken struct {
	KeyID    string
	Issuer   string
	IssuedAt int64 // unix seconds
	signed   string
	sig      []byte // r || s, 32 bytes each
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss string          `json:"iss"`
	Iat json.RawMessage `json:"iat"` // an integer; a quoted or fractional iat is refused
}

// parseProviderToken splits and decodes a compact JWS. It checks the shape
// Apple requires (ES256, a kid, iss and an integer iat) but not the
// signature, which needs the key named by kid.
func parseProviderToken(raw string) (providerToken, error) {
	if len(raw) == 0 || len(raw) > maxJWTBytes {
		return providerToken{}, fmt.Errorf("%w: length %d", errJWTMalformed, len(raw))
	}
	h64, rest, ok1 := strings.Cut(raw, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return providerToken{}, fmt.Errorf("%w: not three parts", errJWTMalformed)
	}
	var h jwtHeader
	if err := decodeJWTPart(h64, &h); err != nil {
		return providerToken{}, fmt.Errorf("header: %w", err)
	}
	if h.Alg != "ES256" {
		return providerToken{}, fmt.Errorf("%w: %q", errJWTAlg, h.Alg)
	}
	var c jwtClaims
	if err := decodeJWTPart(c64, &c); err != nil {
		return providerToken{}, fmt.Errorf("claims: %w", err)
	}
	iat, err := strconv.ParseInt(string(c.Iat), 10, 64)
	if err != nil || h.Kid == "" || c.Iss == "" {
		return providerToken{}, fmt.Errorf("%w: need kid, iss and an integer iat", errJWTMalformed)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil || len(sig) != 64 {
		return providerToken{}, fmt.Errorf("%w: signature is not 64 raw bytes", errJWTMalformed)
	}
	return providerToken{KeyID: h.Kid, Issuer: c.Iss, IssuedAt: iat, signed: raw[:len(h64)+1+len(c64)], sig: sig}, nil
}

func decodeJWTPart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return fmt.Errorf("%w: %w", errJWTMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errJWTMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", errJWTMalformed)
	}
	return nil
}

// verify checks the ES256 signature with pub.
func (t providerToken) verify(pub *ecdsa.PublicKey) error {
	digest := sha256.Sum256([]byte(t.signed))
	r := new(big.Int).SetBytes(t.sig[:32])
	s := new(big.Int).SetBytes(t.sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errJWTSignature
	}
	return nil
}
