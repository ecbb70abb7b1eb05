package wsconn

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Opcode is a frame's kind (RFC 6455 section 5.2).
type Opcode byte

const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xa
)

func (op Opcode) control() bool { return op&0x8 != 0 }

// StatusCode is a close frame's code (RFC 6455 section 7.4).
type StatusCode int

const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	StatusNoStatusRcvd    StatusCode = 1005 // received without a code; never sent
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusInternalError   StatusCode = 1011
	StatusServiceRestart  StatusCode = 1012
)

// sendable reports whether code may appear in a close frame.
func (code StatusCode) sendable() bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CloseError ends a read: the client closed the connection (Local false),
// or broke the protocol and this side closed it with Code (Local true).
type CloseError struct {
	Code   StatusCode
	Reason string
	Local  bool
}

func (e *CloseError) Error() string {
	who := "client"
	if e.Local {
		who = "server"
	}
	return fmt.Sprintf("websocket closed by the %s: %d %s", who, e.Code, e.Reason)
}

// CloseStatus is the code of the *CloseError in err's chain, or -1.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ErrClosed is returned by writes after the close frame was sent.
var ErrClosed = errors.New("websocket: connection closing")

// Message is what ReadMessage read. Op 0 means it read only control
// frames and nothing more is buffered: the caller goes back to Await.
type Message struct {
	Op   Opcode
	Data []byte // at most the keep bytes asked for
	Size int64  // the whole message's size
}

// Conn is one server-side WebSocket connection. One goroutine at a time
// reads (Await, ReadMessage); any goroutine may write or close.
type Conn struct {
	nc           net.Conn
	rc           syscall.RawConn // nil: Await cannot wait outside a read
	readLimit    int64
	writeTimeout time.Duration
	closeTimeout time.Duration
	onControl    func()

	// The reader's own state.
	early []byte        // bytes that came with the handshake request
	br    *bufio.Reader // borrowed from readers while bytes are buffered
	src   connSource

	wmu       sync.Mutex
	closeSent bool        // under wmu
	closing   atomic.Bool // closeSent, for readers that must not wait for a write
	closed    atomic.Bool

	// AwaitFunc's state: the callback, and the Waiter's bookkeeping
	// (under its lock).
	readable func()
	waiter   atomic.Pointer[Waiter]
	waitID   uint64 // the pending wait's ID, or 0
	inEpoll  bool   // the socket is in the Waiter's set
}

func newConn(nc net.Conn, early []byte, opts Options) *Conn {
	c := &Conn{
		nc: nc, early: early,
		readLimit:    cmpOr(opts.ReadLimit, defaultReadLimit),
		writeTimeout: cmpOr(opts.WriteTimeout, defaultWriteTimeout),
		closeTimeout: cmpOr(opts.CloseTimeout, defaultCloseTimeout),
		onControl:    opts.OnControl,
	}
	c.src.c = c
	c.rc = rawConn(nc)
	return c
}

