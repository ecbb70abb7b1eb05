package auth

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// wireDoc mirrors Tencent's Go struct field for field, so that
// json.Encoder emits the same bytes (key order, trailing newline).
type wireDoc struct {
	Ver        string `json:"TLS.ver"`
	Identifier string `json:"TLS.identifier"`
	SDKAppID   int64  `json:"TLS.sdkappid"`
	Expire     int64  `json:"TLS.expire"`
	Time       int64  `json:"TLS.time"`
	UserBuf    []byte `json:"TLS.userbuf,omitempty"`
	Sig        []byte `json:"TLS.sig"`
}

// encode serialises u with its current Sig: JSON, stored zlib as Tencent's
// Go library does (no compression: cheaper, and sigs stay short anyway),
// then Tencent's base64 variant.
func (u *UserSig) encode() (string, error) {
	var b bytes.Buffer
	zw, err := zlib.NewWriterLevel(&b, zlib.NoCompression)
	if err != nil {
		return "", fmt.Errorf("auth: zlib writer: %w", err)
	}
	doc := wireDoc{sigVersion, u.Identifier, u.SDKAppID, u.Expire, u.Time, u.UserBuf, u.Sig}
	if err := json.NewEncoder(zw).Encode(doc); err != nil {
		return "", fmt.Errorf("auth: encode usersig: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("auth: compress usersig: %w", err)
	}
	return sigEncoding.EncodeToString(b.Bytes()), nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// decodeOuter undoes Tencent's base64 variant. The alphabet is checked by
// hand because the base64 package silently skips '\r' and '\n'.
func decodeOuter(s string) ([]byte, error) {
	if s == "" {
		return nil, malformed("empty")
	}
	if len(s) > MaxUserSigLen {
		return nil, malformed("longer than %d bytes", MaxUserSigLen)
	}
	for i := 0; i < len(s); i++ {
		if !isSigChar(s[i]) {
			return nil, malformed("invalid character 0x%02x at offset %d", s[i], i)
		}
	}
	raw, err := sigEncoding.DecodeString(s)
	if err != nil {
		return nil, malformed("base64: %w", err)
	}
	return raw, nil
}

func isSigChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '*' || c == '-' || c == '_'
}

// inflate accepts any zlib level (Tencent's Go library stores, Python
// compresses) but never produces more than maxDocLen bytes, so a zip bomb
// is rejected after reading maxDocLen+1 bytes.
func inflate(raw []byte) ([]byte, error) {
	br := bytes.NewReader(raw)
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, malformed("inflate: %w", err)
	}
	defer zr.Close()
	return readDoc(zr, br)
}

// readDoc reads the inflated document from zr, which inflates br.
func readDoc(zr io.Reader, br *bytes.Reader) ([]byte, error) {
	// Reading to EOF is what makes zlib verify its Adler-32 checksum.
	doc, err := io.ReadAll(io.LimitReader(zr, maxDocLen+1))
	if err != nil {
		return nil, malformed("inflate: %w", err)
	}
	if len(doc) > maxDocLen {
		return nil, malformed("inflates past %d bytes", maxDocLen)
	}
	// bytes.Reader is an io.ByteReader, so flate read no further than its end.
	if br.Len() != 0 {
		return nil, malformed("%d bytes after the zlib stream", br.Len())
	}
	return doc, nil
}

// docFields collects the JSON members. Pointers tell "absent or null"
// apart from zero; seen catches duplicate keys, which encoding/json would
// otherwise resolve silently in favour of the last one.
type docFields struct {
	ver, identifier, userBuf, sig *string
	sdkAppID, expire, time        *int64
	seen                          map[string]bool
}

// decodeDoc walks the top-level object by token so that keys match exactly
// (encoding/json matches struct tags case-insensitively), unknown and
// duplicate keys are rejected, and numbers must be JSON numbers.
func decodeDoc(doc []byte) (*UserSig, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	f := docFields{seen: make(map[string]bool, 7)}
	for dec.More() {
		if err := f.decodeMember(dec); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	// Go's encoder appends "\n"; whitespace is fine, anything else is not.
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("data after the JSON object")
	}
	return f.userSig()
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed("json: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return malformed("json: want %q, got %v", want, tok)
	}
	return nil
}

func (f *docFields) decodeMember(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed("json: %w", err)
	}
	key, _ := tok.(string)
	if f.seen[key] {
		return malformed("duplicate key %q", key)
	}
	f.seen[key] = true
	dst, err := f.slot(key)
	if err != nil {
		return err
	}
	if err := dec.Decode(dst); err != nil {
		return malformed("%s: %w", key, err)
	}
	return nil
}

// slot returns where key's value goes: a **string or **int64, so that
// encoding/json rejects a string where a number belongs, and vice versa.
func (f *docFields) slot(key string) (any, error) {
	switch key {
	case "TLS.ver":
		return &f.ver, nil
	case "TLS.identifier":
		return &f.identifier, nil
	case "TLS.sdkappid":
		return &f.sdkAppID, nil
	case "TLS.expire":
		return &f.expire, nil
	case "TLS.time":
		return &f.time, nil
	case "TLS.userbuf":
		return &f.userBuf, nil
	case "TLS.sig":
		return &f.sig, nil
	}
	return nil, malformed("unknown key %q", key)
}

func (f *docFields) userSig() (*UserSig, error) {
	if f.ver == nil || *f.ver != sigVersion {
		return nil, malformed("TLS.ver must be %q", sigVersion)
	}
	if err := f.checkPresent(); err != nil {
		return nil, err
	}
	sig, err := decodeStdBase64("TLS.sig", *f.sig)
	if err != nil {
		return nil, err
	}
	if len(sig) != sha256.Size {
		return nil, malformed("TLS.sig is %d bytes, want %d", len(sig), sha256.Size)
	}
	u := &UserSig{
		SDKAppID: *f.sdkAppID, Identifier: *f.identifier,
		Time: *f.time, Expire: *f.expire, Sig: sig,
	}
	if err := f.setUserBuf(u); err != nil {
		return nil, err
	}
	if err := u.checkFields(); err != nil {
		return nil, malformed("%w", err)
	}
	return u, nil
}

// checkPresent requires every member Tencent's generators always emit.
func (f *docFields) checkPresent() error {
	required := []struct {
		name    string
		present bool
	}{
		{"TLS.identifier", f.identifier != nil},
		{"TLS.sdkappid", f.sdkAppID != nil},
		{"TLS.time", f.time != nil},
		{"TLS.expire", f.expire != nil},
		{"TLS.sig", f.sig != nil},
	}
	for _, r := range required {
		if !r.present {
			return malformed("%s is missing or null", r.name)
		}
	}
	return nil
}

// setUserBuf rejects an empty userbuf: no Tencent library emits one, and
// the HMAC would differ between "absent" and "empty" across languages.
func (f *docFields) setUserBuf(u *UserSig) error {
	if !f.seen["TLS.userbuf"] {
		return nil
	}
	if f.userBuf == nil || *f.userBuf == "" {
		return malformed("TLS.userbuf is null or empty")
	}
	buf, err := decodeStdBase64("TLS.userbuf", *f.userBuf)
	if err != nil {
		return err
	}
	u.UserBuf = buf
	return nil
}

// decodeStdBase64 accepts only the canonical encoding. The signed content
// re-encodes userbuf from bytes, so a variant spelling (stray newlines,
// which the base64 package ignores) must not verify either.
func decodeStdBase64(name, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, malformed("%s: %w", name, err)
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, malformed("%s: not canonical base64", name)
	}
	return b, nil
}
