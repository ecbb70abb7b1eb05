package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// TokenPrefix marks ringd admin tokens so that secret scanners and humans
// recognise one in a leaked log or a pasted config.
const TokenPrefix = "rda_"

// tokenBytes of randomness: 256 bits, far beyond guessing.
const tokenBytes = 32

// NewToken returns a fresh admin token: TokenPrefix followed by 32 random
// bytes in unpadded URL-safe base64 (47 characters in all).
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: read random bytes: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenEqual reports whether got equals want without leaking, through
// timing, how much of a guess was right or how long want is: both sides are
// hashed to fixed-size digests before a constant-time compare. An empty
// want never matches, so an unset admin token cannot be met by sending none.
func TokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
