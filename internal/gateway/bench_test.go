package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
)

// idleConn is the client side of an idle session, opened by hand so that
// it costs the benchmark's process a socket and no goroutine: what the
// process holds per connection is then (almost) the server's.
func idleConn(tb testing.TB, addr, device string) net.Conn {
	tb.Helper()
	c, _ := rawSession(tb, addr, device, nil)
	return c
}

// rawSession upgrades by hand, sending early (client frames) in the same
// write as the request, and reads up to sync_done.
func rawSession(tb testing.TB, addr, device string, early []byte) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	req := fmt.Sprintf("GET /v1/connect?device_id=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: UserSig 1:u%s\r\n\r\n", device, addr, device)
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		tb.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReaderSize(c, 16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("upgrade: %s", resp.Status)
	}
	for !strings.Contains(string(readRawFrame(tb, br)), `"type":"sync_done"`) {
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, br
}

// readRawFrame reads one unfragmented server frame and returns its payload.
func readRawFrame(tb testing.TB, br *bufio.Reader) []byte {
	tb.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		tb.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			tb.Fatal(err)
		}
		n = int(ext[0])<<8 | int(ext[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// maskedText is a client text frame (masked, with the all-zero key that
// leaves the payload as is) of a payload under 126 bytes.
func maskedText(payload string) []byte {
	return append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
}

// inUse is the heap and stack memory in use after a full collection.
func inUse() (heap, stack float64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc), float64(ms.StackInuse)
}

// BenchmarkIdleSessionMemory reports what an idle session holds: heap and
// goroutine stacks per connection (including the few hundred bytes of the
// client's socket in the same process), and goroutines per connection.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const conns = 1000
	e := newEnv(b, Config{MaxConnsPerIP: -1})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	for b.Loop() {
		heap0, stack0 := inUse()
		g0 := runtime.NumGoroutine()
		list := make([]net.Conn, 0, conns)
		for i := range conns {
			list = append(list, idleConn(b, addr, fmt.Sprint(i)))
		}
		checkFor(b, 5*time.Second, func() error {
			if n := e.gw.Connections(); n != conns {
				return fmt.Errorf("%d sessions", n)
			}
			return nil
		})
		heap1, stack1 := inUse()
		g1 := runtime.NumGoroutine()
		b.ReportMetric((heap1-heap0+stack1-stack0)/conns, "bytes/conn")
		b.ReportMetric((heap1-heap0)/conns, "heap-bytes/conn")
		b.ReportMetric((stack1-stack0)/conns, "stack-bytes/conn")
		b.ReportMetric(float64(g1-g0)/conns, "goroutines/conn")
		for _, c := range list {
			_ = c.Close()
		}
		checkFor(b, 10*time.Second, func() error {
			if n := e.gw.Connections(); n != 0 {
				return fmt.Errorf("%d sessions left", n)
			}
			return nil
		})
	}
}

// BenchmarkConnect is the gateway's cost of one connection, from the
// upgrade request to the session idling, with the fake call service.
func BenchmarkConnect(b *testing.B) {
	e := newEnv(b, Config{MaxConnsPerIP: -1})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := idleConn(b, addr, fmt.Sprint(i))
		_ = c.Close()
		i++
	}
}

// BenchmarkDeliverEvent is one call event on its way from the bus to a
// connected device: the hub's publish, the session's writer and the
// frame on the socket, read back by hand. The event is what the calls
// service publishes for an invitation.
func BenchmarkDeliverEvent(b *testing.B) {
	e := newEnv(b, Config{MaxConnsPerIP: -1})
	addr := strings.TrimPrefix(strings.TrimSuffix(e.wsURL, "/v1/connect"), "ws://")
	c, br := rawSession(b, addr, "phone", nil)
	defer c.Close()
	now := time.Now().UTC()
	call := &calls.Call{CallID: "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", SDKAppID: 1, UUID: "0b7e3a52-64c1-4a57-9d2e-3c1f0e9b8a71",
		Timeout: 30, Caller: "alice", Media: "video", State: calls.StateRinging, Seq: 1, CreatedAt: now, PushIDs: []string{},
		Invitees: []calls.Invitee{{User: "uphone", InvitedAt: now, RingDeadline: now.Add(30 * time.Second)}}}
	payload, err := json.Marshal(calls.Event{Type: calls.EventInvited, CallID: call.CallID, Seq: 1, At: now, TimeLeftMS: 30000, Call: call})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		e.hub.Publish(1, "uphone", bus.Message{Kind: bus.KindEvent, Payload: payload})
		readRawFrame(b, br)
	}
}
