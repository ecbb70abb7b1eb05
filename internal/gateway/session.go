package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/wsconn"
)

// Close codes the server uses besides the standard ones (1008 too many bad
// frames, 1009 frame over the hard limit, 1011 sync failed, 1012 draining).
const (
	CloseKicked    wsconn.StatusCode = 4001 // another login took over: do not reconnect
	CloseLoggedOut wsconn.StatusCode = 4002 // the device logged out: do not reconnect
	CloseLagging   wsconn.StatusCode = 4003 // the session fell behind: reconnect now to resync
)

// Kick reasons.
const KickLoggedInElsewhere = "logged_in_elsewhere"

// kickPayload is the bus payload of a single-login kick: sessions older
// than Session end.
type kickPayload struct {
	Reason   string `json:"reason"`
	DeviceID string `json:"device_id"`
	Session  uint64 `json:"session"`
}

// outFrame is a frame to write; a non-zero closeCode closes the
// connection once the frame is written.
type outFrame struct {
	typ         string
	data        []byte
	closeCode   wsconn.StatusCode
	closeReason string
}

// job is a decoded request waiting for the worker.
type job struct {
	req  Request
	data any
}

// session is one WebSocket. An idle session is a few hundred bytes of
// state and its socket, waiting in the gateway's wsconn.Waiter: no
// goroutine. A burst of client frames is read by a goroutine that exits
// when the burst is read, the worker of requests and the writer of bus
// messages start when there is something to do and exit when done, the
// gateway's single heartbeat goroutine pings it, and frames are written
// by whichever goroutine has one to send (wsconn.Conn serialises writes).
// Hundreds of thousands of sessions mostly sit idle, so every goroutine,
// buffer and timer held while idle is multiplied by that.
type session struct {
	g                        *Gateway
	conn                     *wsconn.Conn
	sub                      *bus.Subscription
	sdkAppID                 int64
	userID, deviceID, policy string
	state                    string // at connect
	id                       string
	ip                       string // counted in g.perIP until the session ends
	ctx                      context.Context
	cancel                   context.CancelFunc

	born     time.Time
	lastSeen atomic.Int64 // since born, ns
	pinging  atomic.Bool
	live     atomic.Bool // sync_done was written
	beatSlot int         // the heartbeat's slot (under g.mu)

	limiter  bucket // reader only
	bad      window // reader only
	flooding bool   // reader only

	readable   func() // readBurst, made once: the connection's wait keeps it
	sawMessage bool   // the burst being read held a message (reader only)

	mu         sync.Mutex
	queue      []job // requests waiting for the worker
	working    bool
	events     []bus.Message // bus messages waiting for the writer
	writing    bool
	lagging    bool          // events overflowed bus.SessionBuffer
	drainAfter time.Duration // a pending reconnect hint, when draining
	draining   bool
	drainTimer *time.Timer
	ended      bool             // no goroutine may start any more
	reason     string           // why the session ended; the first one wins
	syncSeq    map[string]int64 // the writer's (the connecting handler's before live)
	wg         sync.WaitGroup   // worker, writer, ping and drain timer
}

func (s *session) touch() { s.lastSeen.Store(int64(time.Since(s.born))) }

func (s *session) idle() time.Duration {
	return time.Since(s.born) - time.Duration(s.lastSeen.Load())
}

// logger is built when something is logged, not held by every session:
// With copies the attributes into a handler per call.
func (s *session) logger() *slog.Logger {
	return s.g.log.With("sdkappid", s.sdkAppID, "user", s.userID, "device_id", s.deviceID, "session_id", s.id)
}

// debug logs at debug level without building the session's logger when
// that level is off (every connect and disconnect would).
func (s *session) debug(msg string, args ...any) {
	if s.g.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logger().Debug(msg, args...)
	}
}

