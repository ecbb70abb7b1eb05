package credentials

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{7}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	s := testSealer(t)
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty", nil, nil},
		{"with aad", []byte("p12 password"), []byte("credential:42")},
		{"large", bytes.Repeat([]byte{0xab}, 100<<10), []byte("x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := s.Seal(tc.plaintext, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if sealed[0] != sealVersion1 || len(sealed) != 1+12+len(tc.plaintext)+16 {
				t.Fatalf("layout: version %d, len %d", sealed[0], len(sealed))
			}
			if len(tc.plaintext) > 8 && bytes.Contains(sealed, tc.plaintext[:8]) {
				t.Fatal("plaintext visible in sealed output")
			}
			got, err := s.Open(sealed, tc.aad)
			if err != nil || !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("Open = %q, %v", got, err)
			}
		})
	}
}

func TestSealerNoncesDiffer(t *testing.T) {
	s := testSealer(t)
	a, _ := s.Seal([]byte("same"), nil)
	b, _ := s.Seal([]byte("same"), nil)
	if bytes.Equal(a[1:13], b[1:13]) || bytes.Equal(a, b) {
		t.Fatal("two seals share a nonce")
	}
}

func TestSealerRejects(t *testing.T) {
	s := testSealer(t)
	other, err := NewSealer(bytes.Repeat([]byte{8}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("the secret"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { c := bytes.Clone(sealed); c[i] ^= 1; return c }
	tests := []struct {
		name   string
		sealer *Sealer
		sealed []byte
		aad    []byte
	}{
		{"version byte", s, flip(0), []byte("row-1")},
		{"nonce", s, flip(5), []byte("row-1")},
		{"ciphertext", s, flip(14), []byte("row-1")},
		{"tag", s, flip(len(sealed) - 1), []byte("row-1")},
		{"other record", s, sealed, []byte("row-2")},
		{"no aad", s, sealed, nil},
		{"wrong key", other, sealed, []byte("row-1")},
		{"truncated", s, sealed[:len(sealed)-1], []byte("row-1")},
		{"too short", s, sealed[:20], []byte("row-1")},
		{"empty", s, nil, nil},
		{"future version", s, append([]byte{2}, sealed[1:]...), []byte("row-1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sealer.Open(tc.sealed, tc.aad)
			if !errors.Is(err, ErrSealedCorrupt) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrSealedCorrupt", got, err)
			}
		})
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("accepted a %d-byte key", n)
		}
	}
}

func TestLoadOrCreateMasterKeyCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "secrets")
	path := filepath.Join(dir, "master.key")
	key, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != MasterKeySize || bytes.Equal(key, make([]byte, MasterKeySize)) {
		t.Fatalf("key = %x", key)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode = %v, %v; want 0700", di.Mode().Perm(), err)
	}
	again, err := LoadOrCreateMasterKey(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("reload = %x, %v; want the same key", again, err)
	}
	if _, err := NewSealer(again); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateMasterKeyFormats(t *testing.T) {
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
		wantErr bool
	}{
		{"raw", key, false},
		{"hex", []byte(hex.EncodeToString(key)), false},
		{"hex newline", []byte(hex.EncodeToString(key) + "\n"), false},
		{"hex upper crlf", []byte(strings.ToUpper(hex.EncodeToString(key)) + "\r\n"), false},
		{"base64 newline", []byte(base64.StdEncoding.EncodeToString(key) + "\n"), false},
		{"base64 raw url", []byte(base64.RawURLEncoding.EncodeToString(key)), false},
		{"empty", nil, true},
		{"raw short", key[:31], true},
		{"raw long", append(bytes.Clone(key), 0), true},
		{"hex short", []byte(hex.EncodeToString(key[:16]) + "\n"), true},
		{"base64 long", []byte(base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 1)) + "\n"), true},
		{"text", []byte("correct horse battery staple, please\n"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateMasterKey(path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted %q", tc.content)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.content) {
					t.Fatal("a bad key file was overwritten")
				}
				return
			}
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("got %x, %v; want %x", got, err, key)
			}
		})
	}
}

// A readable key file still loads (container secret mounts are often 0644)
// but is warned about. Not parallel: it swaps the default logger.
func TestLoadOrCreateMasterKeyWarnsWhenExposed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("ab", MasterKeySize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	if _, err := LoadOrCreateMasterKey(path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by other users") {
		t.Fatalf("no warning logged: %q", logs.String())
	}
	if strings.Contains(logs.String(), "abab") {
		t.Fatal("the key was logged")
	}
}

func TestLoadOrCreateMasterKeyUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if _, err := LoadOrCreateMasterKey(filepath.Join(dir, "master.key")); err == nil {
		t.Fatal("created a key in a read-only directory")
	}
}
