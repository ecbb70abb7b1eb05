package apns

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawServer is the server side of one HTTP/2 connection, played frame by
// frame by a test, so that it can send what a real server seldom does
// (GOAWAY between streams, REFUSED_STREAM, no PING answer) at the moment
// the test chooses.
type rawServer struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf headerBlock
	// pings: next returns the client's PINGs instead of answering them.
	pings bool
}

// newRawPair connects an h2Conn to a rawServer over loopback TCP. The
// server has read the preface and the client's SETTINGS and sent its own
// SETTINGS (settings).
func newRawPair(t *testing.T, cfg h2Config, settings ...http2.Setting) (*h2Conn, *rawServer) {
	t.Helper()
	return newRawPairWrapped(t, nil, cfg, settings...)
}

// newRawPairWrapped is newRawPair with the client's side of the socket
// wrapped by wrap.
func newRawPairWrapped(t *testing.T, wrap func(net.Conn) net.Conn, cfg h2Config, settings ...http2.Setting) (*h2Conn, *rawServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
		close(accepted)
	}()
	cn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sn := <-accepted
	_ = ln.Close()
	if sn == nil {
		t.Fatal("no connection accepted")
	}
	if cfg.readIdle == 0 {
		cfg.readIdle = time.Hour
	}
	if cfg.pingTimeout == 0 {
		cfg.pingTimeout = time.Hour
	}
	if cfg.writeTimeout == 0 {
		cfg.writeTimeout = 10 * time.Second
	}
	if wrap != nil {
		cn = wrap(cn)
	}
	c, err := newH2Conn(cn, "apns.test:443", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = sn.Close() })

	s := &rawServer{t: t, nc: sn}
	s.henc = hpack.NewEncoder(&s.hbuf)
	_ = sn.SetDeadline(time.Now().Add(10 * time.Second)) // a broken test fails instead of hanging
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(sn, preface); err != nil || string(preface) != http2.ClientPreface {
		t.Fatalf("preface %q: %v", preface, err)
	}
	s.fr = http2.NewFramer(sn, sn)
	s.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if f, ok := s.next().(*http2.SettingsFrame); !ok || f.IsAck() {
		t.Fatalf("first frame %v, want the client's SETTINGS", f)
	}
	if err := s.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c, s
}

// next returns the client's next frame, skipping SETTINGS acks and
// connection WINDOW_UPDATEs.
func (s *rawServer) next() http2.Frame {
	s.t.Helper()
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			s.t.Fatalf("server read: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			continue
		}
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
			continue
		}
		if p, ok := f.(*http2.PingFrame); ok && !s.pings {
			if !p.IsAck() {
				_ = s.fr.WritePing(true, p.Data)
			}
			continue
		}
		return f
	}
}

// request reads one request (HEADERS, then DATA unless it has no body).
func (s *rawServer) request() (*http2.MetaHeadersFrame, []byte) {
	s.t.Helper()
	h, ok := s.next().(*http2.MetaHeadersFrame)
	if !ok {
		s.t.Fatalf("want HEADERS, got %T", h)
	}
	if h.StreamEnded() {
		return h, nil
	}
	var body []byte
	for {
		d, ok := s.next().(*http2.DataFrame)
		if !ok || d.StreamID != h.StreamID {
			s.t.Fatalf("want DATA of stream %d, got %v", h.StreamID, d)
		}
		body = append(body, d.Data()...)
		if d.StreamEnded() {
			return h, body
		}
	}
}

// answer writes a response: HEADERS with status and fields, and body in
// DATA frames of at most 10 bytes (to check they are joined).
func (s *rawServer) answer(id uint32, status string, body string, fields ...hpack.HeaderField) {
	s.t.Helper()
	s.hbuf.b = s.hbuf.b[:0]
	_ = s.henc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	for _, f := range fields {
		_ = s.henc.WriteField(f)
	}
	if err := s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.hbuf.b, EndHeaders: true, EndStream: body == ""}); err != nil {
		s.t.Fatal(err)
	}
	for body != "" {
		chunk := body[:min(len(body), 10)]
		body = body[len(chunk):]
		if err := s.fr.WriteData(id, body == "", []byte(chunk)); err != nil {
			s.t.Fatal(err)
		}
	}
}

