//go:build linux || darwin

package gateway

import (
	"crypto/tls"
	"net"
	"testing"
)

func TestPollConnOnlyOnPlainSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if newPollConn(c) == nil {
		t.Error("no pollConn on a plain TCP connection")
	}
	if newPollConn(tls.Client(c, &tls.Config{InsecureSkipVerify: true})) != nil {
		t.Error("a pollConn under TLS: a bounced Read would take records, not frames")
	}
}
