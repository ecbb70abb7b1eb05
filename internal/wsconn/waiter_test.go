package wsconn

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

// A pending wait is taken back once: by the event or by a close, never
// both.
func TestWaiterDisarmOnce(t *testing.T) {
	w, err := NewWaiter()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no Waiter on", runtime.GOOS)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
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
