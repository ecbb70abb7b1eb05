package credentials

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// MasterKeySize is the size of the key that seals secrets at rest (AES-256).
const MasterKeySize = 32

// sealVersion1 is AES-256-GCM with a random 12-byte nonce under the master
// key. The prefix lets a later version (another key, another cipher) be
// introduced while old rows still open.
const sealVersion1 byte = 1

const nonceSize = 12

// ErrSealedCorrupt means sealed data did not open: it was altered, belongs
// to another record (additional data differs) or another master key.
var ErrSealedCorrupt = errors.New("credentials: sealed data is corrupt or was sealed with another master key")

// Sealer encrypts secrets at rest. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("credentials: master key is %d bytes, want %d", len(key), MasterKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("credentials: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("credentials: master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext as version || nonce || ciphertext+tag. Pass the
// owning record's identity as additionalData so that a sealed value copied
// onto another row does not open there.
func (s *Sealer) Seal(plaintext, additionalData []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, 1+nonceSize+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("credentials: seal nonce: %w", err)
	}
	out := append([]byte{sealVersion1}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, versionedAAD(sealVersion1, additionalData)), nil
}

// Open reverses Seal. Any alteration, including of the version byte, fails
// with ErrSealedCorrupt.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrSealedCorrupt)
	}
	if sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrSealedCorrupt, sealed[0])
	}
	nonce, ciphertext := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	plain, err := s.aead.Open(nil, nonce, ciphertext, versionedAAD(sealed[0], additionalData))
	if err != nil {
		return nil, ErrSealedCorrupt
	}
	return plain, nil
}

// versionedAAD binds the version byte into the authentication tag, so a
// rewritten prefix cannot make a future version misread old data.
func versionedAAD(version byte, aad []byte) []byte {
	return append([]byte{version}, aad...)
}

// LoadOrCreateMasterKey reads the master key at path, or creates it with a
// fresh random key (file 0600, directory 0700) when it does not exist. The
// file may hold the raw 32 bytes, or 64 hex characters, or base64 text.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	key, err := readMasterKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createMasterKey(path)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and create.
			return readMasterKey(path)
		}
	}
	return key, err
}

func readMasterKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: read master key: %w", err)
	}
	warnIfExposed(path)
	key, ok := decodeMasterKey(data)
	if !ok {
		return nil, fmt.Errorf("credentials: master key file %s must hold %d raw bytes, %d hex characters or base64 of %d bytes (found %d bytes)",
			path, MasterKeySize, 2*MasterKeySize, MasterKeySize, len(data))
	}
	return key, nil
}

func decodeMasterKey(data []byte) ([]byte, bool) {
	if len(data) == MasterKeySize {
		return bytes.Clone(data), true
	}
	text := string(bytes.TrimSpace(data))
	if k, err := hex.DecodeString(text); err == nil && len(k) == MasterKeySize {
		return k, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil && len(k) == MasterKeySize {
			return k, true
		}
	}
	return nil, false
}

// warnIfExposed warns rather than fails: refusing to start over file modes
// would break containers whose secret mounts are 0644 by default.
func warnIfExposed(path string) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		slog.Warn("master key file is readable by other users; chmod 600 it",
			slog.String("path", path), slog.String("mode", fi.Mode().Perm().String()))
	}
}

// createMasterKey writes a new key as hex text, which survives copying into
// a secret manager or an environment file, with O_EXCL so that two
// processes starting together cannot overwrite each other's key.
func createMasterKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("credentials: create master key directory: %w", err)
	}
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("credentials: generate master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("credentials: create master key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path) // never leave a truncated key behind to be read later
		return nil, fmt.Errorf("credentials: write master key: %w", werr)
	}
	return key, nil
}
