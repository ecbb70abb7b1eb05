package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/gateway/gatewaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testEnv struct {
	gw    *Gateway
	calls *gatewaytest.FakeCalls
	hub   *bus.Hub
	srv   *httptest.Server
	wsURL string
}

func newEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	hub := bus.NewHub()
	fc := gatewaytest.NewFakeCalls(hub)
	return newEnvWith(t, cfg, hub, fc, fc)
}

func newEnvWith(t testing.TB, cfg Config, hub *bus.Hub, svc CallService, fc *gatewaytest.FakeCalls) *testEnv {
	t.Helper()
	gw := New(cfg, svc, hub, gatewaytest.Auth{}, gatewaytest.Policy{})
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		gw.Close()
		srv.Close()
	})
	return &testEnv{gw: gw, calls: fc, hub: hub, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/connect"}
}

// newEnvWrapped is newEnv behind a listener whose connections are wrapped
// the way the server's per-IP limit wraps them: a net.Conn that reaches
// its socket through NetConn.
func newEnvWrapped(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	hub := bus.NewHub()
	fc := gatewaytest.NewFakeCalls(hub)
	gw := New(cfg, fc, hub, gatewaytest.Auth{}, gatewaytest.Policy{})
	srv := httptest.NewUnstartedServer(gw.Handler())
	srv.Listener = wrappingListener{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		gw.Close()
		srv.Close()
	})
	return &testEnv{gw: gw, calls: fc, hub: hub, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/connect"}
}

type wrappingListener struct{ net.Listener }

func (l wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

type wrappedConn struct{ net.Conn }

func (c wrappedConn) NetConn() net.Conn { return c.Conn }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects as sig on device with extra query parameters and reads
// nothing.
func (e *testEnv) dial(t *testing.T, sig, device string, query ...string) *websocket.Conn {
	t.Helper()
	q := url.Values{"device_id": {device}}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	c, resp, err := websocket.Dial(ctxT(t), e.wsURL+"?"+q.Encode(), &websocket.DialOptions{
		HTTPHeader:   http.Header{"Authorization": {"UserSig " + sig}},
		Subprotocols: []string{Protocol},
	})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// connect dials and reads hello, the sync events and sync_done.
func (e *testEnv) connect(t *testing.T, sig, device string, query ...string) (*websocket.Conn, map[string]any) {
	t.Helper()
	c := e.dial(t, sig, device, query...)
	hello := readFrame(t, c)
	if hello["type"] != FrameHello {
		t.Fatalf("first frame %v, want hello", hello)
	}
	for {
		f := readFrame(t, c)
		if f["type"] == FrameSyncDone {
			return c, hello
		}
	}
}

// backlog holds frames readUntil skipped, per connection, so that an event
// that arrived before a reply is not lost to the next readFrame.
var backlog = struct {
	sync.Mutex
	m map[*websocket.Conn][]map[string]any
}{m: map[*websocket.Conn][]map[string]any{}}

func readFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	backlog.Lock()
	if q := backlog.m[c]; len(q) > 0 {
		backlog.m[c] = q[1:]
		backlog.Unlock()
		return q[0]
	}
	backlog.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func writeText(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntil reads frames until one of type typ (and id, for replies); the
// frames before it stay for the next reads.
func readUntil(t *testing.T, c *websocket.Conn, typ, id string) map[string]any {
	t.Helper()
	var skipped []map[string]any
	for {
		f := readFrame(t, c)
		if f["type"] == typ && (id == "" || f["id"] == id) {
			if len(skipped) > 0 {
				backlog.Lock()
				backlog.m[c] = append(skipped, backlog.m[c]...)
				backlog.Unlock()
			}
			return f
		}
		skipped = append(skipped, f)
	}
}

// request sends a request and returns its reply.
func request(t *testing.T, c *websocket.Conn, id, typ string, data any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	writeText(t, c, string(b))
	return readUntil(t, c, FrameReply, id)
}

// readClose reads until the connection ends and returns the close code.
func readClose(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// checkFor polls f until it returns nil or the deadline passes.
func checkFor(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func errorCode(f map[string]any) string {
	e, _ := f["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func callOf(t *testing.T, reply map[string]any) map[string]any {
	t.Helper()
	r, _ := reply["result"].(map[string]any)
	c, _ := r["call"].(map[string]any)
	if c == nil {
		t.Fatalf("reply has no call: %v", reply)
	}
	return c
}
