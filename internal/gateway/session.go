package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
)

// Close codes the server uses besides the standard ones (1008 too many bad
// frames, 1009 frame over the hard limit, 1011 sync failed, 1012 draining).
const (
	CloseKicked    websocket.StatusCode = 4001 // another login took over: do not reconnect
	CloseLoggedOut websocket.StatusCode = 4002 // the device logged out: do not reconnect
	CloseLagging   websocket.StatusCode = 4003 // the session fell behind: reconnect now to resync
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

type control struct {
	drainAfter time.Duration
}

// outFrame is a frame for the writer; a non-zero closeCode closes the
// connection once the frame is written.
type outFrame struct {
	typ         string
	data        []byte
	closeCode   websocket.StatusCode
	closeReason string
}

// job is a decoded request waiting for the worker.
type job struct {
	req  Request
	data any
}

type session struct {
	g                        *Gateway
	conn                     *websocket.Conn
	sub                      *bus.Subscription
	log                      *slog.Logger
	sdkAppID                 int64
	userID, deviceID, policy string
	state                    string // at connect
	id                       string
	ctx                      context.Context
	cancel                   context.CancelFunc

	born     time.Time
	lastSeen atomic.Int64 // since born, ns
	pinging  atomic.Bool

	limiter  *bucket // reader only
	bad      window  // reader only
	flooding bool    // reader only
	out      chan outFrame
	control  chan control
	syncSeq  map[string]int64 // writer only: last seq per call sent during sync

	mu      sync.Mutex
	queue   []job
	working bool
	wg      sync.WaitGroup // reader, worker, ping
}

func (s *session) touch() { s.lastSeen.Store(int64(time.Since(s.born))) }

func (s *session) idle() time.Duration {
	return time.Since(s.born) - time.Duration(s.lastSeen.Load())
}

func (s *session) drain(after time.Duration) {
	select {
	case s.control <- control{drainAfter: after}:
	default:
	}
}

// run serves the session until it ends, then cleans up.
func (s *session) run() {
	g := s.g
	s.log = g.log.With("sdkappid", s.sdkAppID, "user", s.userID, "device_id", s.deviceID, "session_id", s.id)
	s.sub = g.hub.Subscribe(s.sdkAppID, s.userID, s.deviceID, s.state)
	if s.policy == LoginSingle {
		s.kickOthers()
	}
	s.log.Debug("session started", "state", s.state, "policy", s.policy)
	s.wg.Add(1)
	go s.readLoop()
	reason := s.writeLoop()

	s.cancel()
	_ = s.conn.CloseNow()
	s.wg.Wait()
	g.hub.Unsubscribe(s.sub)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), g.cfg.RequestTimeout)
	if err := g.calls.DeviceDisconnected(ctx, s.sdkAppID, s.userID, s.deviceID); err != nil {
		s.log.Warn("device disconnected", "err", err)
	}
	cancel()
	g.metrics.closes.WithLabelValues(reason).Inc()
	s.log.Debug("session ended", "reason", reason)
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
		ctx, cancel := context.WithTimeout(s.ctx, g.cfg.RequestTimeout)
		if err := g.calls.UnbindDevice(ctx, s.sdkAppID, s.userID, dev); err != nil {
			s.log.Warn("unbind kicked device", "kicked_device", dev, "err", err)
		}
		cancel()
	}
}

// send queues a frame for the writer.
func (s *session) send(f outFrame) {
	select {
	case s.out <- f:
	case <-s.ctx.Done():
	}
}

func (s *session) write(typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.writeRaw(typ, b)
}

func (s *session) writeRaw(typ string, b []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.g.cfg.WriteTimeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	s.g.metrics.frames.WithLabelValues(typ).Inc()
	return nil
}

// closeWith leaves the hub at once (a kicked session must not count as
// connected while the close handshake runs), then closes the connection.
func (s *session) closeWith(code websocket.StatusCode, reason string) {
	s.g.hub.Unsubscribe(s.sub)
	_ = s.conn.Close(code, reason)
}

