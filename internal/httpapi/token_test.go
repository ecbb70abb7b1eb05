package httpapi

import (
	"strings"
	"testing"
)

func TestParseDeviceToken(t *testing.T) {
	long := strings.Repeat("ab", 100) // 100-byte token: Apple says lengths vary
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"64 hex", strings.Repeat("0f", 32), strings.Repeat("0f", 32), true},
		{"uppercase folded", strings.Repeat("AB", 32), strings.Repeat("ab", 32), true},
		{"longer than 32 bytes", long, long, true},
		{"spaces and brackets as NSData prints", "<" + strings.Repeat("abcd1234 ", 8) + ">", strings.Repeat("abcd1234", 8), true},
		{"odd length", strings.Repeat("a", 63), "", false},
		{"too short", "abcd", "", false},
		{"too long", strings.Repeat("a", 514), "", false},
		{"base64", strings.Repeat("q+/=", 16), "", false},
		{"empty", "", "", false},
		{"unicode", strings.Repeat("é", 32), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDeviceToken(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseDeviceToken(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("ParseDeviceToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseDeviceToken(f *testing.F) {
	for _, s := range []string{strings.Repeat("0f", 32), "<abcd ef01>", "zz", "", strings.Repeat("A", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseDeviceToken(s)
		if err != nil {
			return
		}
		if len(tok)%2 != 0 || len(tok) < minTokenHex || len(tok) > maxTokenHex || strings.ToLower(tok) != tok {
			t.Fatalf("accepted a bad token %q from %q", tok, s)
		}
		again, err := ParseDeviceToken(tok)
		if err != nil || again != tok {
			t.Fatalf("not idempotent: %q -> %q, %v", tok, again, err)
		}
	})
}

func TestValidUserID(t *testing.T) {
	for in, want := range map[string]bool{"alice": true, "a b": true, "": false, strings.Repeat("x", 33): false, "tab\t": false, "ü": false} {
		if got := checkUserID(in) == nil; got != want {
			t.Errorf("checkUserID(%q) accepted = %v, want %v", in, got, want)
		}
	}
}
