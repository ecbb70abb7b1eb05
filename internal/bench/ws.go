package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// wsConn is a minimal WebSocket client for idle connections: the
// handshake of docs/protocol.md §1, then one goroutine that reads frames
// and answers the server's pings with pongs (what any WebSocket library
// does, and what keeps an idle ringd.v1 connection alive, §6). It uses
// ~1 goroutine and a 512-byte read buffer, where the SDK's Conn carries
// several goroutines and channels: at 10^5 connections the bench must
// not be the thing measured.
type wsConn struct {
	nc    net.Conn
	br    *bufio.Reader
	alive atomic.Bool
	done  chan struct{}
}

var errHandshake = errors.New("websocket handshake refused")

// dialWS connects from local (a 127.0.0.x address, nil for any) to the
// ringd at base (http://host:port) as device of the UserSig's user.
func dialWS(ctx context.Context, local net.IP, base, sig, device string) (*wsConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
		// Pick the source port at connect, not at bind: bind to port 0
		// never takes a port in TIME_WAIT, and after a storm or a previous
		// run tens of thousands are, while connect may reuse them on
		// loopback (tcp_tw_reuse).
		d.Control = bindAddressNoPort
	}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET /v1/connect?device_id=" + url.QueryEscape(device) + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Protocol: ringd.v1\r\nAuthorization: UserSig " + sig + "\r\n\r\n"
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		nc.Close()
		return nil, fmt.Errorf("%w: %s %s", errHandshake, resp.Status, strings.TrimSpace(string(body)))
	}
	c := &wsConn{nc: nc, br: br, done: make(chan struct{})}
	// The first frame is hello.
	op, payload, err := c.readFrame()
	if err != nil || op != 1 || !strings.Contains(string(payload), `"hello"`) {
		nc.Close()
		return nil, fmt.Errorf("no hello: %v", err)
	}
	_ = nc.SetDeadline(time.Time{})
	c.alive.Store(true)
	go c.loop()
	return c, nil
}

func (c *wsConn) loop() {
	defer close(c.done)
	defer c.alive.Store(false)
	for {
		op, payload, err := c.readFrame()
		if err != nil {
			return
		}
		switch op {
		case 9: // ping → pong
			if c.writeFrame(10, payload) != nil {
				return
			}
		case 8: // close
			_ = c.writeFrame(8, nil)
			c.nc.Close()
			return
		}
	}
}

// readFrame reads one (unfragmented, unmasked) server frame. Payloads
// are small here (hello, pings); larger ones are read and dropped.
func (c *wsConn) readFrame() (op byte, payload []byte, err error) {
	var h [8]byte
	if _, err = io.ReadFull(c.br, h[:2]); err != nil {
		return 0, nil, err
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(c.br, h[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err = io.ReadFull(c.br, h[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large")
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return op, payload, err
}

// writeFrame writes one masked client frame.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	if len(payload) > 125 {
		return errors.New("control payload too large")
	}
	b := make([]byte, 0, 6+len(payload))
	b = append(b, 0x80|op, 0x80|byte(len(payload)))
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, p := range payload {
		b = append(b, p^mask[i%4])
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// drop closes the TCP connection without a close handshake (a network
// loss, as a reconnect storm after a load balancer restart).
func (c *wsConn) drop() {
	c.nc.Close()
	<-c.done
}

// bindAddressNoPort sets IP_BIND_ADDRESS_NO_PORT where the platform has it.
func bindAddressNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = setBindAddressNoPort(fd) }); err != nil {
		return err
	}
	return serr
}
