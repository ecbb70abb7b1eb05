package apns

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is the client side of one HTTP/2 connection to APNs, written for
// what a provider does and nothing else, on x/net's Framer and HPACK codec.
// x/net's general client cost ~3× the CPU per request here (ringd bench
// transport --client framer): it builds an http.Request and http.Response
// per push, and writes each request's frames with their own TLS record and
// system call. Here one writer goroutine encodes every request that is
// waiting and flushes them together, and one reader goroutine answers each
// stream from its HEADERS (and, for an error, DATA) frames.
//
// What it keeps of HTTP/2 for APNs:
//   - SETTINGS_MAX_CONCURRENT_STREAMS is obeyed: requests over the limit
//     wait for a stream to end (APNs lowers the limit, down to 1, after
//     bad requests);
//   - DATA waits for the connection's flow-control window;
//   - the HPACK dynamic table follows SETTINGS_HEADER_TABLE_SIZE;
//   - GOAWAY fails the streams above its last stream ID, and new requests,
//     as not sent (safe to send again), lets the others finish, then
//     closes; REFUSED_STREAM is not sent too;
//   - a connection silent for readIdle is PINGed, and closed when no
//     answer comes within pingTimeout; a write stalled for writeTimeout
//     closes it;
//   - a request whose context ends resets its stream (CANCEL), or, when
//     the writer has not started it, is dropped unsent.
type h2Conn struct {
	nc        net.Conn
	authority string // :authority of every request
	cfg       h2Config

	wake     chan struct{} // capacity 1: the writer has something to do
	done     chan struct{} // closed when the connection ended
	lastRead atomic.Int64  // unix nanoseconds of the last frame read
	checking atomic.Bool   // a checkHealth PING is out

	mu         sync.Mutex
	pending    []*h2Stream                 // waiting for a stream slot or window
	ctrl       []func(*http2.Framer) error // control frames to write next
	streams    map[uint32]*h2Stream        // open streams
	maxStreams uint32                      // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	sendWindow int64                       // connection window for our DATA
	initWindow int64                       // the server's SETTINGS_INITIAL_WINDOW_SIZE
	tableSizes []uint32                    // SETTINGS_HEADER_TABLE_SIZE values not yet given to the encoder, in order
	closing    bool                        // no new streams: GOAWAY, Shutdown, or IDs used up
	idle       chan struct{}               // closed when closing and no stream is left
	err        error                       // why the connection ended
	pings      map[[8]byte]chan struct{}
	recvUnack  uint32 // DATA bytes received and not yet given back
}

type h2Config struct {
	readIdle, pingTimeout, writeTimeout time.Duration
}

// h2Stream is one request and, once answered, its response.
type h2Stream struct {
	path   string
	fields []hpack.HeaderField // regular headers, lowercase names
	body   []byte
	id     uint32
	done   chan h2Result // capacity 1: finishing never blocks

	// Guarded by h2Conn.mu: set when the writer starts encoding it. Until
	// then, a cancelled request is dropped unsent.
	written bool
	sentAt  time.Time

	// Set by the reader goroutine only, before done.
	status           int
	apnsID, uniqueID string
	respBody         []byte
}

type h2Result struct {
	status           int
	apnsID, uniqueID string
	body             []byte
	err              error
}

// notSentError is a failure before APNs could act on the request: sending
// it again cannot deliver the push twice.
type notSentError struct{ why string }

func (e *notSentError) Error() string { return "apns: request not sent: " + e.why }

// notSent reports whether err says APNs did not take the request.
func notSent(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns)
}

var (
	errConnClosed    = errors.New("apns: connection closed")
	errNotUsable     = &notSentError{"the connection takes no new requests (GOAWAY or closing)"}
	errRefusedStream = &notSentError{"APNs refused the stream (REFUSED_STREAM)"}
)

