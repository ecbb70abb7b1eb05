package wsconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// mustWaiter starts a Waiter for the test, or skips it where there is none.
func mustWaiter(t *testing.T) *Waiter {
	t.Helper()
	w, err := NewWaiter()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no Waiter on", runtime.GOOS)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// A pending wait is taken back once: by the event or by a close, never
// both.
func TestWaiterDisarmOnce(t *testing.T) {
	w := mustWaiter(t)
	c, _ := tcpPair(t, nil, Options{})
	c.readable = func() {}
	if !w.arm(c) {
		t.Fatal("arm failed")
	}
	if !w.disarm(c) {
		t.Fatal("the first disarm found no wait")
	}
	if w.disarm(c) {
		t.Fatal("the second disarm found the wait again")
	}
	_ = c.CloseNow()
	if w.arm(c) {
		t.Fatal("a closed connection was armed")
	}
}

// TryPing writes a ping at once or reports that it cannot: while another
// write holds the connection, once its socket's buffer is full, and after
// the close frame. Every ping it reported sent arrives whole.
func TestTryPing(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		if c.TryPing() {
			t.Fatal("TryPing wrote where it cannot write without waiting")
		}
		return
	}
	// An idle connection's last write deadline has long passed.
	_ = c.nc.SetWriteDeadline(time.Now().Add(-time.Second))
	if !c.TryPing() {
		t.Fatal("TryPing did not write to an idle connection")
	}
	if f := readServerFrame(t, client); f.op() != OpPing || len(f.payload) != 0 || f.b0&0x80 == 0 {
		t.Fatalf("got frame %#x %#x %q, want an empty final ping", f.b0, f.b1, f.payload)
	}

	c.wmu.Lock()
	if c.TryPing() {
		t.Fatal("TryPing wrote during another write")
	}
	c.wmu.Unlock()

	// Small buffers on both sides fill after a few thousand pings.
	_ = c.nc.(*net.TCPConn).SetWriteBuffer(4096)
	_ = client.(*net.TCPConn).SetReadBuffer(4096)
	sent := 0
	for sent < 10_000_000 && c.TryPing() {
		sent++
	}
	if sent == 10_000_000 {
		t.Fatal("the socket never filled")
	}
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(OpText, []byte("after")) }() // waits for the pings to drain
	for i := range sent {
		if f := readServerFrame(t, client); f.op() != OpPing || len(f.payload) != 0 {
			t.Fatalf("frame %d of %d: %#x %q, want a ping", i, sent, f.b0, f.payload)
		}
	}
	if f := readServerFrame(t, client); f.op() != OpText || string(f.payload) != "after" {
		t.Fatalf("got %#x %q after the pings, want the text", f.b0, f.payload)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if c.TryPing() {
		t.Fatal("TryPing wrote after the close frame")
	}
}

func TestOnlyPongs(t *testing.T) {
	pong := []byte{0x8a, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	empty := []byte{0x8a, 0x80, 1, 2, 3, 4}
	tests := []struct {
		name   string
		b      []byte
		want   bool
		frames int
	}{
		{"nothing", nil, false, 0},
		{"a pong", pong, true, 1},
		{"pongs", append(append(append([]byte{}, pong...), empty...), pong...), true, 3},
		{"half a pong", pong[:5], false, 0},
		{"a pong and half another", append(append([]byte{}, pong...), empty[:3]...), false, 0},
		{"a ping", []byte{0x89, 0x80, 1, 2, 3, 4}, false, 0},
		{"a pong and a text frame", append(append([]byte{}, empty...), 0x81, 0x80, 1, 2, 3, 4), false, 0},
		{"an unmasked pong", []byte{0x8a, 0x00}, false, 0},
		{"a pong with a reserved bit", []byte{0xca, 0x80, 1, 2, 3, 4}, false, 0},
		{"a fragmented pong", []byte{0x0a, 0x80, 1, 2, 3, 4}, false, 0},
		{"a pong over 125 bytes", append([]byte{0x8a, 0x80 | 126, 0, 200, 1, 2, 3, 4}, make([]byte, 200)...), false, 0},
	}
	for _, tt := range tests {
		got := onlyPongs(tt.b)
		if got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		if got && countFrames(tt.b) != tt.frames {
			t.Errorf("%s: %d frames, want %d", tt.name, countFrames(tt.b), tt.frames)
		}
	}
}

// The Waiter takes pongs off the socket itself and arms the connection
// again without calling back; anything else reaches the callback's read,
// in order, pongs included.
func TestWaiterTakesPongs(t *testing.T) {
	w := mustWaiter(t)
	var controls atomic.Int32
	c, client := tcpPair(t, nil, Options{OnControl: func() { controls.Add(1) }})
	fired := make(chan struct{}, 1)
	f := func() { fired <- struct{}{} }
	pong := []byte{0x8a, 0x80, 1, 2, 3, 4}

	c.AwaitFunc(w, f)
	if _, err := client.Write(append(append([]byte{}, pong...), pong...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for controls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pongs seen, want 2", controls.Load())
		}
		runtime.Gosched()
	}
	select {
	case <-fired:
		t.Fatal("the callback ran for pongs alone")
	default:
	}

	// Still armed: a pong and a message in one write go to the callback.
	msg := append(append([]byte{}, pong...), 0x81, 0x82, 0, 0, 0, 0, 'o', 'k')
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback did not run for a message")
	}
	m, err := c.ReadMessage(100)
	if err != nil || m.Op != OpText || string(m.Data) != "ok" {
		t.Fatalf("read %v %q, %v", m.Op, m.Data, err)
	}
	if n := controls.Load(); n != 3 {
		t.Fatalf("%d pongs seen, want 3", n)
	}
}

