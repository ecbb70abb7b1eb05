package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/server"
)

func TestDebugAddrServesProfilesApartFromTheAPI(t *testing.T) {
	e := startDevConfig(t, func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" }, nil)
	if e.srv.DebugAddr() == "" {
		t.Fatal("DebugAddr is empty with --debug-addr set")
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + e.srv.DebugAddr() + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200q", code, body)
	}
	if code, _ := get(e.srv.URL() + "/debug/pprof/"); code == http.StatusOK {
		t.Fatal("the API listener serves /debug/pprof/")
	}

	post := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Post("http://"+e.srv.DebugAddr()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	steps := []struct {
		path string
		want int
	}{
		{"/debug/cpuprofile/stop", http.StatusConflict}, // nothing running
		{"/debug/cpuprofile/start", http.StatusNoContent},
		{"/debug/cpuprofile/start", http.StatusConflict}, // one at a time
		{"/debug/cpuprofile/stop", http.StatusOK},
	}
	for _, s := range steps {
		code, body := post(s.path)
		if code != s.want {
			t.Fatalf("POST %s: %d %q, want %d", s.path, code, body, s.want)
		}
		if code == http.StatusOK && (len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b) {
			t.Fatalf("POST %s: %d bytes, want a gzipped pprof profile", s.path, len(body))
		}
	}
}

func TestNoDebugListenerByDefault(t *testing.T) {
	e := startDevConfig(t, nil, nil)
	if a := e.srv.DebugAddr(); a != "" {
		t.Fatalf("DebugAddr = %q without --debug-addr", a)
	}
}

// A failed start (here a taken --debug-addr) returns the error and
// releases what it opened, so a second start on the data dir works.
func TestStartFailsCleanlyWhenTheDebugAddrIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := config.Default()
	cfg.Dev, cfg.Addr, cfg.DataDir, cfg.DebugAddr = true, "127.0.0.1:0", t.TempDir(), taken.Addr().String()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := server.New(t.Context(), cfg, server.Options{Logger: logger}); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Fatalf("New with a taken --debug-addr: %v", err)
	}
	cfg.DebugAddr = ""
	srv, err := server.New(t.Context(), cfg, server.Options{Logger: logger})
	if err != nil {
		t.Fatalf("second start on the same data dir: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