type tripResult struct {
	r   h2Result
	err error
}

// goTrip starts a roundTrip; its result arrives on the returned channel.
func goTrip(ctx context.Context, c *h2Conn, body string, fields ...hpack.HeaderField) <-chan tripResult {
	out := make(chan tripResult, 1)
	go func() {
		r, err := c.roundTrip(ctx, "/3/device/aabb", fields, []byte(body))
		out <- tripResult{r, err}
	}()
	return out
}

func waitTrip(t *testing.T, ch <-chan tripResult) tripResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("roundTrip did not return")
		return tripResult{}
	}
}

// waitFor polls cond under the connection's lock until it holds.
func waitFor(t *testing.T, c *h2Conn, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestH2RequestAndAnswers(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	topic := hpack.HeaderField{Name: "apns-topic", Value: "com.example.app"}
	ok := goTrip(t.Context(), c, `{"aps":{}}`, topic)
	h, body := s.request()
	if h.PseudoValue("method") != "POST" || h.PseudoValue("scheme") != "https" ||
		h.PseudoValue("authority") != "apns.test:443" || h.PseudoValue("path") != "/3/device/aabb" {
		t.Errorf("pseudo-headers %v", h.Fields)
	}
	got := map[string]string{}
	for _, f := range h.RegularFields() {
		got[f.Name] = f.Value
	}
	if got["apns-topic"] != "com.example.app" || got["content-length"] != "10" || string(body) != `{"aps":{}}` {
		t.Errorf("fields %v body %q", got, body)
	}
	s.answer(h.StreamID, "200", "", hpack.HeaderField{Name: "apns-id", Value: "id-1"}, hpack.HeaderField{Name: "apns-unique-id", Value: "u-1"})
	if r := waitTrip(t, ok); r.err != nil || r.r.status != 200 || r.r.apnsID != "id-1" || r.r.uniqueID != "u-1" {
		t.Errorf("answer %+v", r)
	}

	bad := goTrip(t.Context(), c, `{}`, topic)
	h, _ = s.request()
	s.answer(h.StreamID, "400", `{"reason":"BadDeviceToken"}`)
	r := waitTrip(t, bad)
	if r.err != nil || r.r.status != 400 || string(r.r.body) != `{"reason":"BadDeviceToken"}` {
		t.Errorf("error answer %+v, body %q", r, r.r.body)
	}
}

func TestH2GoAway(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	var trips []<-chan tripResult
	for range 3 {
		trips = append(trips, goTrip(t.Context(), c, "{}"))
	}
	var ids []uint32
	for range 3 {
		h, _ := s.request()
		ids = append(ids, h.StreamID)
	}
	// APNs will process streams up to the second one only.
	if err := s.fr.WriteGoAway(ids[1], http2.ErrCodeNo, nil); err != nil {
		t.Fatal(err)
	}
	// A request after the GOAWAY is refused as not sent.
	waitFor(t, c, "the GOAWAY read", func() bool { return c.closing })
	if r := waitTrip(t, goTrip(t.Context(), c, "{}")); !notSent(r.err) {
		t.Errorf("request after GOAWAY: %v, want not sent", r.err)
	}
	s.answer(ids[0], "200", "")
	s.answer(ids[1], "200", "")
	got := map[uint32]tripResult{}
	for _, ch := range trips {
		r := waitTrip(t, ch)
		got[uint32(len(got))] = r
	}
	var answered, refused int
	for _, r := range got {
		switch {
		case r.err == nil && r.r.status == 200:
			answered++
		case notSent(r.err):
			refused++
		default:
			t.Errorf("unexpected result %+v", r)
		}
	}
	if answered != 2 || refused != 1 {
		t.Errorf("answered %d, not sent %d; want 2 and 1", answered, refused)
	}
	// With its last stream answered, the connection closes.
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Error("the connection is still open after its last stream")
			}
			break
		}
		if _, ok := f.(*http2.MetaHeadersFrame); ok {
			t.Errorf("a request after GOAWAY: %v", f)
		}
	}
	if st := c.State(); !st.Closed {
		t.Errorf("state %+v, want closed", st)
	}
}

