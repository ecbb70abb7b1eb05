package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"
)

// fuzzSocket is the server's socket for every fuzz input: reads come from
// the real socket (EOF behind each input's early bytes), writes go nowhere.
// Nothing then runs beside an input to make its coverage vary: no reader
// draining the socket, no close timer (a failed close frame starts none,
// and ReadMessage ignores that failure). Close is a no-op so that one
// input's failures leave the socket to the next.
type fuzzSocket struct{ net.Conn }

func (fuzzSocket) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == fin|byte(OpClose) {
		return 0, errors.New("close frame dropped")
	}
	return len(p), nil
}

func (fuzzSocket) Close() error { return nil }

func FuzzReadMessage(f *testing.F) {
	const limit, keep = 1 << 16, 1024
	for _, seed := range [][]byte{
		mframe(fin|byte(OpText), "hello"),
		mframe(fin|byte(OpBinary), "\xff\x00\xfe"),
		mframe(fin|byte(OpText), pattern(200)),
		clientFrame(fin|byte(OpBinary), true, make([]byte, 70000)),
		bytes.Join([][]byte{
			mframe(byte(OpText), "frag"), mframe(fin|byte(OpPing), "p"),
			mframe(byte(OpContinuation), "men"), mframe(fin|byte(OpContinuation), "ted"),
		}, nil),
		append(mframe(fin|byte(OpText), "one"), mframe(fin|byte(OpText), "two")...),
		mframe(fin|byte(OpText), "h\xc3"),
		mframe(fin|byte(OpClose), closePayload(1000, "bye")),
		mframe(fin|byte(OpClose), ""),
		mframe(fin|byte(OpClose), "\x03"),
		mframe(fin|byte(OpPong), "x"),
		clientFrame(fin|byte(OpText), false, []byte("unmasked")),
		mframe(0x40|fin|byte(OpText), "rsv1"),
		mframe(fin|3, "opcode 3"),
		mframe(byte(OpPing), "not final"),
		{fin | byte(OpBinary), 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, // 64-bit length over 2^63
		{fin | byte(OpBinary), 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4},
		{fin | byte(OpText), 0x80 | 126},
	} {
		f.Add(seed)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		f.Fatal(err)
	}
	server, err := ln.Accept()
	ln.Close()
	if err != nil {
		f.Fatal(err)
	}
	client.Close()
	f.Cleanup(func() { server.Close() })

	f.Fuzz(func(t *testing.T, stream []byte) {
		c := newConn(fuzzSocket{server}, bytes.Clone(stream), Options{ReadLimit: limit})
		// Each read takes at least one whole frame header, so this many
		// successful reads means ReadMessage returns without reading.
		for range len(stream)/2 + 2 {
			m, err := c.ReadMessage(keep)
			if err != nil {
				var ce *CloseError
				if errors.As(err, &ce) {
					if ce.Local && ce.Code != StatusProtocolError && ce.Code != StatusInvalidPayload && ce.Code != StatusMessageTooBig {
						t.Errorf("closed with %d for a client's error", ce.Code)
					}
					if !ce.Local && ce.Code != StatusNoStatusRcvd && !ce.Code.sendable() {
						t.Errorf("accepted the client's close code %d", ce.Code)
					}
				}
				return
			}
			switch {
			case m.Op != 0 && m.Op != OpText && m.Op != OpBinary:
				t.Fatalf("message with opcode %d", m.Op)
			case m.Op == 0 && (m.Data != nil || m.Size != 0):
				t.Fatalf("Op 0 with %d bytes of a %d-byte message", len(m.Data), m.Size)
			case len(m.Data) > keep:
				t.Fatalf("kept %d bytes, asked for %d", len(m.Data), keep)
			case m.Size > limit || m.Size < int64(len(m.Data)):
				t.Fatalf("Size %d with %d bytes kept, limit %d", m.Size, len(m.Data), limit)
			}
		}
		t.Fatalf("ReadMessage did not stop on a %d-byte stream", len(stream))
	})
}

func FuzzUnmask(f *testing.F) {
	f.Add([]byte("a masked payload longer than eight bytes"), uint32(0x3d21fa37), int64(0))
	f.Add([]byte("odd"), uint32(0xdeadbeef), int64(1))
	f.Add(make([]byte, 17), uint32(0x01020304), int64(7))
	f.Add([]byte("negative offset"), uint32(0xffffffff), int64(-1))
	f.Add([]byte("overflowing offset"), uint32(0x80402010), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, p []byte, k uint32, pos int64) {
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], k)
		want := make([]byte, len(p))
		for i := range p {
			want[i] = p[i] ^ key[(pos+int64(i))&3]
		}
		got := bytes.Clone(p)
		unmask(got, key, pos)
		if !bytes.Equal(got, want) {
			t.Fatalf("unmask(%x, %x, %d) = %x, want %x", p, key, pos, got, want)
		}
	})
}

// BenchmarkReadMessage reads from early bytes, so that it measures the
// parsing and the buffer borrowing rather than the loopback.
func BenchmarkReadMessage(b *testing.B) {
	frame := mframe(fin|byte(OpText), pattern(200))
	c, _ := tcpPair(b, nil, Options{})
	b.SetBytes(200)
	b.ReportAllocs()
	for b.Loop() {
		c.early = frame
		m, err := c.ReadMessage(1024)
		if err != nil || m.Size != 200 {
			b.Fatalf("ReadMessage: %v, %d bytes", err, m.Size)
		}
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	c, client := tcpPair(b, nil, Options{})
	_ = client.SetDeadline(time.Time{})
	go io.Copy(io.Discard, client)
	p := []byte(pattern(200))
	b.SetBytes(200)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteMessage(OpText, p); err != nil {
			b.Fatal(err)
		}
	}
}
