package wsconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// serve runs an httptest.Server whose handler upgrades with opts and
// hands the Conn to handle; the handler's outcome (the refusal, or what
// handle returned) arrives on the channel.
func serve(t *testing.T, opts Options, handle func(*Conn) error) (*httptest.Server, <-chan error) {
	t.Helper()
	results := make(chan error, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, opts)
		if err != nil {
			results <- err
			return
		}
		defer c.CloseNow()
		results <- handle(c)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// echo answers every message with itself until the client leaves; the
// message "logout" gets the close handshake instead.
func echo(c *Conn) error {
	for {
		if err := c.Await(); err != nil {
			return err
		}
		m, err := c.ReadMessage(1 << 20)
		if err != nil {
			return err
		}
		switch {
		case m.Op == 0:
		case string(m.Data) == "logout":
			if err := c.Close(4002, "logged out"); err != nil {
				return err
			}
		default:
			if err := c.WriteMessage(m.Op, m.Data); err != nil {
				return err
			}
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUpgradeEcho(t *testing.T) {
	ctx := testContext(t)
	srv, results := serve(t, Options{Subprotocol: "ringd.v1"}, echo)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
		Subprotocols: []string{"other", "ringd.v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if got := c.Subprotocol(); got != "ringd.v1" {
		t.Errorf("subprotocol %q, want ringd.v1", got)
	}

	roundTrip := func(want string) {
		t.Helper()
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading the echo of %d bytes: %v", len(want), err)
		}
		if typ != websocket.MessageText || string(got) != want {
			t.Errorf("echo of %d bytes: got type %v, %d bytes", len(want), typ, len(got))
		}
	}
	for _, msg := range []string{"", "x", "grüße 👋", pattern(125), pattern(126), pattern(65535), pattern(65536), pattern(300000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		roundTrip(msg)
	}

	// The client's Writer sends one frame per Write, then a final empty one.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{"frag", "men", "ted ", pattern(5000), " é"}
	for _, p := range parts {
		if _, err := io.WriteString(w, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	roundTrip(strings.Join(parts, ""))

	// The client's Ping waits for a pong that only its reader sees.
	read := make(chan string, 1)
	go func() {
		_, b, err := c.Read(ctx)
		if err != nil {
			read <- "error: " + err.Error()
			return
		}
		read <- string(b)
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("after ping")); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, read, "the echo after the ping"); got != "after ping" {
		t.Errorf("got %q, want the echo after the ping", got)
	}

	if err := c.Write(ctx, websocket.MessageText, []byte("logout")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "logged out" {
		t.Errorf("client read %v, want close 4002 logged out", err)
	}
	// The client answered the close; the server's reader sees that answer.
	err = wait(t, results, "the server's end")
	var sce *CloseError
	if !errors.As(err, &sce) || sce.Code != 4002 || sce.Local {
		t.Errorf("server ended with %v, want the client's close 4002", err)
	}
}

func TestUpgradeSubprotocol(t *testing.T) {
	tests := []struct {
		name    string
		server  string
		offered []string
		want    string
	}{
		{"offered", "ringd.v1", []string{"ringd.v1"}, "ringd.v1"},
		{"offered among others", "ringd.v1", []string{"a", "ringd.v1", "b"}, "ringd.v1"},
		{"not offered", "ringd.v1", nil, ""},
		{"others offered", "ringd.v1", []string{"ringd.v2"}, ""},
		{"server has none", "", []string{"ringd.v1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			srv, _ := serve(t, Options{Subprotocol: tt.server}, echo)
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: tt.offered})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := c.Subprotocol(); got != tt.want {
				t.Errorf("subprotocol %q, want %q", got, tt.want)
			}
		})
	}
}

const sampleKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 section 1.3

// rawHandshake sends a request written by hand and reads the response;
// tail goes out in the same write, right behind the request.
func rawHandshake(t *testing.T, addr, requestLine string, header http.Header, tail []byte) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	b.WriteString(requestLine + "\r\nHost: " + addr + "\r\n")
	if err := header.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\r\n")
	if _, err := nc.Write(append([]byte(b.String()), tail...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, br, nc
}

func TestUpgradeHandshake(t *testing.T) {
	valid := func() http.Header {
		return http.Header{
			"Connection":            {"Upgrade"},
			"Upgrade":               {"websocket"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {sampleKey},
		}
	}
	patterns := []string{"*.example.com", "ringd.test"}
	tests := []struct {
		name        string
		requestLine string // "" is GET over HTTP/1.1
		edit        func(h http.Header, host string)
		patterns    []string
		want        int
	}{
		{name: "valid", want: 101},
		{name: "tokens among others", edit: func(h http.Header, _ string) {
			h.Set("Connection", "keep-alive, UPGRADE")
			h.Set("Upgrade", "foo, WebSocket")
		}, want: 101},
		{name: "POST", requestLine: "POST / HTTP/1.1", want: 405},
		{name: "HTTP/1.0", requestLine: "GET / HTTP/1.0", want: 400},
		{name: "no Upgrade", edit: func(h http.Header, _ string) { h.Del("Upgrade") }, want: 426},
		{name: "Upgrade to something else", edit: func(h http.Header, _ string) { h.Set("Upgrade", "h2c") }, want: 426},
		{name: "no Connection", edit: func(h http.Header, _ string) { h.Del("Connection") }, want: 426},
		{name: "version 8", edit: func(h http.Header, _ string) { h.Set("Sec-WebSocket-Version", "8") }, want: 426},
		{name: "no version", edit: func(h http.Header, _ string) { h.Del("Sec-WebSocket-Version") }, want: 426},
		{name: "key not base64", edit: func(h http.Header, _ string) { h.Set("Sec-WebSocket-Key", "not base64 at all!") }, want: 400},
		{name: "key of 15 bytes", edit: func(h http.Header, _ string) {
			h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 15)))
		}, want: 400},
		{name: "key of 17 bytes", edit: func(h http.Header, _ string) {
			h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 17)))
		}, want: 400},
		{name: "no key", edit: func(h http.Header, _ string) { h.Del("Sec-WebSocket-Key") }, want: 400},
		{name: "origin not allowed", patterns: patterns, edit: func(h http.Header, _ string) { h.Set("Origin", "https://evil.test") }, want: 403},
		{name: "origin null", patterns: patterns, edit: func(h http.Header, _ string) { h.Set("Origin", "null") }, want: 403},
		{name: "origin matching a pattern", patterns: patterns, edit: func(h http.Header, _ string) { h.Set("Origin", "https://app.example.com") }, want: 101},
		{name: "origin matching another pattern", patterns: patterns, edit: func(h http.Header, _ string) { h.Set("Origin", "https://ringd.test") }, want: 101},
		{name: "origin matching in another case", patterns: patterns, edit: func(h http.Header, _ string) { h.Set("Origin", "https://APP.Example.COM") }, want: 101},
		{name: "origin of the same host", patterns: patterns, edit: func(h http.Header, host string) { h.Set("Origin", "http://"+host) }, want: 101},
		{name: "empty patterns allow the same host", patterns: []string{}, edit: func(h http.Header, host string) { h.Set("Origin", "http://"+host) }, want: 101},
		{name: "empty patterns refuse others", patterns: []string{}, edit: func(h http.Header, _ string) { h.Set("Origin", "https://app.example.com") }, want: 403},
		{name: "no origin with patterns", patterns: patterns, want: 101},
		{name: "pattern with a scheme", patterns: []string{"https://*.example.com"}, edit: func(h http.Header, _ string) { h.Set("Origin", "https://app.example.com") }, want: 101},
		{name: "pattern with another scheme", patterns: []string{"https://*.example.com"}, edit: func(h http.Header, _ string) { h.Set("Origin", "http://app.example.com") }, want: 403},
		{name: "malformed pattern", patterns: []string{"[app.example.com"}, edit: func(h http.Header, _ string) { h.Set("Origin", "https://app.example.com") }, want: 403},
		{name: "any origin without patterns", edit: func(h http.Header, _ string) { h.Set("Origin", "https://evil.test") }, want: 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := serve(t, Options{OriginPatterns: tt.patterns}, func(*Conn) error { return nil })
			addr := srv.Listener.Addr().String()
			h := valid()
			if tt.edit != nil {
				tt.edit(h, addr)
			}
			line := tt.requestLine
			if line == "" {
				line = "GET / HTTP/1.1"
			}
			resp, _, _ := rawHandshake(t, addr, line, h, nil)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			err := wait(t, results, "the handler's end")
			if tt.want == 101 {
				if err != nil {
					t.Errorf("Upgrade: %v", err)
				}
				if got := resp.Header.Get("Sec-WebSocket-Accept"); got != AcceptKey(sampleKey) {
					t.Errorf("Sec-WebSocket-Accept %q, want %q", got, AcceptKey(sampleKey))
				}
				if !HeaderHasToken(resp.Header, "Upgrade", "websocket") || !HeaderHasToken(resp.Header, "Connection", "upgrade") {
					t.Errorf("101 without Upgrade and Connection: %v", resp.Header)
				}
				if resp.Header.Get("Sec-WebSocket-Protocol") != "" || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
					t.Errorf("a subprotocol or an extension nobody asked for: %v", resp.Header)
				}
				return
			}
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != tt.want {
				t.Errorf("Upgrade returned %v, want a HandshakeError with %d", err, tt.want)
			}
			if got := resp.Header.Get("Sec-WebSocket-Version"); (tt.want == 426) != (got == "13") {
				t.Errorf("status %d with Sec-WebSocket-Version %q", tt.want, got)
			}
		})
	}
}