// goLocked starts f in a goroutine the session's end waits for, unless the
// session has ended. s.mu must be held.
func (s *session) goLocked(f func()) bool {
	if s.ended {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// end stops the session for reason (the first reason given wins): nothing
// new starts, and closing the connection ends the reader, which cleans up.
// After a close frame the socket stays open for the client's answer, which
// ends the reader too (or the close handshake's timeout does).
func (s *session) end(reason string) {
	s.mu.Lock()
	if s.reason == "" {
		s.reason = reason
	}
	s.ended = true
	s.mu.Unlock()
	s.cancel()
	if !s.conn.Closing() {
		_ = s.conn.CloseNow()
	}
}

func (s *session) drain(after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainAfter, s.draining = after, true
	s.startWriterLocked()
}

// start subscribes, applies the login policy, writes hello, the sync and
// sync_done (at most Config.MaxStarting sessions at once), then leaves
// the session waiting for its client and returns. Its goroutine, with the
// stack that the store calls grew, is gone while the session idles.
func (s *session) start() {
	g := s.g
	// Subscribed even while waiting for a slot, so that closeWith and
	// the session's end always have a subscription to leave.
	s.sub = g.hub.SubscribeFunc(s.sdkAppID, s.userID, s.deviceID, s.state, s.offer)
	reason := "closed"
	if s.takeStartSlot() {
		if s.policy == LoginSingle {
			s.kickOthers()
		}
		s.debug("session started", "state", s.state, "policy", s.policy)
		reason = s.sync()
		<-g.starting
	}
	if reason != "" {
		s.end(reason)
	} else {
		s.mu.Lock()
		s.live.Store(true)
		s.startWriterLocked()
		s.mu.Unlock()
	}
	s.readable = s.readBurst
	s.conn.AwaitFunc(g.waiter, s.readable)
}

// takeStartSlot waits for one of the Config.MaxStarting slots; false: the
// session ended first. The context's Done channel is only asked for when
// the slot is not free at once: it would be held for the session's life.
func (s *session) takeStartSlot() bool {
	select {
	case s.g.starting <- struct{}{}:
		return true
	default:
	}
	select {
	case s.g.starting <- struct{}{}:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// requestCtx bounds a call-service request of the session's start. It does
// not derive from s.ctx, which would keep the bookkeeping of its
// cancelled children (a map) for the session's life; a start that
// outlives its session is bounded by RequestTimeout instead.
func (s *session) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.g.cfg.RequestTimeout)
}

// finish cleans up after the connection ended.
func (s *session) finish() {
	g := s.g

	s.mu.Lock()
	if s.reason == "" {
		s.reason = "closed"
	}
	s.ended = true
	if s.drainTimer != nil && s.drainTimer.Stop() {
		s.wg.Done() // its callback will not run
	}
	reason := s.reason
	s.mu.Unlock()
	s.cancel()
	s.conn.Shutdown() // after a close frame, lets the client read it
	s.wg.Wait()
	g.hub.Unsubscribe(s.sub)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), g.cfg.RequestTimeout)
	if err := g.calls.DeviceDisconnected(ctx, s.sdkAppID, s.userID, s.deviceID); err != nil {
		s.logger().Warn("device disconnected", "err", err)
	}
	cancel()
	g.metrics.closes.WithLabelValues(reason).Inc()
	s.debug("session ended", "reason", reason)
	g.endSession(s)
}

// kickOthers applies the single-login policy: every older session of the
// user ends with a kicked frame, and the other devices stop ringing by push.
func (s *session) kickOthers() {
	g := s.g
	others := map[string]bool{}
	for _, o := range g.hub.Sessions(s.sdkAppID, s.userID) {
		if o.ID != s.sub.ID && o.DeviceID != s.deviceID {
			others[o.DeviceID] = true
		}
	}
	payload, _ := json.Marshal(kickPayload{Reason: KickLoggedInElsewhere, DeviceID: s.deviceID, Session: s.sub.ID})
	g.hub.Publish(s.sdkAppID, s.userID, bus.Message{Kind: bus.KindKick, Payload: payload})
	for dev := range others {
		ctx, cancel := s.requestCtx()
		if err := g.calls.UnbindDevice(ctx, s.sdkAppID, s.userID, dev); err != nil {
			s.logger().Warn("unbind kicked device", "kicked_device", dev, "err", err)
		}
		cancel()
	}
}

// out writes a frame from any goroutine and closes the connection after
// it when the frame says so.
func (s *session) out(f outFrame) {
	if f.data != nil {
		if err := s.writeRaw(f.typ, f.data); err != nil {
			s.end("write_error")
			return
		}
	}
	if f.closeCode != 0 {
		s.closeWith(f.closeCode, f.closeReason)
		s.end(f.closeReason)
	}
}

