// Package auth signs and verifies the credentials ringd accepts: UserSigs
// for app users, byte-compatible with Tencent's TLSSigAPIv2 so that existing
// app servers keep issuing them unchanged, and opaque admin tokens.
package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"
)

const (
	// MaxUserSigLen bounds the encoded UserSig. Real ones are 200-500 bytes.
	MaxUserSigLen = 4 << 10
	// MaxIdentifierLen is Tencent's UserID limit in bytes.
	MaxIdentifierLen = 32
	// maxDocLen bounds the inflated JSON so a zip bomb costs at most this much.
	maxDocLen = 8 << 10
	// maxUserBufLen bounds TLS.userbuf; Tencent's PrivateMapKey buffers are
	// under 300 bytes, and the bound keeps any parsed sig re-encodable.
	maxUserBufLen = 1 << 10
	sigVersion    = "2.0"
)

var (
	// ErrMalformed: the UserSig cannot be decoded; the wrapping error says why.
	ErrMalformed = errors.New("auth: malformed usersig")
	// ErrExpired: the UserSig is authentic but past TLS.time+TLS.expire.
	ErrExpired = errors.New("auth: usersig expired")
	// ErrBadSignature: the HMAC does not match the app's secret key.
	ErrBadSignature = errors.New("auth: usersig signature mismatch")
	// ErrEmptyKey is a server configuration error, not the client's fault.
	ErrEmptyKey = errors.New("auth: empty secret key")
)

// sigEncoding is Tencent's "base64url": the standard alphabet with
// '+'->'*', '/'->'-' and '='->'_'. Strict so that each sig has one encoding.
var sigEncoding = base64.NewEncoding(
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-",
).WithPadding('_').Strict()

// UserSig is a decoded TLSSigAPIv2 ticket. Time and Expire are Unix seconds
// and seconds. UserBuf is nil when absent. Sig is the raw HMAC-SHA256.
type UserSig struct {
	SDKAppID   int64
	Identifier string
	Time       int64
	Expire     int64
	UserBuf    []byte
	Sig        []byte
}

// GenUserSig issues a UserSig for userID, valid for expire (whole seconds)
// from now. The output is byte-identical to Tencent's Go library
// (tls-sig-api-v2-golang, NoCompression since 2024-11) for the same inputs.
func GenUserSig(sdkAppID int64, secretKey, userID string, expire time.Duration, now time.Time) (string, error) {
	if secretKey == "" {
		return "", ErrEmptyKey
	}
	u := &UserSig{
		SDKAppID:   sdkAppID,
		Identifier: userID,
		Time:       now.Unix(),
		Expire:     int64(expire / time.Second),
	}
	if err := u.checkFields(); err != nil {
		return "", fmt.Errorf("auth: cannot sign usersig: %w", err)
	}
	u.Sig = u.sign(secretKey)
	return u.encode()
}

// ParseUserSig decodes s without verifying it, so that the caller can look
// the app up by SDKAppID and then call Verify with that app's key. Every
// failure wraps ErrMalformed.
func ParseUserSig(s string) (*UserSig, error) {
	raw, err := decodeOuter(s)
	if err != nil {
		return nil, err
	}
	doc, err := inflate(raw)
	if err != nil {
		return nil, err
	}
	return decodeDoc(doc)
}

// Verify checks the signature with secretKey, then the expiry. The signature
// comes first so that only an authentic sig is ever told it merely expired:
// a forged or foreign one is always ErrBadSignature.
func (u *UserSig) Verify(secretKey string, now time.Time) error {
	if secretKey == "" {
		return ErrEmptyKey
	}
	if !hmac.Equal(u.sign(secretKey), u.Sig) {
		return ErrBadSignature
	}
	// Tencent compares whole seconds: valid up to and including Time+Expire.
	if now.Unix() > u.expiresUnix() {
		return fmt.Errorf("%w at %s", ErrExpired, u.ExpiresAt().UTC().Format(time.RFC3339))
	}
	return nil
}

// ExpiresAt is the last instant (to the second) at which u is valid.
func (u *UserSig) ExpiresAt() time.Time {
	return time.Unix(u.expiresUnix(), 0)
}

// LogValue keeps the signature out of logs: a UserSig is a bearer credential.
func (u *UserSig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("sdkappid", u.SDKAppID),
		slog.String("identifier", u.Identifier),
		slog.Time("expires_at", u.ExpiresAt()),
	)
}

// expiresUnix saturates so that a hand-built UserSig cannot overflow.
func (u *UserSig) expiresUnix() int64 {
	if u.Expire > 0 && u.Time > math.MaxInt64-u.Expire {
		return math.MaxInt64
	}
	return u.Time + u.Expire
}

// sign is Tencent's HMAC-SHA256 over newline-terminated "TLS.<name>:<value>"
// lines. The userbuf line appears only when a userbuf is present.
func (u *UserSig) sign(secretKey string) []byte {
	var b bytes.Buffer
	line := func(name, value string) {
		b.WriteString("TLS.")
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	line("identifier", u.Identifier)
	line("sdkappid", strconv.FormatInt(u.SDKAppID, 10))
	line("time", strconv.FormatInt(u.Time, 10))
	line("expire", strconv.FormatInt(u.Expire, 10))
	if len(u.UserBuf) > 0 {
		line("userbuf", base64.StdEncoding.EncodeToString(u.UserBuf))
	}
	h := hmac.New(sha256.New, []byte(secretKey))
	h.Write(b.Bytes())
	return h.Sum(nil)
}

// checkFields holds the rules shared by signing and parsing.
func (u *UserSig) checkFields() error {
	if u.SDKAppID <= 0 {
		return fmt.Errorf("sdkappid %d is not positive", u.SDKAppID)
	}
	if u.Time <= 0 || u.Expire <= 0 {
		return fmt.Errorf("time %d and expire %d must be positive", u.Time, u.Expire)
	}
	if u.Time > math.MaxInt64-u.Expire {
		return errors.New("time + expire overflows")
	}
	if len(u.UserBuf) > maxUserBufLen {
		return fmt.Errorf("userbuf longer than %d bytes", maxUserBufLen)
	}
	return checkIdentifier(u.Identifier)
}

// checkIdentifier enforces printable ASCII and Tencent's 32-byte limit.
// Tencent's libraries recommend [A-Za-z0-9_-] only; accepting all printable
// ASCII keeps sigs for IDs such as e-mail addresses working.
func checkIdentifier(id string) error {
	if id == "" || len(id) > MaxIdentifierLen {
		return fmt.Errorf("identifier must be 1-%d bytes, got %d", MaxIdentifierLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return fmt.Errorf("identifier byte %d (0x%02x) is not printable ASCII", i, id[i])
		}
	}
	return nil
}