const (
	// maxStreamID is the last client stream ID (odd, below 2^31).
	maxStreamID = 1<<31 - 1
	// defaultMaxStreams applies until the server's SETTINGS say otherwise;
	// openConn waits for them before the first request.
	defaultMaxStreams = 100
	// recvWindowRefill: the connection's receive window (65,535 bytes by
	// default) is given back once this much was read.
	recvWindowRefill = 32 << 10
	// maxResponseHeaderList bounds the header block of one answer: APNs
	// sends two headers.
	maxResponseHeaderList = 64 << 10
	// maxDataFrame is the frame size every peer takes; a body goes in one
	// DATA frame (ValidateNotification keeps payloads to 5 KiB).
	maxDataFrame = 16384
)

// newH2Conn starts HTTP/2 on nc, a TLS connection that negotiated h2.
func newH2Conn(nc net.Conn, authority string, cfg h2Config) (*h2Conn, error) {
	c := &h2Conn{
		nc: nc, authority: authority, cfg: cfg,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		streams:    make(map[uint32]*h2Stream),
		maxStreams: defaultMaxStreams,
		sendWindow: 65535,
		initWindow: 65535,
		pings:      make(map[[8]byte]chan struct{}),
	}
	c.lastRead.Store(time.Now().UnixNano())
	bw := bufio.NewWriterSize(nc, 16<<10)
	wf := http2.NewFramer(bw, nil)
	_ = nc.SetWriteDeadline(time.Now().Add(cfg.writeTimeout))
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := wf.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	rf := http2.NewFramer(nil, bufio.NewReaderSize(nc, 16<<10))
	rf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rf.MaxHeaderListSize = maxResponseHeaderList
	rf.SetMaxReadFrameSize(16384) // what the client's SETTINGS leave at the default
	go c.writeLoop(bw, wf)
	go c.readLoop(rf)
	go c.healthLoop()
	return c, nil
}

// h2State is what the pool reads of a connection.
type h2State struct {
	MaxConcurrentStreams uint32
	Closing, Closed      bool
}

func (c *h2Conn) State() h2State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return h2State{MaxConcurrentStreams: c.maxStreams, Closing: c.closing, Closed: c.err != nil}
}

// roundTrip sends one POST and waits for its answer. The answer's body is
// kept up to maxErrorBody bytes.
func (c *h2Conn) roundTrip(ctx context.Context, path string, fields []hpack.HeaderField, body []byte) (h2Result, error) {
	s := &h2Stream{path: path, fields: fields, body: body, done: make(chan h2Result, 1)}
	c.mu.Lock()
	switch {
	case c.closing:
		c.mu.Unlock()
		return h2Result{}, errNotUsable
	case len(body) > maxDataFrame:
		c.mu.Unlock()
		return h2Result{}, fmt.Errorf("apns: a %d-byte payload exceeds one DATA frame (%d bytes)", len(body), maxDataFrame)
	case int64(len(body)) > c.initWindow:
		c.mu.Unlock()
		return h2Result{}, fmt.Errorf("apns: a %d-byte payload exceeds the server's stream window of %d bytes", len(body), c.initWindow)
	}
	c.pending = append(c.pending, s)
	c.mu.Unlock()
	c.signal()
	select {
	case r := <-s.done:
		return r, r.err
	case <-ctx.Done():
		if c.cancel(s) {
			return h2Result{}, context.Cause(ctx)
		}
		r := <-s.done // answered meanwhile
		return r, r.err
	}
}

// cancel withdraws s: from the queue, or by resetting its stream. It
// reports false when s was already finished.
func (c *h2Conn) cancel(s *h2Stream) bool {
	c.mu.Lock()
	for i, p := range c.pending {
		if p == s {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			c.signal() // the requests behind it may fit now
			c.mu.Unlock()
			return true
		}
	}
	if s.id == 0 || c.streams[s.id] != s {
		c.mu.Unlock()
		return false
	}
	delete(c.streams, s.id)
	silent := false
	if s.written {
		// Only a stream that was opened may be reset.
		id := s.id
		c.controlLocked(func(f *http2.Framer) error { return f.WriteRSTStream(id, http2.ErrCodeCancel) })
		silent = c.lastRead.Load() < s.sentAt.UnixNano()
	}
	c.signal()
	drained := c.streamEndedLocked()
	c.mu.Unlock()
	if drained {
		c.fail(errConnClosed)
	}
	if silent {
		// Nothing was read since the request went out: the connection may
		// be dead, and would swallow the requests the freed slot lets in
		// until readIdle passes. A PING tells within pingTimeout.
		c.checkHealth()
	}
	return true
}

