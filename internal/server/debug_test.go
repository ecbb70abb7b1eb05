package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/config"
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