func (s *session) write(typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.writeRaw(typ, b)
}

// writeRaw writes one frame within WriteTimeout (the connection's).
func (s *session) writeRaw(typ string, b []byte) error {
	if err := s.conn.WriteMessage(wsconn.OpText, b); err != nil {
		return err
	}
	s.g.metrics.frames.WithLabelValues(typ).Inc()
	return nil
}

// closeWith leaves the hub at once (a kicked session must not count as
// connected while the close handshake runs), then starts the handshake.
func (s *session) closeWith(code wsconn.StatusCode, reason string) {
	s.g.hub.Unsubscribe(s.sub)
	_ = s.conn.Close(code, reason)
}

// sync writes what the client receives first: hello, the sync events and
// sync_done. It returns why the session must end, or "".
func (s *session) sync() string {
	g := s.g
	err := s.write(FrameHello, helloFrame{
		Type: FrameHello, Protocol: Protocol, SessionID: s.id, SDKAppID: s.sdkAppID, UserID: s.userID,
		DeviceID: s.deviceID, State: s.state, HeartbeatMS: g.cfg.HeartbeatTimeout.Milliseconds(), MaxFrame: g.cfg.MaxFrame,
		ServerTime: g.cfg.Now().UTC(),
	})
	if err != nil {
		return "write_error"
	}
	ctx, cancel := s.requestCtx()
	events, err := g.calls.DeviceConnected(ctx, s.sdkAppID, s.userID, s.deviceID)
	cancel()
	if err != nil {
		if s.ctx.Err() != nil {
			return "closed"
		}
		s.logger().Error("sync on connect", "err", err)
		s.closeWith(wsconn.StatusInternalError, "sync failed; reconnect")
		return "sync_error"
	}
	var syncSeq map[string]int64 // nil, and no allocation, for the usual empty sync
	for i := range events {
		ev := &events[i]
		b, err := json.Marshal(ev)
		if err != nil {
			s.logger().Error("encode sync event", "err", err)
			continue
		}
		if err := s.writeRaw(FrameEvent, eventBytes(b)); err != nil {
			return "write_error"
		}
		if syncSeq == nil {
			syncSeq = make(map[string]int64)
		}
		if ev.Seq > syncSeq[ev.CallID] {
			syncSeq[ev.CallID] = ev.Seq
		}
	}
	if err := s.write(FrameSyncDone, syncDoneFrame{Type: FrameSyncDone, Events: len(events)}); err != nil {
		return "write_error"
	}
	s.mu.Lock()
	s.syncSeq = syncSeq
	s.mu.Unlock()
	return ""
}

// offer is the bus subscription's delivery: it queues m for the writer
// without blocking the publisher. A session more than bus.SessionBuffer
// messages behind is closed so that its client resyncs.
func (s *session) offer(m bus.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.lagging {
		return false
	}
	if len(s.events) >= bus.SessionBuffer {
		s.lagging = true
		s.events = nil
		s.startWriterLocked()
		return false
	}
	s.events = append(s.events, m)
	s.startWriterLocked()
	return true
}

// startWriterLocked starts the writer if there is something to write and
// the sync is over. s.mu must be held.
func (s *session) startWriterLocked() {
	if s.writing || !s.live.Load() || (len(s.events) == 0 && !s.lagging && !s.draining) {
		return
	}
	s.writing = s.goLocked(s.writeEvents)
}

// writeEvents writes queued bus messages and drain hints in order, and
// exits when there are none left (an idle session keeps no writer).
func (s *session) writeEvents() {
	for {
		s.mu.Lock()
		switch {
		case s.ended:
			s.events, s.writing = nil, false
			s.mu.Unlock()
			return
		case s.lagging:
			s.mu.Unlock()
			s.logger().Warn("session fell behind; closing it so that the client resyncs")
			s.closeWith(CloseLagging, "lagging: reconnect to resync")
			s.end("lagging")
			continue
		case s.draining:
			after := s.drainAfter
			s.draining = false
			s.mu.Unlock()
			s.startDrain(after)
			continue
		case len(s.events) == 0:
			s.events, s.writing = nil, false // nil: the backing array goes too
			s.mu.Unlock()
			return
		}
		m := s.events[0]
		s.events[0] = bus.Message{}
		s.events = s.events[1:]
		s.mu.Unlock()
		if reason, end := s.deliver(m); end {
			s.end(reason)
		}
	}
}

