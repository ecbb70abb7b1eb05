//go:build !(linux || darwin)

package gateway

import (
	"errors"
	"net"
	"sync/atomic"
)

var errWouldBlock = errors.New("gateway: nothing to read yet")

// pollConn is only implemented where the socket can be peeked at; here
// newPollConn returns nil and readers wait inside websocket.Conn.Reader.
type pollConn struct {
	net.Conn
	bounce atomic.Bool
}

func newPollConn(net.Conn) *pollConn { return nil }

func (c *pollConn) await() error { return nil }
