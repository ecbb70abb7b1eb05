package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fin is the FIN bit of a frame's first byte.
const fin = 0x80

// testMask is not all zeros so that a frame read without unmasking shows.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame encodes a frame as a client sends it; b0 holds FIN, RSV and
// the opcode. Unmasked frames exist only to check that they are refused.
func clientFrame(b0 byte, masked bool, payload []byte) []byte {
	b := []byte{b0}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, mbit|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, mbit|127), uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b = append(b, testMask[:]...)
	for i, x := range payload {
		b = append(b, x^testMask[i&3])
	}
	return b
}

func mframe(b0 byte, payload string) []byte { return clientFrame(b0, true, []byte(payload)) }

func closePayload(code StatusCode, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

// pattern is valid UTF-8 whose bytes depend on their offset, so that a
// payload unmasked or reassembled at the wrong place does not compare equal.
func pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// tcpPair returns a Conn on the server end of a loopback TCP connection,
// and the client end. The deadlines only keep a broken test from hanging.
func tcpPair(tb testing.TB, early []byte, opts Options) (*Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	_ = client.SetDeadline(deadline)
	_ = server.SetReadDeadline(deadline)
	c := newConn(server, early, opts)
	tb.Cleanup(func() {
		client.Close()
		c.CloseNow()
	})
	return c, client
}

// writeAsync writes b from its own goroutine: a write larger than the
// socket buffers only completes while the server reads.
func writeAsync(w io.Writer, b []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(b)
		done <- err
	}()
	return done
}

// wait receives from ch; the bound only turns a hang into a failure.
func wait[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s never happened", what)
		panic("unreachable")
	}
}

type serverFrame struct {
	b0, b1  byte // the first two header bytes
	payload []byte
}

func (f serverFrame) op() Opcode { return Opcode(f.b0 & 0x0f) }

func (f serverFrame) closeCode() StatusCode {
	if f.op() != OpClose || len(f.payload) < 2 {
		return -1
	}
	return StatusCode(binary.BigEndian.Uint16(f.payload))
}

// readServerFrame reads one frame on the client side and fails on a
// masked one, which a server must never send.
func readServerFrame(tb testing.TB, r io.Reader) serverFrame {
	tb.Helper()
	var f serverFrame
	var h [8]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		tb.Fatalf("reading a frame header: %v", err)
	}
	f.b0, f.b1 = h[0], h[1]
	if f.b1&0x80 != 0 {
		tb.Fatalf("server frame %#x %#x is masked", f.b0, f.b1)
	}
	n := uint64(f.b1 & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			tb.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			tb.Fatal(err)
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		tb.Fatalf("reading a %d-byte payload: %v", n, err)
	}
	return f
}

func checkMessage(t *testing.T, got, want Message) {
	t.Helper()
	if got.Op != want.Op || got.Size != want.Size || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("got message {Op:%d Size:%d Data:%.40q}, want {Op:%d Size:%d Data:%.40q}",
			got.Op, got.Size, got.Data, want.Op, want.Size, want.Data)
	}
}

func text(s string) Message   { return Message{Op: OpText, Data: []byte(s), Size: int64(len(s))} }
func binMsg(s string) Message { return Message{Op: OpBinary, Data: []byte(s), Size: int64(len(s))} }

// wantFrame is a frame the client must receive: a close frame is checked
// by its code alone, since a protocol error's reason is free text.
type wantFrame struct {
	op      Opcode
	code    StatusCode
	payload string
}

func pong(p string) wantFrame              { return wantFrame{op: OpPong, payload: p} }
func closeFrame(code StatusCode) wantFrame { return wantFrame{op: OpClose, code: code} }