// checkHealth PINGs the connection, at most once at a time, and closes it
// when no answer comes within pingTimeout.
func (c *h2Conn) checkHealth() {
	if !c.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.checking.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.pingTimeout)
		defer cancel()
		if err := c.Ping(ctx); err != nil && c.failure() == nil {
			c.fail(fmt.Errorf("apns: no PING answer from %s within %s after a request timed out: %w", c.authority, c.cfg.pingTimeout, err))
		}
	}()
}

// Ping sends a PING and waits for its acknowledgement.
func (c *h2Conn) Ping(ctx context.Context) error {
	var data [8]byte
	_, _ = rand.Read(data[:])
	ack := make(chan struct{})
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pings[data] = ack
	c.controlLocked(func(f *http2.Framer) error { return f.WritePing(false, data) })
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pings, data)
		c.mu.Unlock()
	}()
	select {
	case <-ack:
		return nil
	case <-c.done:
		return c.failure()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Shutdown takes no new requests and closes the connection once the open
// streams are answered, or when ctx ends (returning its error).
func (c *h2Conn) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.stopLocked(errNotUsable)
	idle := c.idleLocked()
	c.mu.Unlock()
	var err error
	select {
	case <-idle:
	case <-c.done:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	c.fail(errConnClosed)
	return err
}

// Close closes the connection at once; open streams fail.
func (c *h2Conn) Close() error {
	c.fail(errConnClosed)
	return nil
}

func (c *h2Conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection once, failing every request: those written
// with err (APNs may have acted on them), those still queued as not sent.
func (c *h2Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.closing = true
	streams, pending := c.streams, c.pending
	c.streams, c.pending = map[uint32]*h2Stream{}, nil
	close(c.done)
	c.mu.Unlock()
	_ = c.nc.Close()
	notSentErr := &notSentError{"the connection closed before the request was written: " + err.Error()}
	for _, s := range streams {
		if s.written {
			s.done <- h2Result{err: err}
		} else {
			s.done <- h2Result{err: notSentErr}
		}
	}
	for _, s := range pending {
		s.done <- h2Result{err: notSentErr}
	}
}

// stopLocked takes no new streams and fails the queued requests with err.
func (c *h2Conn) stopLocked(err error) {
	c.closing = true
	for _, s := range c.pending {
		s.done <- h2Result{err: err}
	}
	c.pending = nil
	c.noteIdleLocked()
}

// idleLocked returns a channel closed once closing with no open stream.
func (c *h2Conn) idleLocked() <-chan struct{} {
	if c.idle == nil {
		c.idle = make(chan struct{})
		c.noteIdleLocked()
	}
	return c.idle
}

func (c *h2Conn) noteIdleLocked() {
	if c.closing && len(c.streams) == 0 && c.idle != nil {
		select {
		case <-c.idle:
		default:
			close(c.idle)
		}
	}
}

func (c *h2Conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// controlLocked queues a control frame for the writer's next round.
func (c *h2Conn) controlLocked(w func(*http2.Framer) error) {
	c.ctrl = append(c.ctrl, w)
	c.signal()
}

// writeLoop writes what is waiting (control frames first, then every
// request a stream slot and the window allow) and flushes once per round.
func (c *h2Conn) writeLoop(bw *bufio.Writer, f *http2.Framer) {
	var (
		block  headerBlock
		enc    = hpack.NewEncoder(&block)
		nextID = uint32(1)
	)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		ctrl := c.ctrl
		c.ctrl = nil
		ready := c.takeReadyLocked(&nextID)
		tableSizes := c.tableSizes
		c.tableSizes = nil
		c.mu.Unlock()

		err := c.writeRound(bw, f, enc, &block, ctrl, ready, tableSizes)
		if err != nil {
			c.fail(fmt.Errorf("apns: write to %s: %w", c.authority, err))
			return
		}
	}
}

func (c *h2Conn) writeRound(bw *bufio.Writer, f *http2.Framer, enc *hpack.Encoder, block *headerBlock,
	ctrl []func(*http2.Framer) error, ready []*h2Stream, tableSizes []uint32) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
	for _, w := range ctrl {
		if err := w(f); err != nil {
			return err
		}
	}
	// Each size in turn: the encoder then signals the smallest and the
	// last at the start of the next block (RFC 7541 §4.2), so a server that
	// emptied its table on a 0 is told so.
	for _, size := range tableSizes {
		enc.SetMaxDynamicTableSize(size)
	}
	for _, s := range ready {
		if !c.startWrite(s) {
			continue // cancelled before a byte of it was written
		}
		if err := c.writeRequest(f, enc, block, s); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// startWrite marks s as being written, unless its caller withdrew it since
// takeReadyLocked: then its body's share of the window is given back and
// its stream ID is left unused (a later, higher ID closes it implicitly).
func (c *h2Conn) startWrite(s *h2Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[s.id] != s {
		if c.err == nil {
			c.sendWindow += int64(len(s.body))
		}
		return false
	}
	s.written = true
	s.sentAt = time.Now()
	return true
}

// takeReadyLocked moves the requests that may start now from pending to
// streams, in order, giving each its stream ID and its body's share of the
// connection window.
func (c *h2Conn) takeReadyLocked(nextID *uint32) []*h2Stream {
	var ready []*h2Stream
	for len(c.pending) > 0 && !c.closing && uint32(len(c.streams)) < c.maxStreams {
		s := c.pending[0]
		if int64(len(s.body)) > c.initWindow {
			// The server lowered its stream window below this body since it
			// was queued: each body goes in one DATA frame within it.
			c.pending = c.pending[1:]
			s.done <- h2Result{err: &notSentError{fmt.Sprintf("a %d-byte payload exceeds the server's stream window of %d bytes", len(s.body), c.initWindow)}}
			continue
		}
		if int64(len(s.body)) > c.sendWindow {
			break // wait for WINDOW_UPDATE
		}
		c.pending = c.pending[1:]
		s.id = *nextID
		*nextID += 2
		c.sendWindow -= int64(len(s.body))
		c.streams[s.id] = s
		ready = append(ready, s)
		if *nextID > maxStreamID {
			// IDs used up: this connection ends after its streams; the pool
			// opens another.
			c.stopLocked(errNotUsable)
		}
	}
	if len(c.pending) == 0 {
		c.pending = nil // let a long queue's array go
	}
	return ready
}

// writeRequest writes s's HEADERS (and CONTINUATION when the block exceeds
// the default frame size) and DATA frames.
func (c *h2Conn) writeRequest(f *http2.Framer, enc *hpack.Encoder, block *headerBlock, s *h2Stream) error {
	block.b = block.b[:0]
	for _, hf := range [...]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: c.authority},
		// Never indexed: each path holds its own device token, and adding
		// them to the dynamic table would evict the fields that repeat
		// (the authority, the topic, the provider token).
		{Name: ":path", Value: s.path, Sensitive: true},
	} {
		if err := enc.WriteField(hf); err != nil {
			return err
		}
	}
	for _, hf := range s.fields {
		if err := enc.WriteField(hf); err != nil {
			return err
		}
	}
	if err := enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(s.body))}); err != nil {
		return err
	}
	// 16,384 bytes is the frame size every peer must take.
	const maxFrame = 16384
	frag := block.b
	first := true
	for {
		chunk := frag[:min(len(frag), maxFrame)]
		frag = frag[len(chunk):]
		last := len(frag) == 0
		var err error
		if first {
			err = f.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: chunk, EndHeaders: last, EndStream: len(s.body) == 0})
			first = false
		} else {
			err = f.WriteContinuation(s.id, last, chunk)
		}
		if err != nil {
			return err
		}
		if last {
			break
		}
	}
	if len(s.body) == 0 {
		return nil
	}
	return f.WriteData(s.id, true, s.body) // at most maxDataFrame (roundTrip)
}

