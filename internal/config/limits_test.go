package config

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLimitOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.AuthFailuresPerIP == 20 && c.AuthFailuresPerApp == 100 && c.MaxConnsPerIP == 512 &&
				c.MaxWebSocketsPerIP == 256 && c.ReadHeaderTimeout == 10*time.Second && c.SecretGrace == 24*time.Hour && c.TrustedProxies == ""
		}},
		{name: "flags", args: []string{"--auth-failures-per-ip", "5", "--secret-grace", "1h", "--trusted-proxies", "10.0.0.0/8, 127.0.0.1"},
			check: func(c Config) bool {
				return c.AuthFailuresPerIP == 5 && c.SecretGrace == time.Hour && c.TrustedProxies == "10.0.0.0/8, 127.0.0.1"
			}},
		{name: "env", env: map[string]string{"RINGD_MAX_WEBSOCKETS_PER_IP": "9", "RINGD_READ_HEADER_TIMEOUT": "2s"},
			check: func(c Config) bool { return c.MaxWebSocketsPerIP == 9 && c.ReadHeaderTimeout == 2*time.Second }},
		{name: "zero disables a limit", args: []string{"--max-conns-per-ip", "0", "--secret-grace", "0"},
			check: func(c Config) bool { return c.MaxConnsPerIP == 0 && c.SecretGrace == 0 }},
		{name: "negative limit", args: []string{"--auth-failures-per-app", "-1"}, wantErr: "--auth-failures-per-app"},
		{name: "negative grace", args: []string{"--secret-grace", "-1h"}, wantErr: "--secret-grace"},
		{name: "zero header timeout", args: []string{"--read-header-timeout", "0"}, wantErr: "--read-header-timeout"},
		{name: "bad proxy", args: []string{"--trusted-proxies", "10.0.0.0/8,proxy.local"}, wantErr: "--trusted-proxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadServe(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.1.2.3/8 ,::1, ::ffff:192.0.2.1,,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
