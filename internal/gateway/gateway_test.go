package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
)

func TestConnectRefused(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name       string
		query      string
		auth       string
		protocol   string
		noUpgrade  bool
		wantStatus int
		wantCode   string
	}{
		{"no usersig", "device_id=d", "", "", false, 401, "unauthorized"},
		{"expired usersig", "device_id=d", "UserSig expired", "", false, 401, "usersig_expired"},
		{"malformed usersig in query", "device_id=d&usersig=nonsense", "", "", false, 401, "usersig_malformed"},
		{"authenticator failure", "device_id=d", "UserSig boom", "", false, 500, "internal"},
		{"settings unavailable", "device_id=d", "UserSig 3:alice", "", false, 503, "unavailable"},
		{"missing device_id", "", "UserSig 1:alice", "", false, 400, "bad_device_id"},
		{"device_id too long", "device_id=" + strings.Repeat("x", 129), "UserSig 1:alice", "", false, 400, "bad_device_id"},
		{"device_id with control bytes", "device_id=a%00b", "UserSig 1:alice", "", false, 400, "bad_device_id"},
		{"bad state", "device_id=d&state=asleep", "UserSig 1:alice", "", false, 400, "bad_state"},
		{"unknown protocol version", "device_id=d", "UserSig 1:alice", "ringd.v9", false, 400, "unsupported_protocol"},
		{"plain GET", "device_id=d", "UserSig 1:alice", "", true, 426, "websocket_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.srv.URL+"/v1/connect?"+tt.query, nil)
			if !tt.noUpgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.protocol != "" {
				req.Header.Set("Sec-WebSocket-Protocol", tt.protocol)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body httpError
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || body.Status != tt.wantStatus || body.Code != tt.wantCode || body.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if n := e.gw.Connections(); n != 0 {
		t.Fatalf("Connections = %d", n)
	}
}

func TestConnectWithoutSubprotocolAndQueryUserSig(t *testing.T) {
	e := newEnv(t, Config{})
	c, resp, err := websocket.Dial(ctxT(t), e.wsURL+"?device_id=web&usersig=1:alice&state=background", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	hello := readFrame(t, c)
	if hello["user"] != "alice" || hello["device_id"] != "web" || hello["state"] != "background" || hello["protocol"] != Protocol {
		t.Fatalf("hello = %v", hello)
	}
	if got := e.hub.Devices(1, "alice"); len(got) != 1 || got[0].Foreground {
		t.Fatalf("hub devices = %+v", got)
	}
}

func TestHelloSyncThenLiveEvents(t *testing.T) {
	e := newEnv(t, Config{HeartbeatTimeout: 12 * time.Second})
	call := &calls.Call{CallID: "c1", SDKAppID: 1, Caller: "bob", State: calls.StateRinging, Seq: 3}
	// While the device syncs, the call changes twice: seq 3 again (already
	// in the snapshot, so not sent) and seq 4 (sent after sync_done).
	e.calls.SetSync([]calls.Event{{Type: calls.EventState, CallID: "c1", Seq: 3, Call: call}}, func(app int64, user, _ string) {
		for _, seq := range []int64{3, 4} {
			b, _ := json.Marshal(calls.Event{Type: calls.EventAccepted, CallID: "c1", Seq: seq, Call: call})
			e.hub.Publish(app, user, bus.Message{Kind: bus.KindEvent, Payload: b})
		}
	})
	c := e.dial(t, "1:alice", "phone")
	hello := readFrame(t, c)
	if hello["type"] != "hello" || hello["session_id"] == "" || hello["heartbeat_ms"] != float64(12000) ||
		hello["protocol"] != "ringd.v1" || hello["device_id"] != "phone" || hello["max_frame"] != float64(DefaultMaxFrame) {
		t.Fatalf("hello = %v", hello)
	}
	if _, err := time.Parse(time.RFC3339Nano, hello["server_time"].(string)); err != nil {
		t.Fatalf("server_time: %v", err)
	}
	var got []string
	for range 3 {
		f := readFrame(t, c)
		s := f["type"].(string)
		if ev, ok := f["event"].(map[string]any); ok {
			s += fmt.Sprintf(":%s:%v", ev["type"], ev["seq"])
		}
		got = append(got, s)
	}
	want := []string{"event:call.state:3", "sync_done", "event:call.accepted:4"}
	if !slices.Equal(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
	if got := e.calls.Connected(); !slices.Equal(got, []string{"alice/phone"}) {
		t.Fatalf("DeviceConnected calls: %v", got)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	checkFor(t, 5*time.Second, func() error {
		if got := e.calls.Disconnected(); !slices.Equal(got, []string{"alice/phone"}) {
			return fmt.Errorf("DeviceDisconnected calls: %v", got)
		}
		if e.gw.Connections() != 0 || e.hub.Count() != 0 {
			return fmt.Errorf("connections %d, hub %d", e.gw.Connections(), e.hub.Count())
		}
		return nil
	})
}

func TestRequestsAndErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Config{MaxBadFrames: 1000, Metrics: reg})
	c, _ := e.connect(t, "1:alice", "phone")
	bob, _ := e.connect(t, "1:bob", "ipad")

	inv := request(t, c, "r1", "invite", map[string]any{"invitees": []string{"bob"}, "media": "video"})
	if inv["ok"] != true {
		t.Fatalf("invite: %v", inv)
	}
	callID := callOf(t, inv)["call_id"].(string)
	ev := readUntil(t, bob, FrameEvent, "")
	if e := ev["event"].(map[string]any); e["type"] != "call.invited" || e["call_id"] != callID {
		t.Fatalf("bob got %v", ev)
	}

	tests := []struct {
		name     string
		frame    string
		wantID   string
		wantCode string // "" = ok
		check    func(t *testing.T, reply map[string]any)
	}{
		{name: "get_call", frame: `{"id":"g1","type":"get_call","data":{"call_id":"` + callID + `"}}`, wantID: "g1",
			check: func(t *testing.T, r map[string]any) {
				if callOf(t, r)["call_id"] != callID {
					t.Fatalf("call %v", r)
				}
			}},
		{name: "call service error passes through", frame: `{"id":"a1","type":"accept","data":{"call_id":"nope"}}`, wantID: "a1", wantCode: calls.CodeCallNotFound},
		{name: "invite refused by service", frame: `{"id":"i2","type":"invite","data":{"invitees":[],"media":"audio"}}`, wantID: "i2", wantCode: calls.CodeBadInvitees},
		{name: "not caller", frame: `{"id":"x0","type":"invite_more","data":{"call_id":"` + callID + `","invitees":["carol"]}}`, wantID: "x0", wantCode: calls.CodeNotGroupCall},
		{name: "not json", frame: `hello`, wantCode: CodeBadFrame},
		{name: "json array", frame: `[1,2]`, wantCode: CodeBadFrame},
		{name: "missing id", frame: `{"type":"accept","data":{"call_id":"c"}}`, wantCode: CodeBadFrame},
		{name: "id with spaces", frame: `{"id":"a b","type":"ping"}`, wantCode: CodeBadFrame},
		{name: "unknown field, id still echoed", frame: `{"id":"u1","type":"ping","bogus":true}`, wantID: "u1", wantCode: CodeBadFrame},
		{name: "trailing data", frame: `{"id":"t1","type":"ping"} {}`, wantID: "t1", wantCode: CodeBadFrame},
		{name: "unknown type", frame: `{"id":"u2","type":"dance"}`, wantID: "u2", wantCode: CodeUnknownType},
		{name: "missing type", frame: `{"id":"u3"}`, wantID: "u3", wantCode: CodeBadFrame},
		{name: "data missing", frame: `{"id":"d1","type":"accept"}`, wantID: "d1", wantCode: CodeBadData},
		{name: "data not an object", frame: `{"id":"d2","type":"accept","data":"c1"}`, wantID: "d2", wantCode: CodeBadData},
		{name: "data unknown field", frame: `{"id":"d3","type":"accept","data":{"call_id":"c","x":1}}`, wantID: "d3", wantCode: CodeBadData},
		{name: "reject bad reason", frame: `{"id":"d4","type":"reject","data":{"call_id":"c","reason":"meh"}}`, wantID: "d4", wantCode: CodeBadData},
		{name: "state bad", frame: `{"id":"d5","type":"state","data":{"state":"asleep"}}`, wantID: "d5", wantCode: CodeBadData},
		{name: "invite wrong type", frame: `{"id":"d6","type":"invite","data":{"invitees":"bob"}}`, wantID: "d6", wantCode: CodeBadData},
		{name: "ping with data", frame: `{"id":"d7","type":"ping","data":{"x":1}}`, wantID: "d7", wantCode: CodeBadData},
		{name: "ping", frame: `{"id":"p1","type":"ping"}`, wantID: "p1",
			check: func(t *testing.T, r map[string]any) {
				if r["result"].(map[string]any)["server_time"] == nil {
					t.Fatalf("ping result %v", r)
				}
			}},
		{name: "state background", frame: `{"id":"s1","type":"state","data":{"state":"background"}}`, wantID: "s1",
			check: func(t *testing.T, r map[string]any) {
				if d := e.hub.Devices(1, "alice"); len(d) != 1 || d[0].Foreground {
					t.Fatalf("hub state %+v", d)
				}
				if got := e.calls.States(); !slices.Contains(got, "alice/phone/background") {
					t.Fatalf("DeviceStateChanged: %v", got)
				}
			}},
		{name: "too large, id echoed", frame: `{"id":"big","type":"invite","data":{"data":"` + strings.Repeat("x", DefaultMaxFrame) + `"}}`, wantID: "big", wantCode: CodeFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeText(t, c, tt.frame)
			r := readUntil(t, c, FrameReply, "")
			if r["id"] != tt.wantID && (tt.wantID != "" || r["id"] != "") {
				t.Fatalf("reply id %v, want %q: %v", r["id"], tt.wantID, r)
			}
			if tt.wantCode == "" {
				if r["ok"] != true {
					t.Fatalf("reply %v, want ok", r)
				}
			} else if r["ok"] != false || errorCode(r) != tt.wantCode || r["error"].(map[string]any)["message"] == "" {
				t.Fatalf("reply %v, want error %s", r, tt.wantCode)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}

	t.Run("binary frame", func(t *testing.T) {
		if err := c.Write(ctxT(t), websocket.MessageBinary, []byte(`{"id":"b1","type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if r := readUntil(t, c, FrameReply, "b1"); errorCode(r) != CodeBadFrame {
			t.Fatalf("reply %v", r)
		}
	})
	t.Run("heartbeat ping gets a pong", func(t *testing.T) {
		writeText(t, c, `{"type":"ping"}`)
		if f := readUntil(t, c, FramePong, ""); f["server_time"] == nil {
			t.Fatalf("pong %v", f)
		}
	})
	t.Run("actor", func(t *testing.T) {
		// bob accepts: the actor carries his device and the request id.
		if r := request(t, bob, "bob-1", "accept", map[string]string{"call_id": callID}); r["ok"] != true {
			t.Fatalf("accept: %v", r)
		}
		actors := e.calls.Actors()
		last := actors[len(actors)-1]
		if last != (calls.Actor{SDKAppID: 1, UserID: "bob", DeviceID: "ipad", RequestID: "bob-1"}) {
			t.Fatalf("actor %+v", last)
		}
		if ev := nextEvent(t, c, calls.EventAccepted); ev["user"] != "bob" {
			t.Fatalf("alice got %v", ev)
		}
	})
	if got := gathered(t, reg, "ringd_gateway_connections", ""); got != 2 {
		t.Fatalf("connections gauge %v", got)
	}
	if got := gathered(t, reg, "ringd_gateway_frames_total", "invalid"); got < 5 {
		t.Fatalf("invalid frames %v", got)
	}
	if got := gathered(t, reg, "ringd_gateway_frames_total", "invite"); got != 3 { // r1, i2, d6
		t.Fatalf("invite frames %v", got)
	}
}

func TestFrameOverHardLimitCloses(t *testing.T) {
	e := newEnv(t, Config{MaxFrame: 1024})
	c, _ := e.connect(t, "1:alice", "phone")
	writeText(t, c, strings.Repeat("x", 5000))
	if code := readClose(t, c); code != websocket.StatusMessageTooBig {
		t.Fatalf("close code %d", code)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{RequestRate: 0.01, RequestBurst: 3, MaxBadFrames: 100})
	c, _ := e.connect(t, "1:alice", "phone")
	for i := range 5 {
		writeText(t, c, fmt.Sprintf(`{"id":"p%d","type":"ping"}`, i))
	}
	got := map[string]string{}
	for len(got) < 5 {
		r := readUntil(t, c, FrameReply, "")
		got[r["id"].(string)] = errorCode(r)
	}
	want := map[string]string{"p0": "", "p1": "", "p2": "", "p3": CodeRateLimited, "p4": CodeRateLimited}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replies %v, want %v", got, want)
	}
}

func TestBadFrameFloodCloses(t *testing.T) {
	e := newEnv(t, Config{MaxBadFrames: 3})
	c, _ := e.connect(t, "1:alice", "phone")
	for range 6 {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte("garbage")); err != nil {
			break
		}
	}
	replies := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
				t.Fatalf("close: %v", err)
			}
			break
		}
		if strings.Contains(string(b), CodeBadFrame) {
			replies++
		}
	}
	if replies != 4 {
		t.Fatalf("%d error replies before the close, want 4", replies)
	}
}

func TestHeartbeatTimeoutClosesSilentClient(t *testing.T) {
	e := newEnv(t, Config{HeartbeatTimeout: 300 * time.Millisecond})
	// A client that never reads never answers the server's pings.
	silent := e.dial(t, "1:alice", "silent")
	_ = silent
	// A client that reads answers pings by itself and stays.
	var pings atomic.Int32
	live, resp, err := websocket.Dial(ctxT(t), e.wsURL+"?device_id=live", &websocket.DialOptions{
		HTTPHeader:     http.Header{"Authorization": {"UserSig 1:bob"}},
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer live.CloseNow()
	readCtx, readDone := context.WithCancel(context.Background())
	go func() {
		defer readDone()
		for {
			if _, _, err := live.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	checkFor(t, 5*time.Second, func() error {
		if n := len(e.hub.Sessions(1, "alice")); n != 0 {
			return fmt.Errorf("the silent session is still there (%d)", n)
		}
		return nil
	})
	checkFor(t, 5*time.Second, func() error {
		if pings.Load() < 4 { // > HeartbeatTimeout has passed
			return fmt.Errorf("%d pings", pings.Load())
		}
		return nil
	})
	if readCtx.Err() != nil || len(e.hub.Sessions(1, "bob")) != 1 {
		t.Fatal("the client that answers pings was closed")
	}
}

func TestSingleLoginKicksOtherSessions(t *testing.T) {
	e := newEnv(t, Config{})
	old, _ := e.connect(t, "2:alice", "phone")
	sameDevice, _ := e.connect(t, "2:alice", "ipad") // kicks phone
	checkFor(t, 5*time.Second, func() error {
		if n := len(e.hub.Sessions(2, "alice")); n != 1 {
			return fmt.Errorf("%d sessions of the single-login user", n)
		}
		return nil
	})
	_, _ = e.connect(t, "2:alice", "ipad")            // kicks the older ipad session
	multi, _ := e.connect(t, "1:alice", "phone")      // another app, multi-login: untouched
	multi2, _ := e.connect(t, "1:alice", "phone-two") // multi: both stay
	for _, c := range []*websocket.Conn{old, sameDevice} {
		f := readUntil(t, c, FrameKicked, "")
		if f["reason"] != KickLoggedInElsewhere || f["device_id"] != "ipad" {
			t.Fatalf("kicked %v", f)
		}
		if code := readClose(t, c); code != websocket.StatusCode(CloseKicked) {
			t.Fatalf("close code %d", code)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if n := len(e.hub.Sessions(2, "alice")); n != 1 {
			return fmt.Errorf("%d sessions of the single-login user", n)
		}
		return nil
	})
	if got := e.calls.Unbound(); !slices.Equal(got, []string{"alice/phone"}) {
		t.Fatalf("unbound %v, want only the other device", got)
	}
	for _, c := range []*websocket.Conn{multi, multi2} {
		if r := request(t, c, "p", "ping", nil); r["ok"] != true {
			t.Fatalf("multi-login session: %v", r)
		}
	}
}

func TestLaggingSessionIsClosedToResync(t *testing.T) {
	e := newEnv(t, Config{})
	e.calls.SetSync(nil, func(app int64, user, _ string) {
		for i := range bus.SessionBuffer + 10 {
			b, _ := json.Marshal(calls.Event{Type: calls.EventState, CallID: "c", Seq: int64(i + 1)})
			e.hub.Publish(app, user, bus.Message{Kind: bus.KindEvent, Payload: b})
		}
	})
	c := e.dial(t, "1:alice", "phone")
	if code := readClose(t, c); code != websocket.StatusCode(CloseLagging) {
		t.Fatalf("close code %d", code)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, Config{})
	c, _ := e.connect(t, "1:alice", "phone")
	if r := request(t, c, "bye", "logout", nil); r["ok"] != true {
		t.Fatalf("logout %v", r)
	}
	if code := readClose(t, c); code != websocket.StatusCode(CloseLoggedOut) {
		t.Fatalf("close code %d", code)
	}
	if got := e.calls.Unbound(); !slices.Equal(got, []string{"alice/phone"}) {
		t.Fatalf("unbound %v", got)
	}
}

func TestRequestIDIsIdempotencyKeyAcrossConnections(t *testing.T) {
	e := newEnv(t, Config{})
	c, _ := e.connect(t, "1:alice", "phone")
	first := callOf(t, request(t, c, "same-id", "invite", map[string]any{"invitees": []string{"bob"}, "media": "audio"}))
	_ = c.Close(websocket.StatusNormalClosure, "")
	c2, _ := e.connect(t, "1:alice", "phone")
	again := callOf(t, request(t, c2, "same-id", "invite", map[string]any{"invitees": []string{"bob"}, "media": "audio"}))
	if first["call_id"] != again["call_id"] {
		t.Fatalf("a re-sent invite made a second call: %v vs %v", first["call_id"], again["call_id"])
	}
}

func TestDrainSpreadsReconnectHints(t *testing.T) {
	e := newEnv(t, Config{})
	var conns []*websocket.Conn
	for i := range 3 {
		c, _ := e.connect(t, "1:alice", fmt.Sprint("d", i))
		conns = append(conns, c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.gw.Drain(context.Background(), 200*time.Millisecond)
	}()
	var hints []float64
	for _, c := range conns {
		f := readUntil(t, c, FrameReconnect, "")
		hints = append(hints, f["after_ms"].(float64))
		if code := readClose(t, c); code != websocket.StatusServiceRestart {
			t.Fatalf("close code %d", code)
		}
	}
	slices.Sort(hints)
	if !slices.Equal(hints, []float64{0, 100, 200}) {
		t.Fatalf("after_ms hints %v, want spread over 200ms", hints)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return")
	}
	if n := e.gw.Connections(); n != 0 {
		t.Fatalf("%d connections after Drain", n)
	}
	// New connections are refused while draining.
	_, resp, err := websocket.Dial(ctxT(t), e.wsURL+"?device_id=x&usersig=1:alice", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("dial while draining: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"draining"`) {
		t.Fatalf("body %s", body)
	}
}

func TestDrainDeadlineClosesTheRest(t *testing.T) {
	e := newEnv(t, Config{})
	c, _ := e.connect(t, "1:alice", "phone")
	_, _ = e.connect(t, "1:alice", "ipad")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e.gw.Drain(ctx, time.Hour)
	if n := e.gw.Connections(); n != 0 {
		t.Fatalf("%d connections after Drain", n)
	}
	_ = readUntil(t, c, FrameReconnect, "")
}

// gathered reads a gauge, or a counter with the given type label, from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, typ string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == typ {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// settledGoroutines is the number of goroutines once it has not changed
// for 20 polls in a row: what the server started may still be winding
// down (a count taken then made the test see -1 goroutines).
func settledGoroutines(t *testing.T) int {
	t.Helper()
	last, same := runtime.NumGoroutine(), 0
	deadline := time.Now().Add(5 * time.Second)
	for same < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the goroutine count did not settle (last %d)", last)
		}
		time.Sleep(time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	return last
}

// An idle session keeps no goroutine on Linux, where the gateway's Waiter
// (one goroutine from the first session on) waits for every idle client,
// and one elsewhere, waiting for its client: the worker and the writer
// exit once their burst is written, and the heartbeat goroutine exits
// with the last session.
//
// Behind a listener that wraps its connections (as the server's per-IP
// limit does) the same holds: the Waiter reaches the socket through the
// wrapper's NetConn.
func TestIdleSessionKeepsNoGoroutine(t *testing.T) {
	for name, env := range map[string]func(testing.TB, Config) *testEnv{"plain": newEnv, "wrapped": newEnvWrapped} {
		t.Run(name, func(t *testing.T) { testIdleSessionGoroutines(t, env) })
	}
}

func testIdleSessionGoroutines(t *testing.T, newEnv func(testing.TB, Config) *testEnv) {
	perSession, waiter := 1, 0
	if runtime.GOOS == "linux" {
		perSession, waiter = 0, 1
	}
	const n = 5
	e := newEnv(t, Config{MaxConnsPerIP: -1, HeartbeatTimeout: 300 * time.Millisecond})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	base := settledGoroutines(t)
	goroutines := func(want int) func() error {
		return func() error {
			if got := runtime.NumGoroutine() - base; got != want {
				return fmt.Errorf("%d goroutines more than before, want %d", got, want)
			}
			return nil
		}
	}
	type client struct {
		c  net.Conn
		br *bufio.Reader
	}
	var cs []client
	for i := range n {
		c, br := rawSession(t, addr, fmt.Sprint(i), nil)
		cs = append(cs, client{c, br})
	}
	checkFor(t, 5*time.Second, goroutines(n*perSession+waiter+1)) // + the heartbeat
	for i, c := range cs {
		if _, err := c.c.Write(maskedText(fmt.Sprintf(`{"id":"r%d","type":"ping"}`, i))); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(calls.Event{Type: calls.EventState, CallID: "c", Seq: 1})
		e.hub.Publish(1, fmt.Sprintf("u%d", i), bus.Message{Kind: bus.KindEvent, Payload: b})
		for got := 0; got < 2; { // the reply and the event, in either order
			f := string(readRawFrame(t, c.br))
			if strings.Contains(f, `"type":"reply"`) || strings.Contains(f, `"type":"event"`) {
				got++
			}
		}
	}
	checkFor(t, 5*time.Second, goroutines(n*perSession+waiter+1))
	for _, c := range cs {
		_ = c.c.Close()
	}
	checkFor(t, 5*time.Second, goroutines(waiter))
}

// Frames a client sends right behind its upgrade request, before the 101
// came back, are read (they sit in the buffer the upgrade was read with).
func TestFramesRightAfterTheUpgrade(t *testing.T) {
	e := newEnv(t, Config{})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	early := append(maskedText(`{"id":"a","type":"ping"}`), maskedText(`{"id":"b","type":"ping"}`)...)
	c, br := rawSession(t, addr, "phone", early)
	defer c.Close()
	for _, id := range []string{"a", "b"} {
		var f map[string]any
		if err := json.Unmarshal(readRawFrame(t, br), &f); err != nil {
			t.Fatal(err)
		}
		if f["type"] != FrameReply || f["id"] != id || f["ok"] != true {
			t.Fatalf("got %v, want the reply to %s", f, id)
		}
	}
}

// An idle reader waits outside any read and reads bursts of frames,
// pausing after pings and pongs: whatever the client sends, in whatever
// pieces, is still read in order.
func TestControlFramesBetweenRequests(t *testing.T) {
	e := newEnv(t, Config{})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	c, br := rawSession(t, addr, "phone", nil)
	defer c.Close()
	ping := []byte{0x89, 0x82, 0, 0, 0, 0, 'h', 'i'}
	pong := []byte{0x8a, 0x80, 0, 0, 0, 0}
	req := func(id string) []byte { return maskedText(`{"id":"` + id + `","type":"ping"}`) }
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	tests := []struct {
		name   string
		writes [][]byte
		pongs  int // server pongs expected before the reply
	}{
		{"ping alone, then a request", [][]byte{ping, req("a")}, 1},
		{"unsolicited pong, then a request", [][]byte{pong, req("b")}, 0},
		{"pings and a request together", [][]byte{cat(ping, pong, ping, req("c"))}, 2},
		{"a pong and half a request", [][]byte{cat(pong, req("d")[:5]), req("d")[5:]}, 0},
		{"a request split in its header", [][]byte{req("e")[:1], req("e")[1:]}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.writes {
				if _, err := c.Write(w); err != nil { // each write usually arrives alone (TCP_NODELAY)
					t.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i <= tt.pongs; i++ {
				op, err := br.Peek(1)
				if err != nil {
					t.Fatal(err)
				}
				p := readRawFrame(t, br)
				if i < tt.pongs {
					if op[0] != 0x8a || string(p) != "hi" {
						t.Fatalf("frame %d: %x %q, want the pong", i, op[0], p)
					}
					continue
				}
				if !strings.Contains(string(p), `"type":"reply"`) {
					t.Fatalf("got %s, want the reply", p)
				}
			}
		})
	}
}
