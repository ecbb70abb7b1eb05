package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/gateway/gatewaytest"
)

// dialStatus tries to connect and returns the refusal's status, code and
// Retry-After (status 101 when it connected; the connection is closed by
// the test's cleanup).
func (e *testEnv) dialStatus(t *testing.T, sig, device string) (int, string, string) {
	t.Helper()
	c, resp, err := websocket.Dial(ctxT(t), e.wsURL+"?device_id="+device, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"UserSig " + sig}}, Subprotocols: []string{Protocol},
	})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
		return http.StatusSwitchingProtocols, "", ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	var body httpError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Code, resp.Header.Get("Retry-After")
}

// A client IP may hold MaxConnsPerIP sessions; one more is refused before
// the upgrade with 429, and a closed session frees its slot.
func TestConnectionsPerIP(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerIP: 2})
	first, _ := e.connect(t, "1:alice", "a1")
	e.connect(t, "1:bob", "b1")
	status, code, retry := e.dialStatus(t, "1:carol", "c1")
	if status != http.StatusTooManyRequests || code != "too_many_connections" || retry == "" {
		t.Fatalf("third connection: %d %q Retry-After %q, want 429 too_many_connections with Retry-After", status, code, retry)
	}
	// Refusals before authentication count too: an unauthenticated flood
	// cannot exceed the limit either.
	if status, _, _ := e.dialStatus(t, "garbage", "x"); status != http.StatusTooManyRequests {
		t.Fatalf("unauthenticated connection over the limit: %d, want 429", status)
	}
	_ = first.Close(websocket.StatusNormalClosure, "")
	checkFor(t, 5*time.Second, func() error {
		if n := e.gw.perIP.InUse("127.0.0.1"); n != 1 {
			return fmt.Errorf("%d sessions counted for the IP, want 1", n)
		}
		return nil
	})
	if status, code, _ := e.dialStatus(t, "1:carol", "c1"); status != http.StatusSwitchingProtocols {
		t.Fatalf("after a close: %d %s, want a connection", status, code)
	}
}

// Refused upgrades release their slot: many failed attempts leave the
// count at zero.
func TestConnectionsPerIPReleasedOnRefusal(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerIP: 1})
	for range 5 {
		if status, code, _ := e.dialStatus(t, "expired", "d"); status != http.StatusUnauthorized {
			t.Fatalf("expired sig: %d %s, want 401", status, code)
		}
	}
	if n := e.gw.perIP.Keys(); n != 0 {
		t.Fatalf("%d IPs still counted after refused upgrades", n)
	}
}

// limitedAuth refuses every sig as rate limited, as httpapi does past the
// failed-authentication limits, and records the address it was given.
type limitedAuth struct{ gatewaytest.Auth }

type waitError struct{}

func (waitError) Error() string             { return "auth_rate_limited" }
func (waitError) HTTPStatus() int           { return http.StatusTooManyRequests }
func (waitError) ErrorCode() string         { return "auth_rate_limited" }
func (waitError) RetryAfter() time.Duration { return 2500 * time.Millisecond }
func (limitedAuth) AuthenticateRequest(r *http.Request, sig string) (int64, string, error) {
	if r.RemoteAddr == "" {
		return 0, "", errors.New("no remote address")
	}
	return 0, "", waitError{}
}

func TestAuthRateLimitedHasRetryAfter(t *testing.T) {
	hub := bus.NewHub()
	fc := gatewaytest.NewFakeCalls(hub)
	gw := New(Config{}, fc, hub, limitedAuth{}, gatewaytest.Policy{})
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { gw.Close(); srv.Close() })
	e := &testEnv{gw: gw, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/connect"}
	status, code, retry := e.dialStatus(t, "1:alice", "phone")
	if status != http.StatusTooManyRequests || code != "auth_rate_limited" || retry != "3" {
		t.Fatalf("got %d %q Retry-After %q, want 429 auth_rate_limited Retry-After 3", status, code, retry)
	}
}