func TestUpgradeEarlyFrame(t *testing.T) {
	buffered := make(chan bool, 1)
	srv, results := serve(t, Options{}, func(c *Conn) error {
		buffered <- c.Buffered()
		return echo(c)
	})
	addr := srv.Listener.Addr().String()
	h := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {sampleKey},
	}
	frames := append(mframe(fin|byte(OpText), "early bird"), mframe(fin|byte(OpPing), "p")...)
	resp, br, nc := rawHandshake(t, addr, "GET / HTTP/1.1", h, frames)
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	// One small write reaches net/http's read buffer whole, so the frames
	// are handed over as early bytes rather than read from the socket.
	if !wait(t, buffered, "the upgrade") {
		t.Error("the frames behind the request were not handed over as early bytes")
	}
	if f := readServerFrame(t, br); f.op() != OpText || string(f.payload) != "early bird" {
		t.Errorf("got opcode %d with %q, want the echo of the early frame", f.op(), f.payload)
	}
	if f := readServerFrame(t, br); f.op() != OpPong || string(f.payload) != "p" {
		t.Errorf("got opcode %d with %q, want the pong", f.op(), f.payload)
	}
	if _, err := nc.Write(mframe(fin|byte(OpClose), closePayload(1000, ""))); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, results, "the server's end"); CloseStatus(err) != 1000 {
		t.Errorf("server ended with %v, want the client's close", err)
	}
}

func TestAcceptKey(t *testing.T) {
	if got, want := AcceptKey(sampleKey), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("AcceptKey(%q) = %q, want %q", sampleKey, got, want)
	}
}

func TestHeaderTokens(t *testing.T) {
	tests := []struct {
		values []string
		want   []string
	}{
		{nil, nil},
		{[]string{"a"}, []string{"a"}},
		{[]string{" a , b,,c ", "d"}, []string{"a", "b", "c", "d"}},
		{[]string{" , "}, nil},
	}
	for _, tt := range tests {
		h := http.Header{"X-Test": tt.values}
		if got := HeaderTokens(h, "X-Test"); !slices.Equal(got, tt.want) {
			t.Errorf("HeaderTokens(%q) = %q, want %q", tt.values, got, tt.want)
		}
	}
	h := http.Header{"Connection": {"keep-alive, Upgrade"}}
	if !HeaderHasToken(h, "Connection", "upgrade") || HeaderHasToken(h, "Connection", "close") || HeaderHasToken(h, "Connection", "keep") {
		t.Errorf("HeaderHasToken is wrong on %q", h)
	}
}
