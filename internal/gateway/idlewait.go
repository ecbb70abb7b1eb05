//go:build linux || darwin

package gateway

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// errWouldBlock is what a pollConn's armed Read returns when the socket
// has nothing to read: websocket.Conn.Reader then returns, at a frame
// boundary, instead of parking.
var errWouldBlock = errors.New("gateway: nothing to read yet")

// pollConn lets an idle session's reader wait for the client on a shallow
// stack. Parked inside websocket.Conn.Reader, a goroutine needs 4 KiB of
// stack, 8 KiB once it has answered a client's ping; parked in await it
// needs well under 1 KiB, and the runtime shrinks its stack to that at the
// next collections. websocket.Conn handles ping and pong frames inside
// Reader and then waits there for the next frame, so the reader arms
// bounce when all the client sent is such frames: Reader reads them, then
// finds nothing (errWouldBlock) and returns.
type pollConn struct {
	net.Conn
	rc     syscall.RawConn
	bounce atomic.Bool // the next Read does not wait
}

// newPollConn wraps c, or returns nil when c does not expose its socket
// (looking through wrappers that have a NetConn method and pass bytes
// through unchanged). A TLS layer returns nil: a bounced Read takes bytes
// from the socket itself, which under TLS are records, not frames.
func newPollConn(c net.Conn) *pollConn {
	inner := c
	for {
		if _, isTLS := inner.(*tls.Conn); isTLS {
			return nil
		}
		u, ok := inner.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		inner = u.NetConn()
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &pollConn{Conn: c, rc: rc}
}

func (c *pollConn) Read(p []byte) (int, error) {
	if !c.bounce.CompareAndSwap(true, false) {
		return c.Conn.Read(p)
	}
	var (
		n   int
		err error
	)
	rerr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				return true // never wait
			}
		}
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// await returns when the socket has something to read (or is closed, or
// failed: the next read tells), without reading it. The socket is peeked
// at once, since readiness signalled before the call is forgotten; after
// the wait, the wake-up itself says it is readable.
func (c *pollConn) await() error {
	var b [1]byte
	woken := false
	return c.rc.Read(func(fd uintptr) bool {
		if woken {
			return true
		}
		woken = true
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err != syscall.EINTR {
				return err != syscall.EAGAIN // false: wait until readable
			}
		}
	})
}
