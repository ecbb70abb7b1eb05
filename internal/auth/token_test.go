package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(tok, TokenPrefix)
		if !ok {
			t.Fatalf("token %q lacks prefix %q", tok, TokenPrefix)
		}
		raw, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token body %q: %d bytes, %v", body, len(raw), err)
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
	}
}

func TestTokenEqual(t *testing.T) {
	const want = "rda_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	tests := []struct {
		name      string
		got, want string
		equal     bool
	}{
		{"same", want, want, true},
		{"last char differs", want[:len(want)-1] + "H", want, false},
		{"prefix of want", want[:10], want, false},
		{"want plus suffix", want + "x", want, false},
		{"empty got", "", want, false},
		{"unset want never matches", "", "", false},
		{"unset want vs anything", "x", "", false},
		{"case differs", strings.ToUpper(want), want, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TokenEqual(tt.got, tt.want); got != tt.equal {
				t.Errorf("TokenEqual(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.equal)
			}
		})
	}
}