// rawUpgrade opens a WebSocket by hand, so the test can send broken
// frames, and returns the connection with a channel closed when the
// server closes it.
func rawUpgrade(t *testing.T, e *testEnv, sig, device string) (net.Conn, <-chan struct{}) {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fmt.Fprintf(c, "GET /v1/connect?device_id=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: UserSig %s\r\n\r\n", device, addr, sig)
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	_ = c.SetReadDeadline(time.Time{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, br) // hello, sync_done, pings: until the server hangs up
	}()
	return c, closed
}

// A client that starts a frame and trickles it byte by byte, never
// finishing, is cut by the heartbeat deadline: only a frame's start counts
// as activity, so a slow frame cannot hold a session open.
func TestUnfinishedFrameIsCut(t *testing.T) {
	const hb = 300 * time.Millisecond
	e := newEnv(t, Config{HeartbeatTimeout: hb})
	c, closed := rawUpgrade(t, e, "1:alice", "slow")
	// A masked text frame announcing 1000 bytes.
	if _, err := c.Write([]byte{0x81, 0x80 | 126, 0x03, 0xe8, 1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for sent := 0; ; sent++ {
		select {
		case <-closed:
			if took := time.Since(start); took > 5*hb {
				t.Fatalf("cut after %v, want about the heartbeat timeout %v", took, hb)
			}
			if sent >= 1000 {
				t.Fatal("the whole frame went through before the cut")
			}
			return
		case <-tick.C:
			_, _ = c.Write([]byte{'x'}) // fails once the server is gone; closed tells
		case <-deadline:
			t.Fatal("a client trickling one frame was not cut")
		}
	}
}

// Deep JSON is refused at once with bad_frame and the session goes on; a
// deeper-than-the-frame-limit body is frame_too_large.
func TestDeepFrame(t *testing.T) {
	e := newEnv(t, Config{})
	c, _ := e.connect(t, "1:alice", "phone")
	deep := `{"id":"deep","type":"invite","data":{"x":` + strings.Repeat("[", 30_000) + strings.Repeat("]", 30_000) + `}}`
	start := time.Now()
	writeText(t, c, deep)
	r := readUntil(t, c, FrameReply, "deep")
	if errorCode(r) != CodeBadFrame {
		t.Fatalf("deep frame: %v, want %s", r, CodeBadFrame)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refusing a deep frame took %v", took)
	}
	writeText(t, c, `{"id":"huge","type":"invite","data":`+strings.Repeat("[", 100_000)+`}`)
	if r := readUntil(t, c, FrameReply, ""); errorCode(r) != CodeFrameTooLarge {
		t.Fatalf("100k-deep frame: %v, want %s", r, CodeFrameTooLarge)
	}
	if r := request(t, c, "after", TypePing, nil); r["ok"] != true {
		t.Fatalf("ping after the deep frames: %v", r)
	}
}

// Invalid UTF-8 is refused, not replaced: the frame gets bad_frame.
func TestInvalidUTF8Frame(t *testing.T) {
	e := newEnv(t, Config{})
	c, _ := e.connect(t, "1:alice", "phone")
	writeText(t, c, "{\"id\":\"u\",\"type\":\"invite\",\"data\":{\"invitees\":[\"b\xffob\"]}}")
	if r := readUntil(t, c, FrameReply, ""); errorCode(r) != CodeBadFrame {
		t.Fatalf("invalid UTF-8: %v, want %s", r, CodeBadFrame)
	}
}

func TestOverDepth(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"a":[1,2,{"b":3}]}`, false},
		{strings.Repeat("[", 32) + strings.Repeat("]", 32), false},
		{strings.Repeat("[", 33), true},
		{`{"s":"` + strings.Repeat("[", 100) + `"}`, false},     // brackets in strings do not count
		{`{"s":"\"` + strings.Repeat("{", 100) + `\\"}`, false}, // nor after escaped quotes
	}
	for _, tt := range tests {
		if got := overDepth([]byte(tt.in), MaxFrameDepth); got != tt.want {
			t.Errorf("overDepth(%.40q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
