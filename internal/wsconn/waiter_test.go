package wsconn

import (
	"errors"
	"runtime"
	"testing"
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