func TestReadMessage(t *testing.T) {
	const textFin, binFin = fin | byte(OpText), fin | byte(OpBinary)
	bin70k := make([]byte, 70000)
	for i := range bin70k {
		bin70k[i] = byte(i % 251)
	}
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

	tests := []struct {
		name    string
		limit   int64
		keep    int // 0: 1 MiB
		in      []byte
		want    []Message
		err     *CloseError // what the read after want returns; nil: no read
		replies []wantFrame
	}{
		{name: "short text", in: mframe(textFin, "hello"), want: []Message{text("hello")}},
		{name: "empty text", in: mframe(textFin, ""), want: []Message{text("")}},
		{name: "16-bit length", in: mframe(textFin, pattern(200)), want: []Message{text(pattern(200))}},
		{name: "64-bit length", in: clientFrame(binFin, true, bin70k), want: []Message{binMsg(string(bin70k))}},
		{
			name: "fragmented with a ping and a pong between fragments",
			in: join(
				mframe(byte(OpText), "frag"),
				mframe(fin|byte(OpPing), "are you there"),
				mframe(byte(OpContinuation), "men"),
				mframe(fin|byte(OpPong), "unsolicited"),
				mframe(fin|byte(OpContinuation), "ted"),
			),
			want:    []Message{text("fragmented")},
			replies: []wantFrame{pong("are you there")},
		},
		{
			name: "rune split across fragments",
			in:   join(mframe(byte(OpText), "h\xc3"), mframe(fin|byte(OpContinuation), "\xa9")),
			want: []Message{text("hé")},
		},
		{
			name:    "unmasked",
			in:      clientFrame(textFin, false, []byte("hi")),
			err:     &CloseError{Code: StatusProtocolError, Local: true},
			replies: []wantFrame{closeFrame(StatusProtocolError)},
		},
		{name: "RSV1", in: mframe(0x40|textFin, "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "RSV2", in: mframe(0x20|textFin, "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "RSV3", in: mframe(0x10|textFin, "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "opcode 3", in: mframe(fin|3, "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "opcode 11", in: mframe(fin|11, "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "ping of 126 bytes", in: mframe(fin|byte(OpPing), pattern(126)), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "ping of 125 bytes", in: mframe(fin|byte(OpPing), pattern(125)), want: []Message{{}}, replies: []wantFrame{pong(pattern(125))}},
		{name: "ping not final", in: mframe(byte(OpPing), "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close not final", in: mframe(byte(OpClose), closePayload(1000, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "continuation first", in: mframe(fin|byte(OpContinuation), "x"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{
			name:    "new text inside a fragmented message",
			in:      join(mframe(byte(OpText), "a"), mframe(textFin, "b")),
			err:     &CloseError{Code: StatusProtocolError, Local: true},
			replies: []wantFrame{closeFrame(StatusProtocolError)},
		},
		// ReadMessage leaves UTF-8 to the application, which refuses such
		// a message in its own terms and keeps the connection.
		{name: "invalid UTF-8 text", in: mframe(textFin, "ok\xff\xfe"), want: []Message{text("ok\xff\xfe")}},
		{
			name: "invalid UTF-8 over fragments",
			in:   join(mframe(byte(OpText), "ok\xc3"), mframe(fin|byte(OpContinuation), "x")),
			want: []Message{text("ok\xc3x")},
		},
		{
			// The pong is written on the way; the call goes on to the text.
			name:    "ping then text",
			in:      join(mframe(fin|byte(OpPing), "p"), mframe(textFin, "after the ping")),
			want:    []Message{text("after the ping")},
			replies: []wantFrame{pong("p")},
		},
		{name: "invalid UTF-8 binary", in: mframe(binFin, "ok\xff\xfe"), want: []Message{binMsg("ok\xff\xfe")}},
		{name: "at the read limit", limit: 100, in: mframe(textFin, pattern(100)), want: []Message{text(pattern(100))}},
		{name: "over the read limit", limit: 100, in: mframe(textFin, pattern(101)), err: &CloseError{Code: StatusMessageTooBig, Local: true}, replies: []wantFrame{closeFrame(StatusMessageTooBig)}},
		{
			name:    "fragments over the read limit",
			limit:   100,
			in:      join(mframe(byte(OpText), pattern(60)), mframe(fin|byte(OpContinuation), pattern(60))),
			err:     &CloseError{Code: StatusMessageTooBig, Local: true},
			replies: []wantFrame{closeFrame(StatusMessageTooBig)},
		},
		{
			// A wrong skip would start the next header inside the payload.
			name: "keep less than the message",
			keep: 4,
			in:   join(mframe(textFin, "hello world"), mframe(textFin, "next")),
			want: []Message{{Op: OpText, Data: []byte("hell"), Size: 11}, text("next")},
		},
		{
			name: "keep ending inside the second fragment",
			keep: 4,
			in: join(
				mframe(byte(OpBinary), "he"), mframe(byte(OpContinuation), "llo"),
				mframe(fin|byte(OpContinuation), "!!"), mframe(binFin, "next")),
			want: []Message{{Op: OpBinary, Data: []byte("hell"), Size: 7}, binMsg("next")},
		},
		{
			name: "keep less than a 64-bit length message",
			keep: 3,
			in:   join(clientFrame(binFin, true, bin70k), mframe(textFin, "after")),
			want: []Message{{Op: OpBinary, Data: bin70k[:3], Size: 70000}, {Op: OpText, Data: []byte("aft"), Size: 5}},
		},
		{
			name:    "close with a code and a reason",
			in:      mframe(fin|byte(OpClose), closePayload(4001, "bye now")),
			err:     &CloseError{Code: 4001, Reason: "bye now"},
			replies: []wantFrame{closeFrame(4001)},
		},
		{
			name:    "message then close",
			in:      join(mframe(textFin, "last"), mframe(fin|byte(OpClose), closePayload(1000, ""))),
			want:    []Message{text("last")},
			err:     &CloseError{Code: 1000},
			replies: []wantFrame{closeFrame(1000)},
		},
		{name: "empty close", in: mframe(fin|byte(OpClose), ""), err: &CloseError{Code: StatusNoStatusRcvd}, replies: []wantFrame{closeFrame(StatusNormalClosure)}},
		{name: "close of one byte", in: mframe(fin|byte(OpClose), "\x03"), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 1005", in: mframe(fin|byte(OpClose), closePayload(1005, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 1006", in: mframe(fin|byte(OpClose), closePayload(1006, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 999", in: mframe(fin|byte(OpClose), closePayload(999, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 2000", in: mframe(fin|byte(OpClose), closePayload(2000, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 5000", in: mframe(fin|byte(OpClose), closePayload(5000, "")), err: &CloseError{Code: StatusProtocolError, Local: true}, replies: []wantFrame{closeFrame(StatusProtocolError)}},
		{name: "close 3000", in: mframe(fin|byte(OpClose), closePayload(3000, "")), err: &CloseError{Code: 3000}, replies: []wantFrame{closeFrame(3000)}},
		{name: "close reason not UTF-8", in: mframe(fin|byte(OpClose), closePayload(1000, "\xff")), err: &CloseError{Code: StatusInvalidPayload, Local: true}, replies: []wantFrame{closeFrame(StatusInvalidPayload)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := tcpPair(t, nil, Options{ReadLimit: tt.limit})
			wrote := writeAsync(client, tt.in)
			keep := tt.keep
			if keep == 0 {
				keep = 1 << 20
			}
			for _, want := range tt.want {
				m, err := c.ReadMessage(keep)
				if err != nil {
					t.Fatalf("ReadMessage: %v", err)
				}
				checkMessage(t, m, want)
			}
			if tt.err != nil {
				_, err := c.ReadMessage(keep)
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("ReadMessage returned %v, want a *CloseError", err)
				}
				if ce.Code != tt.err.Code || ce.Local != tt.err.Local || (!ce.Local && ce.Reason != tt.err.Reason) {
					t.Errorf("got %+v, want %+v", *ce, *tt.err)
				}
			}
			if err := wait(t, wrote, "the client write"); err != nil {
				t.Fatalf("client write: %v", err)
			}
			for _, want := range tt.replies {
				f := readServerFrame(t, client)
				if f.b0&0xf0 != fin || f.op() != want.op {
					t.Fatalf("client got frame %#x, want FIN and opcode %d", f.b0, want.op)
				}
				if want.op == OpClose {
					if f.closeCode() != want.code {
						t.Errorf("client got close code %d (payload %q), want %d", f.closeCode(), f.payload, want.code)
					}
				} else if string(f.payload) != want.payload {
					t.Errorf("client got payload %q, want %q", f.payload, want.payload)
				}
			}
		})
	}
}

func TestReadOnlyControlFrames(t *testing.T) {
	calls := 0 // OnControl runs in the reading goroutine, this one
	c, client := tcpPair(t, nil, Options{OnControl: func() { calls++ }})
	in := bytes.Join([][]byte{
		mframe(fin|byte(OpPing), "one"),
		mframe(fin|byte(OpPong), "two"),
		mframe(fin|byte(OpPing), "three"),
	}, nil)
	if _, err := client.Write(in); err != nil {
		t.Fatal(err)
	}
	// The three frames normally come in one read, but TCP may split them:
	// then each part ends in a Message with Op 0 of its own.
	for reads := 1; calls < 3; reads++ {
		before := calls
		m, err := c.ReadMessage(1024)
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		checkMessage(t, m, Message{})
		if calls == before {
			t.Fatalf("read %d returned with no control frame read", reads)
		}
	}
	if calls != 3 {
		t.Errorf("OnControl called %d times, want 3", calls)
	}
	if c.Buffered() {
		t.Error("Buffered after every frame was read")
	}
	if c.br != nil {
		t.Error("an idle Conn keeps its read buffer")
	}
	for _, want := range []string{"one", "three"} {
		if f := readServerFrame(t, client); f.op() != OpPong || string(f.payload) != want {
			t.Errorf("client got opcode %d payload %q, want a pong %q", f.op(), f.payload, want)
		}
	}
}

func TestReadTwoMessagesInOneWrite(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	in := append(mframe(fin|byte(OpText), "first"), mframe(fin|byte(OpBinary), "second")...)
	if _, err := client.Write(in); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage(1024)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, m, text("first"))
	if !c.Buffered() {
		t.Fatal("the second message is not reported buffered")
	}
	// Await must not wait for the socket while a message is buffered.
	if err := c.Await(); err != nil {
		t.Fatal(err)
	}
	m, err = c.ReadMessage(1024)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, m, binMsg("second"))
	if c.Buffered() || c.br != nil {
		t.Errorf("after the last message: Buffered %v, holds its buffer %v", c.Buffered(), c.br != nil)
	}
}

func TestReadEarlyBytes(t *testing.T) {
	msg := mframe(fin|byte(OpText), "split between early and socket")
	big := clientFrame(fin|byte(OpBinary), true, bytes.Repeat([]byte{7}, 10000))
	tests := []struct {
		name          string
		early, socket []byte
		want          []Message
	}{
		{
			name:   "whole frames early",
			early:  append(mframe(fin|byte(OpText), "one"), mframe(fin|byte(OpText), "two")...),
			socket: mframe(fin|byte(OpText), "three"),
			want:   []Message{text("one"), text("two"), text("three")},
		},
		{name: "split in the first header byte", early: msg[:1], socket: msg[1:], want: []Message{text("split between early and socket")}},
		{name: "split in the mask", early: msg[:4], socket: msg[4:], want: []Message{text("split between early and socket")}},
		{name: "split in the payload", early: msg[:10], socket: msg[10:], want: []Message{text("split between early and socket")}},
		{
			name:   "early ends inside the second frame",
			early:  append(mframe(fin|byte(OpText), "one"), msg[:9]...),
			socket: msg[9:],
			want:   []Message{text("one"), text("split between early and socket")},
		},
		{
			// More early bytes than a borrowed read buffer holds.
			name:   "early longer than the read buffer",
			early:  append(bytes.Clone(big), mframe(fin|byte(OpText), "x")...),
			socket: mframe(fin|byte(OpText), "y"),
			want:   []Message{binMsg(string(bytes.Repeat([]byte{7}, 10000))), text("x"), text("y")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := tcpPair(t, bytes.Clone(tt.early), Options{})
			if !c.Buffered() {
				t.Error("early bytes are not reported buffered")
			}
			if _, err := client.Write(tt.socket); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				m, err := c.ReadMessage(1 << 20)
				if err != nil {
					t.Fatalf("ReadMessage: %v", err)
				}
				checkMessage(t, m, want)
			}
		})
	}
}

// awaitAsync runs Await in a goroutine of its own, once that goroutine
// has started.
func awaitAsync(c *Conn) <-chan error {
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		done <- c.Await()
	}()
	<-started
	return done
}

// notReturned fails if Await already returned. It cannot prove Await
// is blocked, but a wait that does not wait at all shows here on most
// runs: the yield lets the awaiting goroutine get that far.
func notReturned(t *testing.T, done <-chan error) {
	t.Helper()
	runtime.Gosched()
	select {
	case err := <-done:
		t.Fatalf("Await returned (%v) with nothing to read", err)
	default:
	}
}

func TestAwait(t *testing.T) {
	t.Run("returns when the client writes, and leaves the bytes", func(t *testing.T) {
		c, client := tcpPair(t, nil, Options{})
		// Rounds check that readiness consumed by one read does not wake the next wait.
		for i := range 3 {
			done := awaitAsync(c)
			notReturned(t, done)
			payload := fmt.Sprint("wake ", i)
			if _, err := client.Write(mframe(fin|byte(OpText), payload)); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, done, "Await's return"); err != nil {
				t.Fatalf("Await: %v", err)
			}
			// The wake-up was used; only a look at the socket finds the bytes.
			if err := wait(t, awaitAsync(c), "a second Await's return"); err != nil {
				t.Fatalf("second Await: %v", err)
			}
			m, err := c.ReadMessage(1024)
			if err != nil {
				t.Fatal(err)
			}
			checkMessage(t, m, text(payload))
			if c.br != nil {
				t.Error("an idle Conn keeps its read buffer")
			}
		}
	})
	t.Run("returns when the bytes came before the call", func(t *testing.T) {
		c, client := tcpPair(t, nil, Options{})
		// On loopback the bytes are in the server's socket when Write
		// returns, so no readiness event is left for Await to wait for.
		if _, err := client.Write(mframe(fin|byte(OpText), "already here")); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, awaitAsync(c), "Await's return"); err != nil {
			t.Fatalf("Await: %v", err)
		}
		m, err := c.ReadMessage(1024)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, m, text("already here"))
	})
	t.Run("returns after CloseNow", func(t *testing.T) {
		c, _ := tcpPair(t, nil, Options{})
		done := awaitAsync(c)
		notReturned(t, done)
		c.CloseNow()
		wait(t, done, "Await's return after CloseNow")
		if _, err := c.ReadMessage(1024); err == nil {
			t.Error("ReadMessage after CloseNow succeeded")
		}
	})
	t.Run("returns when the client closes", func(t *testing.T) {
		c, client := tcpPair(t, nil, Options{})
		done := awaitAsync(c)
		notReturned(t, done)
		client.Close()
		if err := wait(t, done, "Await's return after the client closed"); err != nil {
			t.Fatalf("Await: %v", err)
		}
		if _, err := c.ReadMessage(1024); !errors.Is(err, io.EOF) {
			t.Errorf("ReadMessage: %v, want EOF", err)
		}
	})
	t.Run("returns at once with early bytes", func(t *testing.T) {
		c, _ := tcpPair(t, mframe(fin|byte(OpText), "early"), Options{})
		if err := c.Await(); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage(1024)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, m, text("early"))
	})
	t.Run("returns at once without a socket", func(t *testing.T) {
		server, client := net.Pipe()
		defer client.Close()
		c := newConn(server, nil, Options{})
		defer c.CloseNow()
		if err := c.Await(); err != nil {
			t.Fatal(err)
		}
	})
}

// waiters are the two ways AwaitFunc waits: a goroutine per connection,
// and a Waiter where the platform has one.
func waiters(t *testing.T) map[string]*Waiter {
	ws := map[string]*Waiter{"goroutine": nil}
	w, err := NewWaiter()
	if errors.Is(err, errors.ErrUnsupported) {
		return ws
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ws["waiter"] = w
	return ws
}

// awaitFuncAsync arms AwaitFunc with a callback that reports each call.
func awaitFuncAsync(c *Conn, w *Waiter) <-chan struct{} {
	fired := make(chan struct{}, 2)
	c.AwaitFunc(w, func() { fired <- struct{}{} })
	return fired
}

func notFired(t *testing.T, fired <-chan struct{}) {
	t.Helper()
	runtime.Gosched()
	select {
	case <-fired:
		t.Fatal("AwaitFunc's callback ran with nothing to read")
	default:
	}
}

func TestAwaitFunc(t *testing.T) {
	for name, w := range waiters(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("fires when the client writes", func(t *testing.T) {
				c, client := tcpPair(t, nil, Options{})
				// Later rounds wait again on a socket that fired once.
				for i := range 3 {
					fired := awaitFuncAsync(c, w)
					notFired(t, fired)
					payload := fmt.Sprint("round ", i)
					if _, err := client.Write(mframe(fin|byte(OpText), payload)); err != nil {
						t.Fatal(err)
					}
					wait(t, fired, "the callback")
					m, err := c.ReadMessage(1024)
					if err != nil {
						t.Fatal(err)
					}
					checkMessage(t, m, text(payload))
				}
			})
			t.Run("fires for bytes that came before the call", func(t *testing.T) {
				c, client := tcpPair(t, nil, Options{})
				if _, err := client.Write(mframe(fin|byte(OpText), "early")); err != nil {
					t.Fatal(err)
				}
				wait(t, awaitFuncAsync(c, w), "the callback")
				// Unread bytes fire the next wait too.
				wait(t, awaitFuncAsync(c, w), "the second callback")
				m, err := c.ReadMessage(1024)
				if err != nil {
					t.Fatal(err)
				}
				checkMessage(t, m, text("early"))
			})
			t.Run("fires at once with buffered bytes", func(t *testing.T) {
				c, _ := tcpPair(t, mframe(fin|byte(OpText), "buffered"), Options{})
				wait(t, awaitFuncAsync(c, w), "the callback")
			})
			t.Run("fires once on CloseNow", func(t *testing.T) {
				c, _ := tcpPair(t, nil, Options{})
				fired := awaitFuncAsync(c, w)
				notFired(t, fired)
				c.CloseNow()
				wait(t, fired, "the callback")
				c.CloseNow()
				if _, err := c.ReadMessage(1024); err == nil {
					t.Error("ReadMessage after CloseNow succeeded")
				}
			})
			t.Run("fires after CloseNow", func(t *testing.T) {
				c, _ := tcpPair(t, nil, Options{})
				c.CloseNow()
				wait(t, awaitFuncAsync(c, w), "the callback")
			})
			t.Run("fires when the client closes", func(t *testing.T) {
				c, client := tcpPair(t, nil, Options{})
				fired := awaitFuncAsync(c, w)
				notFired(t, fired)
				client.Close()
				wait(t, fired, "the callback")
				if _, err := c.ReadMessage(1024); !errors.Is(err, io.EOF) {
					t.Errorf("ReadMessage: %v, want EOF", err)
				}
			})
		})
	}
}

func TestWaiterManyConns(t *testing.T) {
	w := mustWaiter(t)
	const n = 40
	type armed struct {
		c      *Conn
		client net.Conn
		fired  <-chan struct{}
	}
	var conns []armed
	for i := range n {
		c, client := tcpPair(t, nil, Options{})
		conns = append(conns, armed{c, client, awaitFuncAsync(c, w)})
		// Closed connections free descriptor numbers that later ones
		// reuse: a wait must not be mistaken for another's.
		if i%4 == 3 {
			conns[i].c.CloseNow()
			wait(t, conns[i].fired, "the callback of a closed connection")
			conns[i].fired = nil
		}
	}
	for i := n - 1; i >= 0; i-- {
		a := conns[i]
		if a.fired == nil {
			continue
		}
		notFired(t, a.fired)
		payload := fmt.Sprint("conn ", i)
		if _, err := a.client.Write(mframe(fin|byte(OpText), payload)); err != nil {
			t.Fatal(err)
		}
		wait(t, a.fired, "the callback")
		m, err := a.c.ReadMessage(1024)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, m, text(payload))
	}
	for i, a := range conns {
		if a.fired == nil {
			continue
		}
		select {
		case <-a.fired:
			t.Errorf("connection %d's callback ran twice", i)
		default:
		}
	}
}

func TestWaiterClose(t *testing.T) {
	w, err := NewWaiter()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no Waiter on this platform")
	}
	if err != nil {
		t.Fatal(err)
	}
	c, client := tcpPair(t, nil, Options{})
	fired := awaitFuncAsync(c, w)
	notFired(t, fired)
	// A stopped Waiter hands its pending waits back; the read then waits.
	w.Close()
	wait(t, fired, "the callback of a pending wait")
	w.Close()
	// Later waits fall back to a goroutine.
	fired = awaitFuncAsync(c, w)
	if _, err := client.Write(mframe(fin|byte(OpText), "after")); err != nil {
		t.Fatal(err)
	}
	wait(t, fired, "the callback after Close")
	m, err := c.ReadMessage(1024)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, m, text("after"))
}

func TestWriteMessageSizes(t *testing.T) {
	tests := []struct {
		op      Opcode
		n       int
		lenCode byte // the 7-bit length field
	}{
		{OpText, 0, 0},
		{OpText, 125, 125},
		{OpText, 126, 126},
		{OpText, 65535, 126},
		{OpText, 65536, 127},
		{OpBinary, 3, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.op, "/", tt.n), func(t *testing.T) {
			c, client := tcpPair(t, nil, Options{})
			p := []byte(pattern(tt.n))
			done := make(chan error, 1)
			go func() { done <- c.WriteMessage(tt.op, p) }()
			f := readServerFrame(t, client)
			if err := wait(t, done, "WriteMessage's return"); err != nil {
				t.Fatal(err)
			}
			if f.b0 != fin|byte(tt.op) || f.b1 != tt.lenCode || !bytes.Equal(f.payload, p) {
				t.Errorf("got header %#x %#x and %d bytes, want %#x %#x and %d bytes",
					f.b0, f.b1, len(f.payload), fin|byte(tt.op), tt.lenCode, tt.n)
			}
		})
	}
}