// headerBlock collects what the HPACK encoder writes.
type headerBlock struct{ b []byte }

func (h *headerBlock) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// readLoop reads frames until the connection fails.
func (c *h2Conn) readLoop(f *http2.Framer) {
	for {
		fr, err := f.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// One answer was malformed; the connection is fine.
				c.finish(se.StreamID, fmt.Errorf("apns: malformed answer: %w", se), true)
				continue
			}
			c.fail(fmt.Errorf("apns: connection to %s lost: %w", c.authority, err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if err := c.handle(fr); err != nil {
			c.fail(fmt.Errorf("apns: protocol error from %s: %w", c.authority, err))
			return
		}
	}
}

func (c *h2Conn) handle(fr http2.Frame) error {
	switch fr := fr.(type) {
	case *http2.MetaHeadersFrame:
		c.headers(fr)
	case *http2.DataFrame:
		c.data(fr)
	case *http2.SettingsFrame:
		return c.settings(fr)
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(fr)
	case *http2.PingFrame:
		c.ping(fr)
	case *http2.RSTStreamFrame:
		var err error = errRefusedStream
		if fr.ErrCode != http2.ErrCodeRefusedStream {
			err = fmt.Errorf("apns: stream reset by APNs: %v", fr.ErrCode)
		}
		c.finish(fr.StreamID, err, false)
	case *http2.GoAwayFrame:
		c.goAway(fr)
	case *http2.PushPromiseFrame:
		return errors.New("PUSH_PROMISE, which this client disabled")
	}
	return nil
}

// stream returns the open stream id, nil when it was cancelled.
func (c *h2Conn) stream(id uint32) *h2Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

func (c *h2Conn) headers(fr *http2.MetaHeadersFrame) {
	s := c.stream(fr.StreamID)
	if s == nil {
		return
	}
	if s.status == 0 { // a second block is trailers
		status, err := strconv.Atoi(fr.PseudoValue("status"))
		if err != nil || status < 100 || status > 999 {
			c.finish(fr.StreamID, fmt.Errorf("apns: answer with :status %q", fr.PseudoValue("status")), true)
			return
		}
		if status < 200 {
			if fr.StreamEnded() {
				c.finish(fr.StreamID, fmt.Errorf("apns: stream ended with informational status %d", status), false)
			}
			return // informational; the answer follows
		}
		s.status = status
		for _, hf := range fr.RegularFields() {
			switch hf.Name {
			case "apns-id":
				s.apnsID = hf.Value
			case "apns-unique-id":
				s.uniqueID = hf.Value
			}
		}
	}
	if fr.StreamEnded() {
		c.finish(fr.StreamID, nil, false)
	}
}

func (c *h2Conn) data(fr *http2.DataFrame) {
	if n := fr.Header().Length; n > 0 {
		c.mu.Lock()
		c.recvUnack += n
		if c.recvUnack >= recvWindowRefill {
			give := c.recvUnack
			c.recvUnack = 0
			c.controlLocked(func(f *http2.Framer) error { return f.WriteWindowUpdate(0, give) })
		}
		c.mu.Unlock()
	}
	s := c.stream(fr.StreamID)
	if s == nil {
		return
	}
	if s.status == 0 {
		c.finish(fr.StreamID, errors.New("apns: DATA before the answer's HEADERS"), true)
		return
	}
	if room := maxErrorBody - len(s.respBody); room > 0 {
		d := fr.Data()
		s.respBody = append(s.respBody, d[:min(len(d), room)]...)
	}
	if fr.StreamEnded() {
		c.finish(fr.StreamID, nil, false)
	}
}

// finish answers stream id with its response, or err. reset also resets
// the stream (an answer this client cannot read).
func (c *h2Conn) finish(id uint32, err error, reset bool) {
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		return
	}
	delete(c.streams, id)
	if reset {
		c.controlLocked(func(f *http2.Framer) error { return f.WriteRSTStream(id, http2.ErrCodeProtocol) })
	}
	c.signal() // a stream slot is free
	drained := c.streamEndedLocked()
	c.mu.Unlock()
	if err != nil {
		s.done <- h2Result{err: err}
	} else {
		s.done <- h2Result{status: s.status, apnsID: s.apnsID, uniqueID: s.uniqueID, body: s.respBody}
	}
	if drained {
		c.fail(errConnClosed)
	}
}