// writeLoop owns the order of what the client receives: hello, the sync
// events, sync_done, then live events, replies and control frames. It
// returns why the session ended.
func (s *session) writeLoop() string {
	g := s.g
	hb := g.cfg.HeartbeatTimeout
	err := s.write(FrameHello, helloFrame{
		Type: FrameHello, Protocol: Protocol, SessionID: s.id, SDKAppID: s.sdkAppID, UserID: s.userID,
		DeviceID: s.deviceID, State: s.state, HeartbeatMS: hb.Milliseconds(), MaxFrame: g.cfg.MaxFrame,
		ServerTime: g.cfg.Now().UTC(),
	})
	if err != nil {
		return "write_error"
	}
	ctx, cancel := context.WithTimeout(s.ctx, g.cfg.RequestTimeout)
	events, err := g.calls.DeviceConnected(ctx, s.sdkAppID, s.userID, s.deviceID)
	cancel()
	if err != nil {
		if s.ctx.Err() != nil {
			return "closed"
		}
		s.log.Error("sync on connect", "err", err)
		s.closeWith(websocket.StatusInternalError, "sync failed; reconnect")
		return "sync_error"
	}
	s.syncSeq = make(map[string]int64, len(events))
	for i := range events {
		ev := &events[i]
		b, err := json.Marshal(ev)
		if err != nil {
			s.log.Error("encode sync event", "err", err)
			continue
		}
		if err := s.writeRaw(FrameEvent, eventBytes(b)); err != nil {
			return "write_error"
		}
		if ev.Seq > s.syncSeq[ev.CallID] {
			s.syncSeq[ev.CallID] = ev.Seq
		}
	}
	if err := s.write(FrameSyncDone, syncDoneFrame{Type: FrameSyncDone, Events: len(events)}); err != nil {
		return "write_error"
	}

	ticker := time.NewTicker(hb / 3)
	defer ticker.Stop()
	var drainTimer <-chan time.Time
	for {
		select {
		case <-s.ctx.Done():
			return "closed"
		case m := <-s.sub.C():
			if reason, end := s.deliver(m); end {
				return reason
			}
		case <-s.sub.Dropped():
			s.log.Warn("session fell behind; closing it so that the client resyncs")
			s.closeWith(CloseLagging, "lagging: reconnect to resync")
			return "lagging"
		case f := <-s.out:
			if f.data != nil {
				if err := s.writeRaw(f.typ, f.data); err != nil {
					return "write_error"
				}
			}
			if f.closeCode != 0 {
				s.closeWith(f.closeCode, f.closeReason)
				return f.closeReason
			}
		case c := <-s.control:
			if err := s.write(FrameReconnect, reconnectFrame{Type: FrameReconnect, AfterMS: c.drainAfter.Milliseconds(), Reason: "draining"}); err != nil {
				return "write_error"
			}
			t := time.NewTimer(c.drainAfter)
			defer t.Stop()
			drainTimer = t.C
		case <-drainTimer:
			s.closeWith(websocket.StatusServiceRestart, "server restarting; reconnect")
			return "drain"
		case <-ticker.C:
			idle := s.idle()
			if idle >= hb {
				s.log.Info("heartbeat timeout", "idle", idle)
				return "heartbeat_timeout"
			}
			if idle >= hb/3 && s.pinging.CompareAndSwap(false, true) {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					defer s.pinging.Store(false)
					ctx, cancel := context.WithTimeout(s.ctx, hb/3)
					_ = s.conn.Ping(ctx)
					cancel()
				}()
			}
		}
	}
}

