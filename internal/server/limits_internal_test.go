package server

import (
	"net/http/httptest"
	"testing"

	"github.com/ringd/ringd/internal/config"
)

func TestForwardedFor(t *testing.T) {
	trusted, err := config.ParsePrefixes("127.0.0.1, 10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer, xff, want string
	}{
		{"untrusted peer: header ignored", "192.0.2.1:5000", "198.51.100.1", ""},
		{"trusted peer, one hop", "127.0.0.1:5000", "198.51.100.1", "198.51.100.1"},
		{"spoofed first hop is skipped", "127.0.0.1:5000", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"proxy chain", "127.0.0.1:5000", "198.51.100.1, 10.1.2.3", "198.51.100.1"},
		{"two headers", "127.0.0.1:5000", "", "198.51.100.9"},
		{"only proxies", "127.0.0.1:5000", "10.0.0.1", ""},
		{"garbage keeps the peer", "127.0.0.1:5000", "198.51.100.1, nonsense", ""},
		{"no header", "127.0.0.1:5000", "-", ""},
		{"IPv6 proxy, mapped client", "[::1]:5000", "::ffff:198.51.100.2", "198.51.100.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			switch tt.xff {
			case "": // two header lines
				r.Header.Add("X-Forwarded-For", "6.6.6.6")
				r.Header.Add("X-Forwarded-For", "198.51.100.9")
			case "-":
			default:
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			got, ok := forwardedFor(r, trusted)
			if tt.want == "" {
				if ok {
					t.Fatalf("forwarded address %v used, want the peer", got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Fatalf("forwardedFor = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
}