func cmpOr[T int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// rawConn is nc's socket for Await, or nil where the bytes on the socket
// are not the frames (TLS) or there is no socket to wait on.
// It looks through wrappers that pass bytes through unchanged and say so
// with a NetConn method (the server's per-IP connection counter is one).
func rawConn(nc net.Conn) syscall.RawConn {
	for {
		if _, isTLS := nc.(*tls.Conn); isTLS {
			return nil
		}
		if _, ok := nc.(syscall.Conn); ok {
			break
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = u.NetConn()
	}
	sc := nc.(syscall.Conn)
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Buffered reports whether bytes already read from the socket wait to be
// read as frames; ReadMessage must take them before Await.
func (c *Conn) Buffered() bool {
	return len(c.early) > 0 || (c.br != nil && c.br.Buffered() > 0)
}

// Await returns when the client has sent something, or the connection
// failed or was closed (the next ReadMessage tells which), holding no
// buffer while it waits. Where the socket cannot be waited on, it returns
// at once and ReadMessage waits instead.
func (c *Conn) Await() error {
	if c.Buffered() || c.rc == nil {
		return nil
	}
	return awaitReadable(c.rc)
}

// AwaitFor is Await bounded by d: false when the client sent nothing in
// that time (nor did the connection end). A connection that has just
// been busy waits here first, on the Go runtime's own poller: handing
// each message of a busy connection to the Waiter and back cost an epoll
// round and a thread switch per message (+17% CPU per call in the
// call-online bench).
// Where the socket cannot be waited on, it returns false at once.
func (c *Conn) AwaitFor(d time.Duration) bool {
	if c.Buffered() {
		return true
	}
	if c.rc == nil || !canAwait {
		return false
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return true // the read tells
	}
	err := awaitReadable(c.rc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.nc.SetReadDeadline(time.Time{}) != nil {
			return true
		}
		// Readable just as the deadline passed: the next wait ends at once.
		return false
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	return true
}

// AwaitFunc calls f once, on a goroutine of its own, when the client has
// sent something or the connection failed or was closed (f's read tells
// which). With a Waiter nothing waits on a goroutine meanwhile; without
// one (nil, or a socket it cannot take) a goroutine waits in Await. f
// usually reads, then calls AwaitFunc again.
func (c *Conn) AwaitFunc(w *Waiter, f func()) {
	c.readable = f
	if c.Buffered() {
		go f()
		return
	}
	if w != nil && c.rc != nil {
		c.waiter.Store(w)
		if w.arm(c) {
			return
		}
	}
	go func() {
		_ = c.Await()
		f()
	}()
}

// fire runs the callback of a wait that ended.
func (c *Conn) fire() { c.readable() }

// onlyPongs reports whether b is one or more whole client pong frames
// (final, masked, no reserved bits, at most 125 bytes of payload) and
// nothing else.
func onlyPongs(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		if len(b) < 2 || b[0] != 0x80|byte(OpPong) || b[1]&0x80 == 0 || b[1]&0x7f > 125 {
			return false
		}
		n := 2 + 4 + int(b[1]&0x7f)
		if len(b) < n {
			return false
		}
		b = b[n:]
	}
	return true
}

// countFrames counts the frames of b, which onlyPongs accepted.
func countFrames(b []byte) int {
	n := 0
	for len(b) > 0 {
		b = b[2+4+int(b[1]&0x7f):]
		n++
	}
	return n
}

// readers lend read buffers to connections while they read a burst.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// connSource is what a borrowed reader reads: the early bytes, then the
// socket.
type connSource struct{ c *Conn }

func (s connSource) Read(p []byte) (int, error) {
	if c := s.c; len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		if len(c.early) == 0 {
			c.early = nil
		}
		return n, nil
	}
	return s.c.nc.Read(p)
}

func (c *Conn) reader() *bufio.Reader {
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(c.src)
	}
	return c.br
}

// release gives the read buffer back once nothing is left in it.
func (c *Conn) release(force bool) {
	if c.br != nil && (force || c.br.Buffered() == 0) {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
}

// frameHeader is a client frame's header.
type frameHeader struct {
	fin    bool
	op     Opcode
	length int64
	mask   [4]byte
}

// errProtocol carries the close code for a client's protocol violation.
type errProtocol struct {
	code   StatusCode
	reason string
}

func (e *errProtocol) Error() string { return e.reason }

// take reads n bytes (at most br's size) and returns them in br's buffer,
// valid until br's next read: reading the small parts of a frame through
// io.ReadFull would move their arrays to the heap.
func take(br *bufio.Reader, n int) ([]byte, error) {
	p, err := br.Peek(n)
	if err != nil {
		if len(p) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	_, _ = br.Discard(n)
	return p, nil
}

func readHeader(br *bufio.Reader) (frameHeader, error) {
	var h frameHeader
	b, err := take(br, 2)
	if err != nil {
		return h, err
	}
	h.fin = b[0]&0x80 != 0
	h.op = Opcode(b[0] & 0x0f)
	switch {
	case b[0]&0x70 != 0:
		return h, &errProtocol{StatusProtocolError, "reserved bits set (no extension was agreed)"}
	case h.op > OpBinary && h.op < OpClose, h.op > OpPong:
		return h, &errProtocol{StatusProtocolError, fmt.Sprintf("unknown opcode %d", h.op)}
	case b[1]&0x80 == 0:
		return h, &errProtocol{StatusProtocolError, "client frames must be masked"}
	}
	switch n := b[1] & 0x7f; n {
	case 126:
		if b, err = take(br, 2); err != nil {
			return h, err
		}
		h.length = int64(binary.BigEndian.Uint16(b))
	case 127:
		if b, err = take(br, 8); err != nil {
			return h, err
		}
		u := binary.BigEndian.Uint64(b)
		if u>>63 != 0 {
			return h, &errProtocol{StatusProtocolError, "frame length over 2^63"}
		}
		h.length = int64(u)
	default:
		h.length = int64(n)
	}
	if h.op.control() && (!h.fin || h.length > 125) {
		return h, &errProtocol{StatusProtocolError, "control frames must be whole and at most 125 bytes"}
	}
	if b, err = take(br, 4); err != nil {
		return h, err
	}
	copy(h.mask[:], b)
	return h, nil
}

// unmask XORs p with the key, starting at offset pos of the payload.
func unmask(p []byte, key [4]byte, pos int64) {
	k := [4]byte{key[pos&3], key[(pos+1)&3], key[(pos+2)&3], key[(pos+3)&3]}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= k[i&3]
	}
}

// ReadMessage reads the next data message, keeping its first keep bytes
// (the rest is read and dropped; Size is the whole). On the way it answers
// pings, passes pings and pongs to OnControl, and answers a close frame,
// returning it as a *CloseError. A client breaking the protocol gets a
// close frame with the reason, returned as a *CloseError with Local set.
// Having read only control frames, with nothing more buffered, it returns
// a Message with Op 0. Text messages are not checked for UTF-8 here: the
// application refuses them in its own terms (the gateway answers such a
// request with an error and keeps the connection).
func (c *Conn) ReadMessage(keep int) (Message, error) {
	m, err := c.readMessage(keep)
	if err != nil {
		var pe *errProtocol
		if errors.As(err, &pe) {
			_ = c.Close(pe.code, pe.reason)
			err = &CloseError{Code: pe.code, Reason: pe.reason, Local: true}
		}
		c.release(true)
		return Message{}, err
	}
	c.release(false)
	return m, nil
}

func (c *Conn) readMessage(keep int) (Message, error) {
	br := c.reader()
	var m Message
	for {
		h, err := readHeader(br)
		if err != nil {
			return Message{}, err
		}
		if h.op.control() {
			if err := c.control(br, h); err != nil {
				return Message{}, err
			}
			if m.Op == 0 && br.Buffered() == 0 && len(c.early) == 0 {
				return m, nil
			}
			continue
		}
		switch {
		case h.op == OpContinuation && m.Op == 0:
			return Message{}, &errProtocol{StatusProtocolError, "continuation frame with no message to continue"}
		case h.op != OpContinuation && m.Op != 0:
			return Message{}, &errProtocol{StatusProtocolError, "new message inside a fragmented one"}
		case h.op != OpContinuation:
			m.Op = h.op
		}
		if h.length > c.readLimit-m.Size {
			return Message{}, &errProtocol{StatusMessageTooBig, fmt.Sprintf("messages are limited to %d bytes", c.readLimit)}
		}
		if err := c.payload(br, h, &m, keep); err != nil {
			return Message{}, err
		}
		if h.fin {
			return m, nil
		}
	}
}

// payloadChunk is how much of a payload is allocated ahead of its bytes.
const payloadChunk = 32 << 10

// payload reads a data frame's payload into m, keeping up to keep bytes.
func (c *Conn) payload(br *bufio.Reader, h frameHeader, m *Message, keep int) error {
	take := min(h.length, max(int64(keep)-int64(len(m.Data)), 0))
	// Grown as bytes arrive, not as the header claims: a client that
	// announces a large frame and stalls holds only what it sent.
	start := len(m.Data)
	for got := int64(0); got < take; {
		n := int(min(take-got, payloadChunk))
		m.Data = append(m.Data, make([]byte, n)...)
		if _, err := io.ReadFull(br, m.Data[len(m.Data)-n:]); err != nil {
			return err
		}
		got += int64(n)
	}
	unmask(m.Data[start:], h.mask, 0)
	for rest := h.length - take; rest > 0; {
		n := min(rest, 1<<30)
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		rest -= n
	}
	m.Size += h.length
	return nil
}

// control handles a ping, pong or close frame.
func (c *Conn) control(br *bufio.Reader, h frameHeader) error {
	var buf [125]byte
	b, err := take(br, int(h.length))
	if err != nil {
		return err
	}
	p := buf[:copy(buf[:], b)]
	unmask(p, h.mask, 0)
	switch h.op {
	case OpPing:
		if c.onControl != nil {
			c.onControl()
		}
		if err := c.writeFrame(OpPong, p); err != nil && !errors.Is(err, ErrClosed) {
			return err
		}
		return nil
	case OpPong:
		if c.onControl != nil {
			c.onControl()
		}
		return nil
	}
	ce := &CloseError{Code: StatusNoStatusRcvd}
	switch {
	case len(p) == 1:
		return &errProtocol{StatusProtocolError, "a close frame's payload is a code and a reason"}
	case len(p) >= 2:
		ce.Code = StatusCode(binary.BigEndian.Uint16(p))
		ce.Reason = string(p[2:])
		if !ce.Code.sendable() || ce.Code == StatusNoStatusRcvd {
			return &errProtocol{StatusProtocolError, fmt.Sprintf("close code %d is not allowed", ce.Code)}
		}
		if !utf8.ValidString(ce.Reason) {
			return &errProtocol{StatusInvalidPayload, "a close reason must be UTF-8"}
		}
	}
	echo := ce.Code
	if echo == StatusNoStatusRcvd {
		echo = StatusNormalClosure
	}
	_ = c.writeClose(echo, "")
	return ce
}

// WriteMessage writes p as one unfragmented message of kind op, in one
// write to the socket. A write that fails or times out closes the
// connection: part of a frame may have been written.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	if op != OpText && op != OpBinary {
		return fmt.Errorf("websocket write: opcode %d is not a message (Ping and Close send control frames)", op)
	}
	return c.writeFrame(op, p)
}