// deliver forwards one bus message; end reports that the session ended.
func (s *session) deliver(m bus.Message) (reason string, end bool) {
	switch m.Kind {
	case bus.KindEvent:
		var head struct {
			CallID string `json:"call_id"`
			Seq    int64  `json:"seq"`
		}
		if err := json.Unmarshal(m.Payload, &head); err != nil {
			s.log.Error("undecodable call event on the bus", "err", err)
			return "", false
		}
		if last, ok := s.syncSeq[head.CallID]; ok {
			if head.Seq <= last {
				return "", false // already in the sync
			}
			delete(s.syncSeq, head.CallID)
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

// eventBytes wraps a calls.Event's JSON as an event frame.
func eventBytes(ev []byte) []byte {
	b := make([]byte, 0, len(ev)+32)
	b = append(b, `{"type":"event","event":`...)
	b = append(b, ev...)
	return append(b, '}')
}

// readLoop reads client frames, refuses the bad ones and queues the good
// ones for the worker. Its end (the peer closed, a read failed, the
// session was cancelled) ends the session.
func (s *session) readLoop() {
	defer s.wg.Done()
	defer s.cancel()
	maxFrame := s.g.cfg.MaxFrame
	for {
		typ, rd, err := s.conn.Reader(s.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				s.log.Debug("client closed", "code", st)
			}
			return
		}
		s.touch()
		buf, err := io.ReadAll(io.LimitReader(rd, int64(maxFrame)+1))
		if err != nil {
			return
		}
		if len(buf) > maxFrame {
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return // over the hard limit: the connection is closed (1009)
			}
			s.g.metrics.frames.WithLabelValues("invalid").Inc()
			s.refuse(frameErr(peekID(buf), CodeFrameTooLarge, "frames are limited to %d bytes", maxFrame))
			continue
		}
		if s.flooding {
			continue
		}
		if typ != websocket.MessageText {
			s.g.metrics.frames.WithLabelValues("invalid").Inc()
			s.refuse(frameErr(peekID(buf), CodeBadFrame, "send JSON in text frames"))
			continue
		}
		req, err := DecodeFrame(buf)
		if err != nil {
			s.g.metrics.frames.WithLabelValues("invalid").Inc()
			var fe *FrameError
			errors.As(err, &fe)
			s.refuse(fe)
			continue
		}
		s.g.metrics.frames.WithLabelValues(req.Type).Inc()
		if !s.limiter.allow(s.g.cfg.Now()) {
			s.refuse(frameErr(req.ID, CodeRateLimited, "more than %g requests per second; retry the same id later", s.g.cfg.RequestRate))
			continue
		}
		if req.ID == "" { // heartbeat ping
			b, _ := json.Marshal(pongFrame{Type: FramePong, ServerTime: s.g.cfg.Now().UTC()})
			s.send(outFrame{typ: FramePong, data: b})
			continue
		}
		data, err := DecodeData(req.Type, req.Data)
		if err != nil {
			s.refuse(frameErr(req.ID, CodeBadData, "%v", err))
			continue
		}
		if !s.enqueue(job{req: req, data: data}) {
			s.refuse(frameErr(req.ID, CodeRateLimited, "more than %d requests waiting; retry the same id later", s.g.cfg.MaxInFlight))
		}
	}
}

// refuse answers a bad frame and closes a connection that sends too many.
func (s *session) refuse(fe *FrameError) {
	if s.flooding {
		return
	}
	s.send(errorReply(fe.ID, fe.Code, fe.Message))
	if s.bad.add(s.g.cfg.Now(), s.g.cfg.BadFrameWindow) > s.g.cfg.MaxBadFrames {
		s.flooding = true
		s.log.Info("too many bad frames; closing")
		s.send(outFrame{typ: "close", data: nil, closeCode: websocket.StatusPolicyViolation, closeReason: "too many bad frames"})
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
		s.working = true
		s.wg.Add(1)
		go s.work()
	}
	return true
}

// work handles queued requests one at a time, in arrival order, and exits
// when the queue is empty (an idle session keeps no worker goroutine).
func (s *session) work() {
	defer s.wg.Done()
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
		s.send(s.handle(j))
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
		s.log.Error("request answered no call", "type", j.req.Type)
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
		s.log.Warn("request timed out", "type", req.Type, "id", req.ID, "err", err)
		return errorReply(req.ID, CodeUnavailable, "the server could not finish in time; retry with the same id")
	case calls.StoreUnavailable(err):
		s.log.Warn("request failed: store unavailable", "type", req.Type, "id", req.ID, "err", err)
		return errorReply(req.ID, CodeUnavailable, "the database is unavailable; retry with the same id shortly")
	}
	s.log.Error("request failed", "type", req.Type, "id", req.ID, "err", err)
	return errorReply(req.ID, CodeInternal, "internal error; it has been logged")
}
