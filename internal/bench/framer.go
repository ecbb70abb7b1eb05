package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// framerConn is the least an APNs provider needs of HTTP/2, written on
// x/net's Framer and HPACK codec rather than its general client: one
// writer goroutine encodes the headers and body of every request that is
// waiting and flushes them together, in one TLS record and one write, and
// one reader goroutine answers each stream from its HEADERS frame without
// building an http.Response. It exists to measure what such a client would
// cost (ringd bench transport --client framer) against x/net's client; it
// handles what the simulator sends (SETTINGS, PING, WINDOW_UPDATE, GOAWAY,
// RST_STREAM, error bodies) and no more: no retries, no health checks.
type framerConn struct {
	tc        *tls.Conn
	authority string
	reqs      chan framerRequest
	ctrl      chan func(*http2.Framer) error

	mu      sync.Mutex
	streams map[uint32]chan framerResult
	err     error // set once the connection failed; every stream then fails

	done chan struct{}
}

type framerRequest struct {
	path    string
	headers [][2]string
	body    []byte
	result  chan framerResult
}

type framerResult struct {
	status int
	body   []byte
	err    error
}

// framerWindow is the receive window the client announces, for streams and
// the connection: APNs answers are at most a few dozen bytes per stream.
const framerWindow = 1 << 20

func dialFramer(ctx context.Context, addr string, cfg *tls.Config) (*framerConn, error) {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{http2.NextProtoTLS}
	d := tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := nc.(*tls.Conn)
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		_ = tc.Close()
		return nil, fmt.Errorf("negotiated %q, not h2", p)
	}
	c := &framerConn{
		tc: tc, authority: addr,
		reqs:    make(chan framerRequest, 1024),
		ctrl:    make(chan func(*http2.Framer) error, 16),
		streams: map[uint32]chan framerResult{},
		done:    make(chan struct{}),
	}
	bw := bufio.NewWriterSize(tc, 16<<10)
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		_ = tc.Close()
		return nil, err
	}
	wf := http2.NewFramer(bw, nil)
	if err := wf.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: framerWindow}); err != nil {
		_ = tc.Close()
		return nil, err
	}
	if err := wf.WriteWindowUpdate(0, framerWindow-65535); err != nil {
		_ = tc.Close()
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		_ = tc.Close()
		return nil, err
	}
	rf := http2.NewFramer(nil, bufio.NewReaderSize(tc, 16<<10))
	rf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	go c.writeLoop(bw, wf)
	go c.readLoop(rf)
	return c, nil
}

// Do sends one POST and waits for its status (and body, if any).
func (c *framerConn) Do(ctx context.Context, path string, headers [][2]string, body []byte) (int, []byte, error) {
	res := make(chan framerResult, 1)
	select {
	case c.reqs <- framerRequest{path: path, headers: headers, body: body, result: res}:
	case <-c.done:
		return 0, nil, c.failure()
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	select {
	case r := <-res:
		return r.status, r.body, r.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (c *framerConn) Close() error {
	c.fail(errors.New("framer: closed"))
	return nil
}

func (c *framerConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection once: every stream waiting gets err.
func (c *framerConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = nil
	close(c.done)
	c.mu.Unlock()
	_ = c.tc.Close()
	for _, s := range streams {
		s <- framerResult{err: err}
	}
}

// writeLoop writes every request and control frame that is waiting, then
// flushes once.
func (c *framerConn) writeLoop(bw *bufio.Writer, f *http2.Framer) {
	var (
		block  appendWriter // the header block being encoded
		enc    = hpack.NewEncoder(&block)
		nextID = uint32(1)
	)
	encode := func(r framerRequest) error {
		block.b = block.b[:0]
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", c.authority}, {":path", r.path}} {
			if err := enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]}); err != nil {
				return err
			}
		}
		for _, kv := range r.headers {
			if err := enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]}); err != nil {
				return err
			}
		}
		if err := enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(r.body))}); err != nil {
			return err
		}
		id := nextID
		nextID += 2
		c.mu.Lock()
		if c.streams == nil {
			c.mu.Unlock()
			return c.failure()
		}
		c.streams[id] = r.result
		c.mu.Unlock()
		if err := f.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.b, EndHeaders: true, EndStream: len(r.body) == 0}); err != nil {
			return err
		}
		if len(r.body) > 0 {
			return f.WriteData(id, true, r.body)
		}
		return nil
	}
	for {
		var err error
		select {
		case r := <-c.reqs:
			err = encode(r)
		case w := <-c.ctrl:
			err = w(f)
		case <-c.done:
			return
		}
	more:
		for err == nil {
			select {
			case r := <-c.reqs:
				err = encode(r)
			case w := <-c.ctrl:
				err = w(f)
			default:
				break more
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			c.fail(fmt.Errorf("framer: write: %w", err))
			return
		}
	}
}

// readLoop answers streams and the server's control frames until the
// connection fails.
func (c *framerConn) readLoop(f *http2.Framer) {
	bodies := map[uint32][]byte{}
	status := map[uint32]int{}
	var unacked uint32 // received DATA bytes not yet given back to the connection window
	finish := func(id uint32, r framerResult) {
		c.mu.Lock()
		s := c.streams[id]
		delete(c.streams, id)
		c.mu.Unlock()
		delete(bodies, id)
		delete(status, id)
		if s != nil {
			s <- r
		}
	}
	for {
		fr, err := f.ReadFrame()
		if err != nil {
			c.fail(fmt.Errorf("framer: read: %w", err))
			return
		}
		switch fr := fr.(type) {
		case *http2.MetaHeadersFrame:
			code, _ := strconv.Atoi(fr.PseudoValue("status"))
			if fr.StreamEnded() {
				finish(fr.StreamID, framerResult{status: code})
			} else {
				status[fr.StreamID] = code
			}
		case *http2.DataFrame:
			id := fr.StreamID
			bodies[id] = append(bodies[id], fr.Data()...)
			unacked += uint32(len(fr.Data()))
			if fr.StreamEnded() {
				finish(id, framerResult{status: status[id], body: bodies[id]})
			}
			if unacked > framerWindow/2 {
				n := unacked
				unacked = 0
				c.control(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, n) })
			}
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				c.control(func(w *http2.Framer) error { return w.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !fr.IsAck() {
				data := fr.Data
				c.control(func(w *http2.Framer) error { return w.WritePing(true, data) })
			}
		case *http2.RSTStreamFrame:
			finish(fr.StreamID, framerResult{err: fmt.Errorf("framer: stream reset: %v", fr.ErrCode)})
		case *http2.GoAwayFrame:
			c.fail(fmt.Errorf("framer: GOAWAY %v", fr.ErrCode))
			return
		}
	}
}

func (c *framerConn) control(w func(*http2.Framer) error) {
	select {
	case c.ctrl <- w:
	case <-c.done:
	}
}

// appendWriter is an io.Writer that appends to b.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

var _ io.Writer = (*appendWriter)(nil)