func TestPing(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if f := readServerFrame(t, client); f.b0 != fin|byte(OpPing) || len(f.payload) != 0 {
		t.Errorf("got frame %#x with %q, want an empty ping", f.b0, f.payload)
	}
}

func TestCloseHandshake(t *testing.T) {
	c, client := tcpPair(t, nil, Options{})
	if c.Closing() {
		t.Error("Closing before Close")
	}
	if err := c.Close(4001, "kicked"); err != nil {
		t.Fatal(err)
	}
	f := readServerFrame(t, client)
	if f.b0 != fin|byte(OpClose) || string(f.payload) != closePayload(4001, "kicked") {
		t.Fatalf("client got frame %#x with %q, want close 4001 kicked", f.b0, f.payload)
	}
	if !c.Closing() {
		t.Error("not Closing after Close")
	}
	if err := c.WriteMessage(OpText, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteMessage after Close: %v, want ErrClosed", err)
	}
	if err := c.Ping(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(1000, "again"); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := client.Write(mframe(fin|byte(OpClose), closePayload(4001, "kicked"))); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadMessage(1024)
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{Code: 4001, Reason: "kicked"}) {
		t.Fatalf("ReadMessage: %v, want the client's close 4001 kicked", err)
	}
	c.CloseNow()
	// Nothing may follow the one close frame: neither an echo of the
	// client's answer nor the second Close.
	if n, err := client.Read(make([]byte, 16)); n != 0 || err != io.EOF {
		t.Errorf("client read %d bytes, %v after the close frame, want EOF", n, err)
	}
}