// Ping sends a ping without waiting for the pong, which arrives through
// the reader (OnControl).
func (c *Conn) Ping() error { return c.writeFrame(OpPing, nil) }

// pingFrame is a server ping with no payload.
var pingFrame = [2]byte{0x80 | byte(OpPing), 0}

// TryPing sends a ping if it can at once, from the caller's goroutine:
// false when another write is in progress, the socket's buffer is full or
// the socket cannot be written to directly (TLS); the caller then pings on
// a goroutine that may wait (Ping), or later.
func (c *Conn) TryPing() bool {
	if c.rc == nil || !c.wmu.TryLock() {
		return false
	}
	if c.closeSent {
		c.wmu.Unlock()
		return false
	}
	// The last write's deadline has passed by the time an idle
	// connection is pinged, and the socket refuses writes past it.
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		c.wmu.Unlock()
		return false
	}
	n, err := writeNow(c.rc, pingFrame[:])
	switch {
	case err == nil && n == len(pingFrame):
		c.wmu.Unlock()
		return true
	case err == nil && n > 0:
		// Half a frame is out: the rest goes before any other write,
		// on a goroutine that may wait for room, still holding wmu.
		go func() {
			defer c.wmu.Unlock()
			if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
				_ = c.CloseNow()
				return
			}
			if _, err := c.nc.Write(pingFrame[n:]); err != nil {
				_ = c.CloseNow()
			}
		}()
		return true
	}
	c.wmu.Unlock()
	return false
}