// startDrain sends the reconnect hint and closes the session (1012) at
// the hinted time.
func (s *session) startDrain(after time.Duration) {
	if err := s.write(FrameReconnect, reconnectFrame{Type: FrameReconnect, AfterMS: after.Milliseconds(), Reason: "draining"}); err != nil {
		s.end("write_error")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if s.drainTimer != nil && s.drainTimer.Stop() {
		s.wg.Done()
	}
	s.wg.Add(1)
	s.drainTimer = time.AfterFunc(after, func() {
		defer s.wg.Done()
		s.closeWith(wsconn.StatusServiceRestart, "server restarting; reconnect")
		s.end("drain")
	})
}

// beat is the heartbeat check of a live session: past the timeout it
// ends; silent for a third of it, it gets a ping, which the client's
// library answers with a pong that touches the session. Nothing waits
// for the pong. The ping is written at once when the socket takes it
// without waiting, else by a goroutine of its own: a client that stopped
// reading must not hold up the others' checks.
func (s *session) beat() {
	hb := s.g.cfg.HeartbeatTimeout
	idle := s.idle()
	if idle >= hb {
		s.logger().Info("heartbeat timeout", "idle", idle)
		s.end("heartbeat_timeout")
		return
	}
	if idle < hb/3 || !s.pinging.CompareAndSwap(false, true) {
		return
	}
	if s.conn.TryPing() {
		s.pinging.Store(false)
		return
	}
	s.mu.Lock()
	started := s.goLocked(func() {
		defer s.pinging.Store(false)
		_ = s.conn.Ping()
	})
	s.mu.Unlock()
	if !started {
		s.pinging.Store(false)
	}
}

// deliver forwards one bus message; end reports that the session ended.
func (s *session) deliver(m bus.Message) (reason string, end bool) {
	switch m.Kind {
	case bus.KindEvent:
		if s.inSync(m.Payload) {
			return "", false
		}
		if err := s.writeRaw(FrameEvent, eventBytes(m.Payload)); err != nil {
			return "write_error", true
		}
	case bus.KindKick:
		var k kickPayload
		_ = json.Unmarshal(m.Payload, &k)
		if k.Session != 0 && k.Session <= s.sub.ID {
			return "", false // our own kick, or one from an older session
		}
		if k.Reason == "" {
			k.Reason = KickLoggedInElsewhere
		}
		_ = s.write(FrameKicked, kickedFrame{Type: FrameKicked, Reason: k.Reason, DeviceID: k.DeviceID})
		s.closeWith(CloseKicked, "kicked: "+k.Reason)
		return "kicked", true
	case bus.KindReconnect:
		var r struct {
			AfterMS int64 `json:"after_ms"`
		}
		_ = json.Unmarshal(m.Payload, &r)
		if err := s.write(FrameReconnect, reconnectFrame{Type: FrameReconnect, AfterMS: max(r.AfterMS, 0), Reason: "draining"}); err != nil {
			return "write_error", true
		}
	}
	return "", false
}

// inSync tells whether the client already has the event from its sync
// on connect (or, when there was one, whether the event cannot be read).
// A session whose sync held no call, the usual one, decodes no event: it
// sends each as the calls service encoded it, without a second pass. The
// hub is in-process and carries only what calls encoded; a bus between
// processes would have to check what it receives at its own boundary.
//
// An entry of syncSeq goes only when a later event of its call comes, so
// an ended call in the sync keeps the session decoding until it closes: a
// device that reconnects after missing a call. Dropping the entries after
// a while would let a late event the device already has through twice.
func (s *session) inSync(event []byte) bool {
	if len(s.syncSeq) == 0 {
		return false
	}
	var head struct {
		CallID string `json:"call_id"`
		Seq    int64  `json:"seq"`
	}
	if err := json.Unmarshal(event, &head); err != nil {
		s.logger().Error("undecodable call event on the bus", "err", err)
		return true
	}
	last, ok := s.syncSeq[head.CallID]
	if !ok {
		return false
	}
	if head.Seq <= last {
		return true
	}
	delete(s.syncSeq, head.CallID)
	return false
}

// eventBytes wraps a calls.Event's JSON as an event frame.
func eventBytes(ev []byte) []byte {
	b := make([]byte, 0, len(ev)+32)
	b = append(b, `{"type":"event","event":`...)
	b = append(b, ev...)
	return append(b, '}')
}

// readBurst reads client frames until none is left buffered, then waits
// for the next burst; it refuses the bad ones and queues the good ones for
// the worker. The connection's end (the peer closed, a read failed, the
// session was ended) ends the session.
//
// Between bursts no goroutine waits (wsconn.Conn.AwaitFunc): an idle
// session is its state and its socket. Where the gateway has no
// wsconn.Waiter, a goroutine waits on a stack too shallow to grow.
func (s *session) readBurst() {
	for {
		if !s.readFrame() {
			s.finish()
			return
		}
		if s.conn.Buffered() {
			continue
		}
		if !s.sawMessage || !s.conn.AwaitFor(busyLinger) {
			break
		}
		s.sawMessage = false
	}
	s.sawMessage = false
	s.conn.AwaitFunc(s.g.waiter, s.readable)
}

// busyLinger is how long a session that just got a request keeps its
// reading goroutine waiting for the next one before it goes back to the
// Waiter: a call's requests follow each other within a second, and
// passing each through the Waiter cost more CPU per call than the
// goroutine costs memory for that second.
const busyLinger = time.Second

// readFrame reads and handles one client message (or only pings and
// pongs); false ends the session.
func (s *session) readFrame() bool {
	maxFrame := s.g.cfg.MaxFrame
	m, err := s.conn.ReadMessage(maxFrame + 1)
	if err != nil {
		if st := wsconn.CloseStatus(err); st != -1 {
			s.debug("connection closed", "code", st, "err", err)
		}
		return false
	}
	if m.Op == 0 {
		return true // pings and pongs, answered and touched
	}
	s.sawMessage = true
	s.touch()
	buf := m.Data
	if m.Size > int64(maxFrame) {
		s.g.metrics.frames.WithLabelValues("invalid").Inc()
		s.refuse(frameErr(peekID(buf), CodeFrameTooLarge, "frames are limited to %d bytes", maxFrame))
		return true
	}
	if s.flooding {
		return true
	}
	if m.Op != wsconn.OpText {
		s.g.metrics.frames.WithLabelValues("invalid").Inc()
		s.refuse(frameErr(peekID(buf), CodeBadFrame, "send JSON in text frames"))
		return true
	}
	req, err := DecodeFrame(buf)
	if err != nil {
		s.g.metrics.frames.WithLabelValues("invalid").Inc()
		var fe *FrameError
		errors.As(err, &fe)
		s.refuse(fe)
		return true
	}
	s.g.metrics.frames.WithLabelValues(req.Type).Inc()
	if !s.limiter.allow(s.g.cfg.Now()) {
		s.refuse(frameErr(req.ID, CodeRateLimited, "more than %g requests per second; retry the same id later", s.g.cfg.RequestRate))
		return true
	}
	if req.ID == "" { // heartbeat ping
		b, _ := json.Marshal(pongFrame{Type: FramePong, ServerTime: s.g.cfg.Now().UTC()})
		s.out(outFrame{typ: FramePong, data: b})
		return true
	}
	data, err := DecodeData(req.Type, req.Data)
	if err != nil {
		s.refuse(frameErr(req.ID, CodeBadData, "%v", err))
		return true
	}
	if !s.enqueue(job{req: req, data: data}) {
		s.refuse(frameErr(req.ID, CodeRateLimited, "more than %d requests waiting; retry the same id later", s.g.cfg.MaxInFlight))
	}
	return true
}

// refuse answers a bad frame and closes a connection that sends too many.
func (s *session) refuse(fe *FrameError) {
	if s.flooding {
		return
	}
	s.out(errorReply(fe.ID, fe.Code, fe.Message))
	if s.bad.add(s.g.cfg.Now(), s.g.cfg.BadFrameWindow) > s.g.cfg.MaxBadFrames {
		s.flooding = true
		s.logger().Info("too many bad frames; closing")
		s.out(outFrame{typ: "close", data: nil, closeCode: wsconn.StatusPolicyViolation, closeReason: "too many bad frames"})
	}
}

func errorReply(id, code, msg string) outFrame {
	b, _ := json.Marshal(replyFrame{Type: FrameReply, ID: id, Error: &replyError{Code: code, Message: msg}})
	return outFrame{typ: FrameReply, data: b}
}

func okReply(id string, result any) outFrame {
	if result == nil {
		result = struct{}{}
	}
	b, err := json.Marshal(replyFrame{Type: FrameReply, ID: id, OK: true, Result: result})
	if err != nil {
		return errorReply(id, CodeInternal, "cannot encode the result")
	}
	return outFrame{typ: FrameReply, data: b}
}

func (s *session) enqueue(j job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.g.cfg.MaxInFlight {
		return false
	}
	s.queue = append(s.queue, j)
	if !s.working {
		s.working = s.goLocked(s.work)
	}
	return true
}

// work handles queued requests one at a time, in arrival order, and exits
// when the queue is empty (an idle session keeps no worker goroutine).
func (s *session) work() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.ctx.Err() != nil {
			s.queue, s.working = nil, false
			s.mu.Unlock()
			return
		}
		j := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.out(s.handle(j))
	}
}