// Only messages go through WriteMessage: a control frame written there
// could be over 125 bytes or slip past the close bookkeeping.
func TestWriteMessageRefusesControlOpcodes(t *testing.T) {
	c, _ := tcpPair(t, nil, Options{})
	for _, op := range []Opcode{OpContinuation, OpClose, OpPing, OpPong, 3} {
		if err := c.WriteMessage(op, []byte("x")); err == nil {
			t.Errorf("opcode %d written as a message", op)
		}
	}
	if c.Closing() {
		t.Fatal("a refused write started the close handshake")
	}
}

func TestCloseReason(t *testing.T) {
	tests := []struct {
		name, reason, want string
	}{
		{"short", "kicked", "kicked"},
		{"123 bytes", pattern(123), pattern(123)},
		{"200 ASCII bytes", pattern(200), pattern(123)},
		{"cut inside a 2-byte rune", pattern(122) + "é" + "tail", pattern(122)},
		{"cut inside a 3-byte rune", pattern(121) + "€" + "tail", pattern(121)},
		{"cut inside a 4-byte rune", pattern(120) + "😀" + "tail", pattern(120)},
		{"cut after a 2-byte rune", pattern(121) + "é" + "tail", pattern(121) + "é"},
		{"invalid UTF-8 dropped", "ki\xffck\xfeed", "kicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := tcpPair(t, nil, Options{})
			if err := c.Close(4001, tt.reason); err != nil {
				t.Fatal(err)
			}
			f := readServerFrame(t, client)
			if f.closeCode() != 4001 {
				t.Fatalf("got frame %#x with %q, want close 4001", f.b0, f.payload)
			}
			if got := string(f.payload[2:]); got != tt.want || !utf8.ValidString(got) {
				t.Errorf("reason %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
}

func TestCloseCode(t *testing.T) {
	tests := []struct{ code, want StatusCode }{
		{1000, 1000}, {1001, 1001}, {1003, 1003}, {1007, 1007}, {1014, 1014}, {3000, 3000}, {4999, 4999},
		{0, 1011}, {999, 1011}, {1004, 1011}, {1005, 1011}, {1006, 1011}, {1015, 1011}, {2999, 1011}, {5000, 1011}, {-1, 1011},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			c, client := tcpPair(t, nil, Options{})
			if err := c.Close(tt.code, ""); err != nil {
				t.Fatal(err)
			}
			if f := readServerFrame(t, client); f.closeCode() != tt.want {
				t.Errorf("client got close code %d, want %d", f.closeCode(), tt.want)
			}
		})
	}
}

func TestCloseTimeout(t *testing.T) {
	c, client := tcpPair(t, nil, Options{CloseTimeout: 50 * time.Millisecond})
	if err := c.Close(4001, "bye"); err != nil {
		t.Fatal(err)
	}
	if f := readServerFrame(t, client); f.closeCode() != 4001 {
		t.Fatalf("client got close code %d, want 4001", f.closeCode())
	}
	// The client never answers: the read ends when the server gives up.
	if n, err := client.Read(make([]byte, 16)); n != 0 || err != io.EOF {
		t.Errorf("client read %d bytes, %v, want EOF", n, err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	const writers, each = 8, 40
	// Some frames take several socket writes, which is where two
	// unserialised writers would interleave.
	size := func(w, i int) int { return 1 + (w*7919+i*104729)%90000 }
	c, client := tcpPair(t, nil, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := c.WriteMessage(OpBinary, bytes.Repeat([]byte{byte(w)}, size(w, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var next [writers]int
	for range writers * each {
		f := readServerFrame(t, client)
		if f.b0 != fin|byte(OpBinary) || len(f.payload) == 0 || int(f.payload[0]) >= writers {
			t.Fatalf("got frame %#x with %d bytes: not one of the messages written", f.b0, len(f.payload))
		}
		w := int(f.payload[0])
		if len(f.payload) != size(w, next[w]) || bytes.Count(f.payload, f.payload[:1]) != len(f.payload) {
			t.Fatalf("message %d of writer %d arrived mixed or cut (%d bytes)", next[w], w, len(f.payload))
		}
		next[w]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWritesRacingClose(t *testing.T) {
	const writers, each = 4, 50
	c, client := tcpPair(t, nil, Options{})
	var wg sync.WaitGroup
	var sent [writers]int // successful writes, each read after wg.Wait
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i == 10 {
					if err := c.Close(1000, "done"); err != nil {
						errs <- err
					}
				}
				err := c.WriteMessage(OpBinary, bytes.Repeat([]byte{byte(w)}, 1+i*1000))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				sent[w]++
			}
		})
	}
	var got [writers]int
	for {
		f := readServerFrame(t, client)
		if f.op() == OpClose {
			break
		}
		w := int(f.payload[0])
		if f.op() != OpBinary || w >= writers || len(f.payload) != 1+got[w]*1000 || bytes.Count(f.payload, f.payload[:1]) != len(f.payload) {
			t.Fatalf("got frame %#x with %d bytes: not one of the messages written", f.b0, len(f.payload))
		}
		got[w]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A write that succeeded went out before the close frame, and none after it.
	if got != sent {
		t.Errorf("frames before the close frame by writer: %v; successful writes: %v", got, sent)
	}
	c.CloseNow()
	if n, err := client.Read(make([]byte, 16)); n != 0 || err != io.EOF {
		t.Errorf("client read %d bytes, %v after the close frame, want EOF", n, err)
	}
}

func TestCloseStatus(t *testing.T) {
	tests := []struct {
		err  error
		want StatusCode
	}{
		{&CloseError{Code: 4001}, 4001},
		{fmt.Errorf("reading: %w", &CloseError{Code: 1009, Local: true}), 1009},
		{io.EOF, -1},
		{nil, -1},
	}
	for _, tt := range tests {
		if got := CloseStatus(tt.err); got != tt.want {
			t.Errorf("CloseStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if s := (&CloseError{Code: 4001, Reason: "kicked"}).Error(); !strings.Contains(s, "4001") || !strings.Contains(s, "client") {
		t.Errorf("CloseError text %q names neither the code nor the side", s)
	}
}