// writers lend frame buffers to writes.
var writers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledWrite bounds the buffers kept for reuse.
const maxPooledWrite = 64 << 10

func (c *Conn) writeFrame(op Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	return c.writeLocked(op, p)
}

func (c *Conn) writeLocked(op Opcode, p []byte) error {
	bp := writers.Get().(*[]byte)
	b := appendHeader((*bp)[:0], op, len(p))
	b = append(b, p...)
	err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err == nil {
		_, err = c.nc.Write(b)
	}
	if cap(b) <= maxPooledWrite {
		*bp = b[:0]
		writers.Put(bp)
	}
	if err != nil {
		_ = c.CloseNow()
		return fmt.Errorf("websocket write: %w", err)
	}
	return nil
}

// appendHeader appends an unmasked final frame's header.
func appendHeader(b []byte, op Opcode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// Close starts the close handshake: it sends a close frame with code and
// reason (cut to fit a control frame) and returns. The reader sees the
// client's answer as a *CloseError, and the owner then calls CloseNow;
// a client that does not answer within CloseTimeout has its socket closed.
// Writes after Close fail with ErrClosed.
func (c *Conn) Close(code StatusCode, reason string) error {
	err := c.writeClose(code, reason)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	if err == nil {
		time.AfterFunc(c.closeTimeout, func() { _ = c.CloseNow() })
	}
	return err
}

func (c *Conn) writeClose(code StatusCode, reason string) error {
	if !code.sendable() {
		code = StatusInternalError
	}
	reason = strings.ToValidUTF8(reason, "")
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	var buf [125]byte
	p := binary.BigEndian.AppendUint16(buf[:0], uint16(code))
	p = append(p, reason...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	c.closeSent = true
	c.closing.Store(true)
	return c.writeLocked(OpClose, p)
}

// Closing reports whether the close frame was sent: the connection waits
// for the client's answer and carries no more messages.
func (c *Conn) Closing() bool { return c.closing.Load() }

// Shutdown ends a connection whose reading is over. After a close frame
// the socket stays open a while: what the client still sends (the rest
// of a refused message, its own close frame) is read and dropped, on a
// goroutine of its own, until the client closes its side or CloseTimeout
// passes. Closing a socket with unread bytes in it resets the
// connection, and a client meeting the reset may never read the close
// frame and its code. Without a close frame, Shutdown is CloseNow.
func (c *Conn) Shutdown() {
	if !c.Closing() || c.closed.Load() {
		_ = c.CloseNow()
		return
	}
	go func() {
		defer func() { _ = c.CloseNow() }()
		if c.nc.SetReadDeadline(time.Now().Add(c.closeTimeout)) != nil {
			return
		}
		c.release(true)
		c.early = nil
		var buf [512]byte
		for {
			if _, err := c.nc.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

// CloseNow closes the socket without a handshake; reads and writes in
// progress fail.
func (c *Conn) CloseNow() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.nc.Close()
	// A closed socket leaves the epoll set without an event: the wait
	// pending there ends here.
	if w := c.waiter.Load(); w != nil && w.disarm(c) {
		go c.fire()
	}
	return err
}