func TestH2ResetStream(t *testing.T) {
	for _, tt := range []struct {
		code    http2.ErrCode
		notSent bool
	}{
		{http2.ErrCodeRefusedStream, true}, // APNs did not process it
		{http2.ErrCodeInternal, false},     // it may have
		{http2.ErrCodeCancel, false},
	} {
		t.Run(tt.code.String(), func(t *testing.T) {
			c, s := newRawPair(t, h2Config{})
			ch := goTrip(t.Context(), c, "{}")
			h, _ := s.request()
			if err := s.fr.WriteRSTStream(h.StreamID, tt.code); err != nil {
				t.Fatal(err)
			}
			r := waitTrip(t, ch)
			if r.err == nil || notSent(r.err) != tt.notSent {
				t.Errorf("err %v, notSent %v; want an error with notSent %v", r.err, notSent(r.err), tt.notSent)
			}
			// The connection goes on.
			ok := goTrip(t.Context(), c, "{}")
			h, _ = s.request()
			s.answer(h.StreamID, "200", "")
			if r := waitTrip(t, ok); r.err != nil {
				t.Errorf("next request: %v", r.err)
			}
		})
	}
}

func TestH2ObeysStreamLimit(t *testing.T) {
	c, s := newRawPair(t, h2Config{}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	waitFor(t, c, "the server's SETTINGS", func() bool { return c.maxStreams == 1 })
	first := goTrip(t.Context(), c, "{}")
	h1, _ := s.request()
	second := goTrip(t.Context(), c, "{}")
	waitFor(t, c, "the second request queued", func() bool { return len(c.pending) == 1 && len(c.streams) == 1 })
	s.answer(h1.StreamID, "200", "")
	h2, _ := s.request() // written only once the first stream ended
	if h2.StreamID != h1.StreamID+2 {
		t.Errorf("second stream %d after %d", h2.StreamID, h1.StreamID)
	}
	s.answer(h2.StreamID, "200", "")
	for _, ch := range []<-chan tripResult{first, second} {
		if r := waitTrip(t, ch); r.err != nil {
			t.Error(r.err)
		}
	}
}

func TestH2WaitsForConnectionWindow(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	body := strings.Repeat("x", 5000)
	const fit = 65535 / 5000 // the connection's initial window holds 13 bodies
	var trips []<-chan tripResult
	for range fit + 1 {
		trips = append(trips, goTrip(t.Context(), c, body))
	}
	var ids []uint32
	for range fit {
		h, b := s.request()
		if len(b) != len(body) {
			t.Fatalf("body of %d bytes", len(b))
		}
		ids = append(ids, h.StreamID)
	}
	waitFor(t, c, "the last request waiting for the window", func() bool { return len(c.pending) == 1 })
	if err := s.fr.WriteWindowUpdate(0, 5000); err != nil {
		t.Fatal(err)
	}
	h, b := s.request()
	if len(b) != len(body) {
		t.Fatalf("body of %d bytes", len(b))
	}
	for _, id := range append(ids, h.StreamID) {
		s.answer(id, "200", "")
	}
	for _, ch := range trips {
		if r := waitTrip(t, ch); r.err != nil {
			t.Error(r.err)
		}
	}
}

func TestH2CancelResetsStream(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	ctx, cancel := context.WithCancel(t.Context())
	ch := goTrip(ctx, c, "{}")
	h, _ := s.request()
	cancel()
	if r := waitTrip(t, ch); !errors.Is(r.err, context.Canceled) || notSent(r.err) {
		t.Errorf("err %v, want context.Canceled (and not 'not sent': it was written)", r.err)
	}
	rst, ok := s.next().(*http2.RSTStreamFrame)
	if !ok || rst.StreamID != h.StreamID || rst.ErrCode != http2.ErrCodeCancel {
		t.Fatalf("want RST_STREAM CANCEL of stream %d, got %v", h.StreamID, rst)
	}
	// A late answer to the cancelled stream is ignored.
	s.answer(h.StreamID, "200", "late")
	ok2 := goTrip(t.Context(), c, "{}")
	h, _ = s.request()
	s.answer(h.StreamID, "200", "")
	if r := waitTrip(t, ok2); r.err != nil {
		t.Error(r.err)
	}
}

func TestH2SilentConnectionIsClosed(t *testing.T) {
	c, s := newRawPair(t, h2Config{readIdle: 20 * time.Millisecond, pingTimeout: 50 * time.Millisecond})
	s.pings = true
	if _, ok := s.next().(*http2.PingFrame); !ok {
		t.Fatal("no PING on a silent connection")
	}
	// No answer: the client gives up on the connection.
	waitFor(t, c, "the connection closed", func() bool { return c.err != nil })
	if r := waitTrip(t, goTrip(t.Context(), c, "{}")); !notSent(r.err) {
		t.Errorf("request on a closed connection: %v, want not sent", r.err)
	}
}

func TestH2AnswersServerPingAndSettings(t *testing.T) {
	_, s := newRawPair(t, h2Config{})
	s.pings = true
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := s.fr.WritePing(false, data); err != nil {
		t.Fatal(err)
	}
	if p, ok := s.next().(*http2.PingFrame); !ok || !p.IsAck() || p.Data != data {
		t.Fatalf("want the PING's ack, got %v", p)
	}
}

func TestH2ConnectionLoss(t *testing.T) {
	c, s := newRawPair(t, h2Config{}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	waitFor(t, c, "the server's SETTINGS", func() bool { return c.maxStreams == 1 })
	written := goTrip(t.Context(), c, "{}")
	s.request()
	queued := goTrip(t.Context(), c, "{}")
	waitFor(t, c, "the second request queued", func() bool { return len(c.pending) == 1 })
	_ = s.nc.Close()
	if r := waitTrip(t, written); r.err == nil || notSent(r.err) {
		t.Errorf("written request: %v; want an error that may not be retried", r.err)
	}
	if r := waitTrip(t, queued); !notSent(r.err) {
		t.Errorf("queued request: %v; want not sent", r.err)
	}
}

func TestH2ShutdownWaitsForStreams(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	ch := goTrip(t.Context(), c, "{}")
	h, _ := s.request()
	done := make(chan error, 1)
	go func() { done <- c.Shutdown(t.Context()) }()
	waitFor(t, c, "Shutdown waiting", func() bool { return c.idle != nil })
	if r := waitTrip(t, goTrip(t.Context(), c, "{}")); !notSent(r.err) {
		t.Errorf("request during Shutdown: %v, want not sent", r.err)
	}
	s.answer(h.StreamID, "200", "")
	if r := waitTrip(t, ch); r.err != nil {
		t.Errorf("open stream: %v", r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

func TestH2LargeHeaderBlockUsesContinuation(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	big := strings.Repeat("b", 40000)
	ch := goTrip(t.Context(), c, "{}", hpack.HeaderField{Name: "x-big", Value: big, Sensitive: true})
	h, _ := s.request()
	var got string
	for _, f := range h.RegularFields() {
		if f.Name == "x-big" {
			got = f.Value
		}
	}
	if got != big {
		t.Errorf("x-big of %d bytes, want %d", len(got), len(big))
	}
	s.answer(h.StreamID, "200", "")
	if r := waitTrip(t, ch); r.err != nil {
		t.Error(r.err)
	}
}

// gatedConn stalls the client's writes while shut: each Write announces
// itself on entered and waits for a token on pass (or for open).
type gatedConn struct {
	net.Conn
	shut    atomic.Bool
	entered chan struct{}
	pass    chan struct{}
	open    chan struct{}
}

func (g *gatedConn) Write(p []byte) (int, error) {
	if g.shut.Load() {
		select {
		case g.entered <- struct{}{}:
		case <-g.open:
		}
		select {
		case <-g.pass:
		case <-g.open:
		}
	}
	return g.Conn.Write(p)
}

// readSettingsAck reads frames until the client's SETTINGS ack: the
// client has applied the server's SETTINGS by then.
func (s *rawServer) readSettingsAck() {
	s.t.Helper()
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			s.t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			return
		}
	}
}

// A request cancelled after the writer took it, but before it wrote a byte
// of it, is never sent: its caller was told it failed, so it must not
// reach APNs. Its stream ID is skipped and no RST_STREAM names it.
func TestH2CancelledBeforeWrittenIsNotSent(t *testing.T) {
	var g *gatedConn
	c, s := newRawPairWrapped(t, func(nc net.Conn) net.Conn {
		g = &gatedConn{Conn: nc, entered: make(chan struct{}), pass: make(chan struct{}), open: make(chan struct{})}
		return g
	}, h2Config{})
	s.readSettingsAck()
	g.shut.Store(true)
	a := goTrip(t.Context(), c, "{}")
	<-g.entered                       // the writer is stalled flushing a
	big := strings.Repeat("x", 16384) // its DATA frame alone overfills the 16 KiB write buffer
	x := goTrip(t.Context(), c, big)
	waitFor(t, c, "x queued", func() bool { return len(c.pending) == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	b := goTrip(ctx, c, "{}")
	waitFor(t, c, "b queued behind x", func() bool { return len(c.pending) == 2 })
	g.pass <- struct{}{}
	<-g.entered // x's DATA went past the buffer: the writer stalls in x, with b taken
	waitFor(t, c, "b taken", func() bool { return len(c.pending) == 0 && len(c.streams) == 3 })
	cancel()
	if r := waitTrip(t, b); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("b: %v", r.err)
	}
	close(g.open)
	ha, _ := s.request()
	hx, body := s.request()
	if len(body) != len(big) {
		t.Fatalf("x's body %d bytes", len(body))
	}
	next := goTrip(t.Context(), c, "{}")
	f := s.next()
	hn, ok := f.(*http2.MetaHeadersFrame)
	if !ok || hn.StreamID != hx.StreamID+4 {
		t.Fatalf("after x, want the next request's HEADERS on stream %d (b's %d skipped), got %v", hx.StreamID+4, hx.StreamID+2, f)
	}
	for _, id := range []uint32{ha.StreamID, hx.StreamID, hn.StreamID} {
		s.answer(id, "200", "")
	}
	for _, ch := range []<-chan tripResult{a, x, next} {
		if r := waitTrip(t, ch); r.err != nil {
			t.Error(r.err)
		}
	}
}

// Withdrawing the queued request that waits for the window lets the one
// behind it, which fits, go at once.
func TestH2CancelledQueuedRequestWakesWriter(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	for range 4 {
		first := goTrip(t.Context(), c, strings.Repeat("x", 16000))
		h, _ := s.request()
		s.answer(h.StreamID, "200", "")
		waitTrip(t, first)
	} // 1,535 bytes of window left: no WINDOW_UPDATE
	ctx, cancel := context.WithCancel(t.Context())
	a := goTrip(ctx, c, strings.Repeat("a", 2000))
	waitFor(t, c, "a waiting", func() bool { return len(c.pending) == 1 })
	b := goTrip(t.Context(), c, "b")
	waitFor(t, c, "b waiting", func() bool { return len(c.pending) == 2 })
	cancel()
	waitTrip(t, a)
	h, body := s.request()
	if string(body) != "b" {
		t.Fatalf("want b's request, got body %q", body)
	}
	s.answer(h.StreamID, "200", "")
	if r := waitTrip(t, b); r.err != nil {
		t.Error(r.err)
	}
}

// A written request that times out on a connection that has read nothing
// since makes the client PING at once, not after readIdle.
func TestH2TimeoutOnSilentConnectionPings(t *testing.T) {
	c, s := newRawPair(t, h2Config{pingTimeout: 50 * time.Millisecond})
	s.pings = true
	s.readSettingsAck()
	ctx, cancel := context.WithCancel(t.Context())
	ch := goTrip(ctx, c, "{}")
	s.request()
	cancel()
	waitTrip(t, ch)
	if _, ok := s.next().(*http2.RSTStreamFrame); !ok {
		t.Fatal("want RST_STREAM")
	}
	if _, ok := s.next().(*http2.PingFrame); !ok {
		t.Fatal("want a PING after a timeout on a silent connection")
	}
	waitFor(t, c, "the unanswered connection closed", func() bool { return c.err != nil })
}

func TestH2MalformedAnswers(t *testing.T) {
	for name, send := range map[string]func(s *rawServer, id uint32){
		"1xx ending the stream": func(s *rawServer, id uint32) { s.answer(id, "103", "") },
		"DATA before HEADERS":   func(s *rawServer, id uint32) { _ = s.fr.WriteData(id, true, []byte("x")) },
		"no :status":            func(s *rawServer, id uint32) { s.answer(id, "", "") },
	} {
		t.Run(name, func(t *testing.T) {
			c, s := newRawPair(t, h2Config{})
			ch := goTrip(t.Context(), c, "{}")
			h, _ := s.request()
			send(s, h.StreamID)
			if r := waitTrip(t, ch); r.err == nil || notSent(r.err) {
				t.Errorf("got %+v; want an error (not 'not sent')", r)
			}
		})
	}
}

// Two table sizes in one SETTINGS, 0 then 4096: the next block signals
// the 0 first, so a server that emptied its table on it stays in step.
func TestH2HeaderTableSizesInOrder(t *testing.T) {
	c, s := newRawPair(t, h2Config{})
	s.readSettingsAck() // the first SETTINGS' ack, so that the one read below is the second's
	topic := hpack.HeaderField{Name: "apns-topic", Value: "com.example.app"}
	ch := goTrip(t.Context(), c, "{}", topic)
	h, _ := s.request()
	s.answer(h.StreamID, "200", "")
	waitTrip(t, ch)
	if err := s.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 4096}); err != nil {
		t.Fatal(err)
	}
	s.readSettingsAck()
	s.fr.ReadMetaHeaders = nil // read the raw block
	ch = goTrip(t.Context(), c, "{}", topic)
	f, err := s.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	hf, ok := f.(*http2.HeadersFrame)
	if !ok {
		t.Fatalf("want HEADERS, got %v", f)
	}
	if blk := hf.HeaderBlockFragment(); len(blk) == 0 || blk[0] != 0x20 {
		t.Errorf("block starts %x, want a table size update to 0 (20)", blk[:min(len(blk), 4)])
	}
	_ = c.Close()
	waitTrip(t, ch)
}

func TestH2HeaderTableSizeZero(t *testing.T) {
	c, s := newRawPair(t, h2Config{}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	// The server keeps no dynamic table: a block that refers to one, or
	// adds to one without first shrinking it to 0, fails to decode.
	s.fr.ReadMetaHeaders = hpack.NewDecoder(0, nil)
	// The client applies the setting in the write that acknowledges it.
	if f, err := s.fr.ReadFrame(); err != nil {
		t.Fatal(err)
	} else if sf, ok := f.(*http2.SettingsFrame); !ok || !sf.IsAck() {
		t.Fatalf("want the SETTINGS ack, got %v", f)
	}
	for range 3 {
		ch := goTrip(t.Context(), c, "{}", hpack.HeaderField{Name: "apns-topic", Value: "com.example.app"})
		h, _ := s.request()
		s.answer(h.StreamID, "200", "")
		if r := waitTrip(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
}

// FuzzH2ServerFrames plays arbitrary bytes as the server's side of a
// connection while a request is in flight: whatever APNs (or something
// posing as it) sends, the client must neither panic nor leave the request
// waiting once the connection ends.
func FuzzH2ServerFrames(f *testing.F) {
	frames := func(write func(fr *http2.Framer)) []byte {
		var b headerBlock
		write(http2.NewFramer(&b, nil))
		return b.b
	}
	var status200 headerBlock
	_ = hpack.NewEncoder(&status200).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	f.Add(frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: status200.b, EndHeaders: true, EndStream: true})
	}))
	f.Add(frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: status200.b, EndHeaders: true})
		_ = fr.WriteData(1, true, []byte(`{"reason":"BadDeviceToken"}`))
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	}))
	f.Add(frames(func(fr *http2.Framer) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		_ = fr.WriteWindowUpdate(0, 1<<30)
		_ = fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	}))
	f.Fuzz(func(t *testing.T, server []byte) {
		cn, sn := net.Pipe()
		defer sn.Close()
		go func() { _, _ = io.Copy(io.Discard, sn) }() // take whatever the client writes
		go func() {
			_, _ = sn.Write(server)
			_ = sn.Close()
		}()
		c, err := newH2Conn(cn, "apns.test", h2Config{readIdle: time.Hour, pingTimeout: time.Hour, writeTimeout: 5 * time.Second})
		if err != nil {
			return
		}
		defer c.Close()
		done := make(chan struct{})
		go func() {
			_, _ = c.roundTrip(context.Background(), "/3/device/aa", nil, []byte("{}"))
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the request still waits after the connection ended")
		}
	})
}