// handle runs one request. It finishes even if the connection drops (the
// client re-sends the same id after reconnecting and the call service
// answers it from its idempotency record).
func (s *session) handle(j job) outFrame {
	g := s.g
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), g.cfg.RequestTimeout)
	defer cancel()
	a := calls.Actor{SDKAppID: s.sdkAppID, UserID: s.userID, DeviceID: s.deviceID, RequestID: j.req.ID}
	var (
		call *calls.Call
		err  error
	)
	switch d := j.data.(type) {
	case *calls.InviteRequest:
		call, err = g.calls.Invite(ctx, a, *d)
	case *RejectData:
		call, err = g.calls.Reject(ctx, a, d.CallID, d.Reason)
	case *InviteMoreData:
		call, err = g.calls.InviteMore(ctx, a, d.CallID, d.Invitees)
	case *CallRef:
		switch j.req.Type {
		case TypeAccept:
			call, err = g.calls.Accept(ctx, a, d.CallID)
		case TypeCancel:
			call, err = g.calls.Cancel(ctx, a, d.CallID)
		case TypeHangup:
			call, err = g.calls.Hangup(ctx, a, d.CallID)
		case TypeGetCall:
			call, err = g.calls.GetForUser(ctx, s.sdkAppID, s.userID, d.CallID)
		}
	case *StateData:
		g.hub.SetState(s.sub, d.State)
		if err := g.calls.DeviceStateChanged(ctx, s.sdkAppID, s.userID, s.deviceID, d.State); err != nil {
			return s.failed(j.req, err)
		}
		return okReply(j.req.ID, StateData{State: d.State})
	case nil:
		switch j.req.Type {
		case TypePing:
			return okReply(j.req.ID, pingResult{ServerTime: g.cfg.Now().UTC()})
		case TypeLogout:
			if err := g.calls.UnbindDevice(ctx, s.sdkAppID, s.userID, s.deviceID); err != nil {
				return s.failed(j.req, err)
			}
			f := okReply(j.req.ID, nil)
			f.closeCode, f.closeReason = CloseLoggedOut, "logged out"
			return f
		}
	}
	if err != nil {
		return s.failed(j.req, err)
	}
	if call == nil {
		s.logger().Error("request answered no call", "type", j.req.Type)
		return errorReply(j.req.ID, CodeInternal, "internal error; it has been logged")
	}
	return okReply(j.req.ID, callResult{Call: call})
}

func (s *session) failed(req Request, err error) outFrame {
	var ce *calls.Error
	switch {
	case errors.As(err, &ce):
		return errorReply(req.ID, ce.Code, ce.Message)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.logger().Warn("request timed out", "type", req.Type, "id", req.ID, "err", err)
		return errorReply(req.ID, CodeUnavailable, "the server could not finish in time; retry with the same id")
	case calls.StoreUnavailable(err):
		s.logger().Warn("request failed: store unavailable", "type", req.Type, "id", req.ID, "err", err)
		return errorReply(req.ID, CodeUnavailable, "the database is unavailable; retry with the same id shortly")
	}
	s.logger().Error("request failed", "type", req.Type, "id", req.ID, "err", err)
	return errorReply(req.ID, CodeInternal, "internal error; it has been logged")
}
