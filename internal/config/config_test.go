package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadServe(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("file-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.Addr == ":8080" && c.DataDir == "./ringd-data" && !c.Dev && c.MaxDevices == 10 && c.MaxOutbox == 1_000_000
		}},
		{name: "flags", args: []string{"--dev", "--addr", "127.0.0.1:0", "--push-ttl", "1h"}, check: func(c Config) bool { return c.Dev && c.Addr == "127.0.0.1:0" && c.PushTTL == time.Hour }},
		{name: "env", env: map[string]string{"RINGD_ADDR": ":9000", "RINGD_DEV": "true"}, check: func(c Config) bool { return c.Addr == ":9000" && c.Dev }},
		{name: "flag beats env", args: []string{"--addr", ":9001"}, env: map[string]string{"RINGD_ADDR": ":9000"}, check: func(c Config) bool { return c.Addr == ":9001" }},
		{name: "admin token from env", env: map[string]string{"RINGD_ADMIN_TOKEN": "0123456789abcdef"}, check: func(c Config) bool { return c.AdminToken == "0123456789abcdef" }},
		{name: "admin token from file", env: map[string]string{"RINGD_ADMIN_TOKEN_FILE": tokenFile}, check: func(c Config) bool { return c.AdminToken == "file-token-0123456789" }},
		{name: "token and file", env: map[string]string{"RINGD_ADMIN_TOKEN": "0123456789abcdef", "RINGD_ADMIN_TOKEN_FILE": tokenFile}, wantErr: "not both"},
		{name: "missing token file", env: map[string]string{"RINGD_ADMIN_TOKEN_FILE": "/nonexistent/x"}, wantErr: "RINGD_ADMIN_TOKEN_FILE"},
		{name: "short token", env: map[string]string{"RINGD_ADMIN_TOKEN": "short"}, wantErr: "too short"},
		{name: "bad addr", args: []string{"--addr", "8080"}, wantErr: "--addr"},
		{name: "bad database", args: []string{"--database", "mysql://x"}, wantErr: "postgres://"},
		{name: "http apns url", args: []string{"--apns-sandbox-url", "http://x"}, wantErr: "https://"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "--log-format"},
		{name: "bad env value", env: map[string]string{"RINGD_PUSH_TTL": "soon"}, wantErr: "RINGD_PUSH_TTL"},
		{name: "zero workers", args: []string{"--push-workers", "0"}, wantErr: "--push-workers"},
		{name: "max outbox", env: map[string]string{"RINGD_MAX_OUTBOX": "5000"}, check: func(c Config) bool { return c.MaxOutbox == 5000 }},
		{name: "zero max outbox", args: []string{"--max-outbox", "0"}, wantErr: "--max-outbox"},
		{name: "debug addr", args: []string{"--debug-addr", "127.0.0.1:6060"}, check: func(c Config) bool { return c.DebugAddr == "127.0.0.1:6060" }},
		{name: "debug addr localhost", env: map[string]string{"RINGD_DEBUG_ADDR": "localhost:0"}, check: func(c Config) bool { return c.DebugAddr == "localhost:0" }},
		{name: "debug addr on all interfaces", args: []string{"--debug-addr", ":6060"}, wantErr: "loopback"},
		{name: "debug addr public", args: []string{"--debug-addr", "10.0.0.1:6060"}, wantErr: "loopback"},
		{name: "debug addr no port", args: []string{"--debug-addr", "127.0.0.1"}, wantErr: "host:port"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
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