// A connection reached through a wrapper with a NetConn method (the
// server's per-IP counter) still has its socket waited on and pinged
// directly.
func TestWrappedConnReachesItsSocket(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	wrapped := newConn(struct {
		net.Conn
		netConner
	}{c.nc, netConner{c.nc}}, nil, Options{})
	if wrapped.rc == nil {
		t.Fatal("the wrapper hid the socket")
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		if !wrapped.TryPing() {
			t.Fatal("TryPing failed through the wrapper")
		}
		if f := readServerFrame(t, client); f.op() != OpPing {
			t.Fatalf("got %#x, want a ping", f.b0)
		}
	}
}

type netConner struct{ c net.Conn }

func (n netConner) NetConn() net.Conn { return n.c }

// Closing answers while a write to a client that stopped reading holds
// the connection: the session's end asks it from the heartbeat goroutine.
func TestClosingDoesNotWaitForAWrite(t *testing.T) {
	c, _ := tcpPair(t, nil, Options{})
	c.wmu.Lock()
	defer c.wmu.Unlock()
	done := make(chan bool, 1)
	go func() { done <- c.Closing() }()
	select {
	case closing := <-done:
		if closing {
			t.Fatal("Closing before any close frame")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Closing waited for the write lock")
	}
}

// A frame's payload is allocated as its bytes arrive: a client that
// announces 16 MiB and sends ten bytes costs the server little.
func TestPayloadGrowsAsItArrives(t *testing.T) {
	c, client := tcpPair(t, nil, Options{ReadLimit: 32 << 20})
	const claimed = 16 << 20
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(hdr[2:10], claimed)
	if _, err := client.Write(append(hdr, make([]byte, 10)...)); err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() {
		_, err := c.ReadMessage(claimed)
		done <- err
	}()
	// Wait until the reader has taken the ten bytes and waits for more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st runtime.MemStats
		runtime.ReadMemStats(&st)
		if grown := st.TotalAlloc - before.TotalAlloc; grown >= 16<<10 { // the first part of the payload, at least
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader did not start on the payload")
		}
		runtime.Gosched()
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
		t.Fatalf("%d bytes allocated for ten bytes of a frame that claims %d", grown, claimed)
	}
	_ = c.CloseNow()
	if err := <-done; err == nil {
		t.Fatal("the read of a cut frame succeeded")
	}
}

// AwaitFor waits a bounded time: false when nothing came, and the read
// deadline it used is gone afterwards; true when bytes wait. (Past its
// deadline it says false even then, which only sends the connection to
// the Waiter, level-triggered, which calls back at once.)
func TestAwaitFor(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	if !canAwait {
		if c.AwaitFor(time.Millisecond) {
			t.Fatal("AwaitFor waited where it cannot")
		}
		return
	}
	if c.AwaitFor(20 * time.Millisecond) {
		t.Fatal("AwaitFor reported data that was never sent")
	}
	if _, err := client.Write(mframe(0x81, "x")); err != nil {
		t.Fatal(err)
	}
	if !c.AwaitFor(10 * time.Second) {
		t.Fatal("AwaitFor missed the data")
	}
	if !c.AwaitFor(10 * time.Second) { // the same bytes, still unread
		t.Fatal("AwaitFor missed data waiting on the socket")
	}
	done := make(chan error, 1)
	go func() {
		// No deadline is left: this read waits for the late write.
		m, err := c.ReadMessage(10)
		if err == nil && string(m.Data) != "x" {
			err = fmt.Errorf("read %q", m.Data)
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// After the server refuses a message with a close frame, Shutdown lets
// the client finish writing it and read the close code: closing the
// socket with the rest unread would reset the connection under it.
func TestShutdownLetsTheClientReadTheClose(t *testing.T) {
	c, client := tcpPair(t, nil, Options{ReadLimit: 1024, CloseTimeout: 10 * time.Second})
	big := clientFrame(0x80|byte(OpBinary), true, make([]byte, 4<<20))
	wrote := writeAsync(client, big)
	_, err := c.ReadMessage(1024)
	if CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("ReadMessage: %v, want a 1009 close", err)
	}
	c.Shutdown()
	if err := <-wrote; err != nil {
		t.Fatalf("the client's write met %v", err)
	}
	if f := readServerFrame(t, client); f.closeCode() != StatusMessageTooBig {
		t.Fatalf("got frame %#x, want close 1009", f.b0)
	}
}