// streamEndedLocked runs after a stream ended: when the connection takes
// no new streams and this was its last, it tells Shutdown, or, when nobody
// waits there (after GOAWAY, or with the stream IDs used up), reports that
// the caller must close the connection.
func (c *h2Conn) streamEndedLocked() bool {
	c.noteIdleLocked()
	return c.closing && len(c.streams) == 0 && c.err == nil && c.idle == nil
}

func (c *h2Conn) settings(fr *http2.SettingsFrame) error {
	if fr.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := fr.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			c.initWindow = int64(s.Val)
		case http2.SettingHeaderTableSize:
			c.tableSizes = append(c.tableSizes, s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.controlLocked(func(f *http2.Framer) error { return f.WriteSettingsAck() })
	return nil
}

func (c *h2Conn) windowUpdate(fr *http2.WindowUpdateFrame) error {
	if fr.StreamID != 0 {
		return nil // each stream's body is written whole within its initial window
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendWindow += int64(fr.Increment)
	if c.sendWindow > maxStreamID {
		return errors.New("connection window over 2^31-1")
	}
	c.signal()
	return nil
}

func (c *h2Conn) ping(fr *http2.PingFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fr.IsAck() {
		if ack := c.pings[fr.Data]; ack != nil {
			delete(c.pings, fr.Data)
			close(ack)
		}
		return
	}
	data := fr.Data
	c.controlLocked(func(f *http2.Framer) error { return f.WritePing(true, data) })
}

// goAway fails the streams APNs will not process as not sent, takes no new
// ones, and lets the rest finish.
func (c *h2Conn) goAway(fr *http2.GoAwayFrame) {
	c.mu.Lock()
	c.stopLocked(errNotUsable)
	var lost []*h2Stream
	for id, s := range c.streams {
		if id > fr.LastStreamID {
			lost = append(lost, s)
			delete(c.streams, id)
		}
	}
	drained := c.streamEndedLocked()
	c.mu.Unlock()
	err := &notSentError{fmt.Sprintf("APNs sent GOAWAY (%v, last stream %d)", fr.ErrCode, fr.LastStreamID)}
	for _, s := range lost {
		s.done <- h2Result{err: err}
	}
	if drained {
		c.fail(errConnClosed)
	}
}

// healthLoop PINGs a connection that has been silent for readIdle and
// closes it when no answer comes within pingTimeout.
func (c *h2Conn) healthLoop() {
	t := time.NewTimer(c.cfg.readIdle)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		silent := time.Since(time.Unix(0, c.lastRead.Load()))
		if silent < c.cfg.readIdle {
			t.Reset(c.cfg.readIdle - silent)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.pingTimeout)
		err := c.Ping(ctx)
		cancel()
		if err != nil {
			c.fail(fmt.Errorf("apns: %s silent for %s and no PING answer within %s: %w", c.authority, silent.Round(time.Second), c.cfg.pingTimeout, err))
			return
		}
		t.Reset(c.cfg.readIdle)
	}
}
