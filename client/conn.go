package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Protocol is the WebSocket subprotocol Conn speaks (docs/protocol.md).
const Protocol = "ringd.v1"

// Event types of call events (docs/protocol.md, "Events").
const (
	EventInvited           = "call.invited"
	EventAccepted          = "call.accepted"
	EventRejected          = "call.rejected"
	EventCancelled         = "call.cancelled"
	EventTimeout           = "call.timeout"
	EventLeft              = "call.left"
	EventInviteesAdded     = "call.invitees_added"
	EventEnded             = "call.ended"
	EventAnsweredElsewhere = "call.answered_elsewhere"
	EventRejectedElsewhere = "call.rejected_elsewhere"
	EventState             = "call.state"
)

// Control event types: what happens to the connection itself.
const (
	EventConnected     = "connected"      // a session started (SessionID); sync events follow
	EventSyncDone      = "sync_done"      // every call the device takes part in has been reported
	EventDisconnected  = "disconnected"   // the session ended (Err); Conn reconnects by itself
	EventKicked        = "kicked"         // another login took over (Reason, DeviceID); Conn is finished
	EventReconnectHint = "reconnect_hint" // the server is draining; Conn moves in AfterMS
)

// Errors a Conn ends with (see Conn.Err).
var (
	ErrClosed    = errors.New("ringd: connection closed")
	ErrKicked    = errors.New("ringd: kicked: the user logged in on another device")
	ErrLoggedOut = errors.New("ringd: logged out")
)

// Event is a call event or a control event, in the order ringd sent them.
type Event struct {
	Type       string    `json:"type"`
	CallID     string    `json:"call_id,omitempty"`
	Seq        int64     `json:"seq,omitempty"`
	At         time.Time `json:"at,omitzero"`
	User       string    `json:"user,omitempty"`
	DeviceID   string    `json:"device_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	TimeLeftMS int64     `json:"time_left_ms,omitempty"` // call.invited: how long it still rings for this user
	Call       *Call     `json:"call,omitempty"`         // the call after the change

	SessionID string `json:"session_id,omitempty"` // connected
	AfterMS   int64  `json:"after_ms,omitempty"`   // reconnect_hint
	Err       error  `json:"-"`                    // disconnected: why
}

// ConnectOptions configure Connect.
type ConnectOptions struct {
	BaseURL string // http(s)://host:port of ringd
	UserSig string
	// RefreshUserSig, when set, gives a fresh UserSig before every
	// reconnect (UserSigs expire; a connection may outlive one).
	RefreshUserSig func(ctx context.Context) (string, error)
	DeviceID       string // required: the ID the device registers its APNs tokens with
	State          string // foreground (default) or background
	HTTPClient     *http.Client
	Logger         *slog.Logger
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between reconnect attempts; defaults 250ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// RequestTimeout bounds a request whose context has no deadline,
	// reconnects included; default 15s.
	RequestTimeout time.Duration
	// EventBuffer is the size of the Events channel; default 256. When it
	// is full the oldest event is dropped (see Conn.Events).
	EventBuffer int
}

// Conn is a live connection of one device to ringd's gateway. It
// reconnects by itself until Close, Logout or a kick. Its methods are safe
// for concurrent use.
type Conn struct {
	opts   ConnectOptions
	log    *slog.Logger
	events chan Event
	drops  atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	lastRecv atomic.Int64 // unix ns of the last frame from the server

	mu        sync.Mutex
	ws        *websocket.Conn // nil while disconnected
	hello     helloFrame
	pending   map[string]*pending
	seq       uint64
	sig       string
	state     string
	closed    bool      // Close or Logout called
	hintAt    time.Time // the server asked to reconnect at this time
	err       error     // set when finished
	endErr    error     // why it will finish (kicked, logged out), set early
	userClose bool
}

type pending struct {
	seq   uint64
	frame []byte
	reply chan replyFrame
}

type helloFrame struct {
	Type        string `json:"type"`
	Protocol    string `json:"protocol"`
	SessionID   string `json:"session_id"`
	DeviceID    string `json:"device_id"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
	MaxFrame    int    `json:"max_frame"`
}

type serverFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Event   json.RawMessage `json:"event"`
	Reason  string          `json:"reason"`
	Device  string          `json:"device_id"`
	AfterMS int64           `json:"after_ms"`
}

type replyFrame struct {
	ok     bool
	result json.RawMessage
	err    error
}

// Close codes of the gateway.
const (
	closeKicked    websocket.StatusCode = 4001
	closeLoggedOut websocket.StatusCode = 4002
	closeLagging   websocket.StatusCode = 4003
)

// Connect opens a session and returns once the server said hello; the
// sync events (calls the device takes part in) then arrive on Events. A
// refused connection is an *Error (e.g. 401 usersig_expired).
func Connect(ctx context.Context, opts ConnectOptions) (*Conn, error) {
	if opts.BaseURL == "" || opts.DeviceID == "" || (opts.UserSig == "" && opts.RefreshUserSig == nil) {
		return nil, errors.New("ringd: Connect needs BaseURL, DeviceID and a UserSig")
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 250 * time.Millisecond
	}
	if opts.ReconnectMax < opts.ReconnectMin {
		opts.ReconnectMax = max(30*time.Second, opts.ReconnectMin)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.State == "" {
		opts.State = "foreground"
	}
	c := &Conn{
		opts: opts, log: opts.Logger, events: make(chan Event, opts.EventBuffer), done: make(chan struct{}),
		pending: map[string]*pending{}, sig: opts.UserSig, state: opts.State,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.sig == "" {
		sig, err := opts.RefreshUserSig(ctx)
		if err != nil {
			return nil, fmt.Errorf("ringd: UserSig: %w", err)
		}
		c.sig = sig
	}
	ws, hello, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err.err
	}
	go c.run(ws, hello)
	return c, nil
}

// Events delivers call events and control events in order. It is closed
// when the Conn is finished (Close, Logout, kicked, or a reconnect that
// can never succeed: see Err).
//
// Policy when the application falls behind: the channel holds
// ConnectOptions.EventBuffer events; when it is full, the oldest waiting
// event is dropped (counted by DroppedEvents) so that the connection is
// never blocked and replies keep flowing. A client that dropped events
// should ask GetCall for the calls it cares about.
func (c *Conn) Events() <-chan Event { return c.events }

// DroppedEvents counts events dropped because Events was full.
func (c *Conn) DroppedEvents() uint64 { return c.drops.Load() }

// Done is closed when the Conn is finished.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why a finished Conn ended: ErrClosed, ErrKicked, ErrLoggedOut
// or the *Error of a refused reconnect. It is nil while the Conn runs.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// SessionID is the current (or last) session's ID.
func (c *Conn) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello.SessionID
}

// Close ends the connection for good.
func (c *Conn) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed, c.userClose = true, true
	ws := c.ws
	c.mu.Unlock()
	if !already && ws != nil {
		_ = ws.Close(websocket.StatusNormalClosure, "closed by the client")
	}
	c.cancel()
	<-c.done
	return nil
}

type dialError struct {
	err        error
	permanent  bool
	retryAfter time.Duration
}

// dial opens a session and reads its hello.
func (c *Conn) dial(ctx context.Context) (*websocket.Conn, helloFrame, *dialError) {
	var hello helloFrame
	u, err := url.Parse(strings.TrimRight(c.opts.BaseURL, "/") + "/v1/connect")
	if err != nil {
		return nil, hello, &dialError{err: fmt.Errorf("ringd: BaseURL: %w", err), permanent: true}
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, hello, &dialError{err: fmt.Errorf("ringd: BaseURL scheme %q: want http or https", u.Scheme), permanent: true}
	}
	c.mu.Lock()
	sig, state := c.sig, c.state
	c.mu.Unlock()
	u.RawQuery = url.Values{"device_id": {c.opts.DeviceID}, "state": {state}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:     c.opts.HTTPClient,
		HTTPHeader:     http.Header{"Authorization": {"UserSig " + sig}},
		Subprotocols:   []string{Protocol},
		OnPingReceived: func(context.Context, []byte) bool { c.touch(); return true },
		OnPongReceived: func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		return nil, hello, httpDialError(resp, err)
	}
	ws.SetReadLimit(4 << 20)
	c.touch()
	_, b, err := ws.Read(ctx)
	if err == nil {
		err = json.Unmarshal(b, &hello)
	}
	if err == nil && hello.Type != "hello" {
		err = fmt.Errorf("first frame is %q, not hello", hello.Type)
	}
	if err != nil {
		_ = ws.CloseNow()
		return nil, hello, &dialError{err: fmt.Errorf("ringd: connect: %w", err)}
	}
	return ws, hello, nil
}

func httpDialError(resp *http.Response, err error) *dialError {
	if resp == nil {
		return &dialError{err: fmt.Errorf("ringd: connect: %w", err)}
	}
	e := &Error{Status: resp.StatusCode}
	if resp.Body != nil {
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
		}
	}
	de := &dialError{err: e}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		de.retryAfter = time.Duration(s) * time.Second
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		de.permanent = true
	}
	return de
}

func (c *Conn) touch() { c.lastRecv.Store(time.Now().UnixNano()) }

// run serves sessions one after another until the Conn is finished.
func (c *Conn) run(ws *websocket.Conn, hello helloFrame) {
	defer close(c.done)
	backoff := 0
	for {
		end := c.serve(ws, hello)
		c.mu.Lock()
		c.ws = nil
		closed := c.closed
		c.mu.Unlock()
		switch code := websocket.CloseStatus(end); {
		case code == closeKicked:
			c.finish(ErrKicked)
			return
		case code == closeLoggedOut:
			c.finish(ErrLoggedOut)
			return
		case closed:
			c.finish(ErrClosed) // or what finishAs recorded
			return
		}
		c.log.Info("ringd connection lost; reconnecting", "err", end)
		c.emit(Event{Type: EventDisconnected, Err: end})
		if websocket.CloseStatus(end) == closeLagging {
			backoff = -1 // reconnect now: the server asked for a resync
		}
		var err error
		ws, hello, err = c.reconnect(&backoff)
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// reconnect dials until it succeeds, the Conn is closed, or the server
// refuses for good.
func (c *Conn) reconnect(attempt *int) (*websocket.Conn, helloFrame, error) {
	for {
		delay := c.backoff(*attempt)
		c.mu.Lock()
		if wait := time.Until(c.hintAt); !c.hintAt.IsZero() {
			delay = max(wait, 0) // the server spread its clients: come back when told
			c.hintAt = time.Time{}
		}
		c.mu.Unlock()
		*attempt++
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil, helloFrame{}, ErrClosed
		case <-t.C:
		}
		if c.opts.RefreshUserSig != nil {
			sig, err := c.opts.RefreshUserSig(c.ctx)
			if err != nil {
				c.log.Warn("refresh UserSig", "err", err)
				continue
			}
			c.mu.Lock()
			c.sig = sig
			c.mu.Unlock()
		}
		ws, hello, derr := c.dial(c.ctx)
		if derr == nil {
			*attempt = 0
			return ws, hello, nil
		}
		if c.ctx.Err() != nil {
			return nil, helloFrame{}, ErrClosed
		}
		var e *Error
		if derr.permanent && !(errors.As(derr.err, &e) && e.Status == http.StatusUnauthorized && c.opts.RefreshUserSig != nil) {
			return nil, helloFrame{}, derr.err
		}
		c.log.Debug("reconnect failed", "err", derr.err, "attempt", *attempt)
		if derr.retryAfter > 0 {
			c.mu.Lock()
			c.hintAt = time.Now().Add(derr.retryAfter + time.Duration(mrand.Int64N(int64(derr.retryAfter))))
			c.mu.Unlock()
		}
	}
}

// backoff is exponential with equal jitter; attempt < 0 means at once.
func (c *Conn) backoff(attempt int) time.Duration {
	if attempt < 0 {
		return 0
	}
	d := c.opts.ReconnectMin << min(attempt, 30)
	if d <= 0 || d > c.opts.ReconnectMax {
		d = c.opts.ReconnectMax
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// finish ends the Conn: pending requests fail and Events closes.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	switch {
	case c.userClose:
		err = ErrClosed
	case c.endErr != nil:
		err = c.endErr
	}
	c.err = err
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	close(c.events)
}

// emit queues an event, dropping the oldest one when the buffer is full.
// Only the run goroutine emits.
func (c *Conn) emit(ev Event) {
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.drops.Add(1)
		default:
		}
	}
}

// serve runs one session: it re-sends the requests that got no reply,
// then reads frames until the connection ends, and returns why.
func (c *Conn) serve(ws *websocket.Conn, hello helloFrame) error {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	defer ws.CloseNow()

	c.mu.Lock()
	c.ws, c.hello = ws, hello
	resend := make([]*pending, 0, len(c.pending))
	for _, p := range c.pending {
		resend = append(resend, p)
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	c.emit(Event{Type: EventConnected, SessionID: hello.SessionID, DeviceID: hello.DeviceID})
	sortPending(resend)
	for _, p := range resend {
		if err := c.write(ctx, ws, p.frame); err != nil {
			return err
		}
	}

	hb := time.Duration(hello.HeartbeatMS) * time.Millisecond
	if hb <= 0 {
		hb = 30 * time.Second
	}
	heartbeatDone := make(chan struct{})
	defer func() { <-heartbeatDone }()
	go func() {
		defer close(heartbeatDone)
		c.heartbeat(ctx, ws, hb)
	}()
	defer cancel() // runs before the wait above

	var hint *time.Timer
	defer func() {
		if hint != nil {
			hint.Stop()
		}
	}()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		c.touch()
		var f serverFrame
		if err := json.Unmarshal(b, &f); err != nil {
			c.log.Warn("undecodable frame from ringd", "err", err)
			continue
		}
		switch f.Type {
		case "reply":
			c.deliver(f)
		case "event":
			var ev Event
			if err := json.Unmarshal(f.Event, &ev); err != nil {
				c.log.Warn("undecodable event from ringd", "err", err)
				continue
			}
			c.emit(ev)
		case "sync_done":
			c.emit(Event{Type: EventSyncDone})
		case "kicked":
			c.mu.Lock()
			c.closed = true // whatever the close code, do not come back
			c.mu.Unlock()
			c.emit(Event{Type: EventKicked, Reason: f.Reason, DeviceID: f.Device})
			c.finishAs(ErrKicked)
		case "reconnect":
			after := time.Duration(max(f.AfterMS, 0)) * time.Millisecond
			c.mu.Lock()
			c.hintAt = time.Now().Add(after)
			c.mu.Unlock()
			c.emit(Event{Type: EventReconnectHint, AfterMS: f.AfterMS})
			if hint == nil {
				hint = time.AfterFunc(after, func() { _ = ws.Close(websocket.StatusNormalClosure, "reconnecting") })
			}
		}
	}
}

// finishAs records why the Conn will finish, before the close arrives.
func (c *Conn) finishAs(err error) {
	c.mu.Lock()
	if c.endErr == nil {
		c.endErr = err
	}
	c.mu.Unlock()
}

func sortPending(ps []*pending) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].seq < ps[j-1].seq; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// heartbeat sends a ping frame every third of the heartbeat period and
// drops a connection that stayed silent for a whole period.
func (c *Conn) heartbeat(ctx context.Context, ws *websocket.Conn, hb time.Duration) {
	t := time.NewTicker(hb / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if silent := time.Since(time.Unix(0, c.lastRecv.Load())); silent > hb {
			c.log.Info("ringd went silent; reconnecting", "silent", silent)
			_ = ws.CloseNow()
			return
		}
		_ = c.write(ctx, ws, []byte(`{"type":"ping"}`))
	}
}

func (c *Conn) write(ctx context.Context, ws *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

func (c *Conn) deliver(f serverFrame) {
	c.mu.Lock()
	p := c.pending[f.ID]
	delete(c.pending, f.ID)
	c.mu.Unlock()
	if p == nil {
		return // a reply to a request that gave up
	}
	r := replyFrame{ok: f.OK, result: f.Result}
	if !f.OK {
		e := &Error{Code: "internal", Message: "error reply without an error"}
		if f.Error != nil {
			e = &Error{Code: f.Error.Code, Message: f.Error.Message}
		}
		r.err = e
	}
	p.reply <- r
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// request sends one request and waits for its reply, across reconnects:
// a request that got no reply is re-sent with the same id on the next
// session, and the server answers it once.
func (c *Conn) request(ctx context.Context, typ string, data, out any) error {
	id := newRequestID()
	frame, err := json.Marshal(struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data any    `json:"data,omitempty"`
	}{id, typ, data})
	if err != nil {
		return fmt.Errorf("ringd: encode %s: %w", typ, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	p := &pending{frame: frame, reply: make(chan replyFrame, 1)}
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	if limit := c.hello.MaxFrame; limit > 0 && len(frame) > limit {
		c.mu.Unlock()
		return &Error{Code: "frame_too_large", Message: fmt.Sprintf("the %s request is %d bytes; the server takes %d", typ, len(frame), limit)}
	}
	c.seq++
	p.seq = c.seq
	c.pending[id] = p
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = c.write(ctx, ws, frame) // on failure it is re-sent after reconnecting
	}
	answer := func(r replyFrame) error {
		if r.err != nil {
			return r.err
		}
		if out != nil && len(r.result) > 0 {
			if err := json.Unmarshal(r.result, out); err != nil {
				return fmt.Errorf("ringd: decode %s result: %w", typ, err)
			}
		}
		return nil
	}
	select {
	case r := <-p.reply:
		return answer(r)
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("ringd: %s: %w", typ, ctx.Err())
	case <-c.done:
		select {
		case r := <-p.reply: // answered just before the end (logout)
			return answer(r)
		default:
		}
		c.forget(id)
		if err := c.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Conn) callRequest(ctx context.Context, typ string, data any) (*Call, error) {
	var out struct {
		Call *Call `json:"call"`
	}
	if err := c.request(ctx, typ, data, &out); err != nil {
		return nil, err
	}
	if out.Call == nil {
		return nil, fmt.Errorf("ringd: %s: the reply holds no call", typ)
	}
	return out.Call, nil
}

type callRef struct {
	CallID string `json:"call_id"`
}

// Invite starts a call; the invitees' devices ring (live or by push).
func (c *Conn) Invite(ctx context.Context, req InviteRequest) (*Call, error) {
	return c.callRequest(ctx, "invite", req)
}

// Accept answers a ringing call on this device; the user's other devices
// get call.answered_elsewhere.
func (c *Conn) Accept(ctx context.Context, callID string) (*Call, error) {
	return c.callRequest(ctx, "accept", callRef{callID})
}

// Reject declines a ringing call; reason is "declined" (default) or "busy".
func (c *Conn) Reject(ctx context.Context, callID, reason string) (*Call, error) {
	return c.callRequest(ctx, "reject", struct {
		CallID string `json:"call_id"`
		Reason string `json:"reason,omitempty"`
	}{callID, reason})
}

// Cancel stops a call the user started before anyone answered.
func (c *Conn) Cancel(ctx context.Context, callID string) (*Call, error) {
	return c.callRequest(ctx, "cancel", callRef{callID})
}

// Hangup leaves a call the user is in.
func (c *Conn) Hangup(ctx context.Context, callID string) (*Call, error) {
	return c.callRequest(ctx, "hangup", callRef{callID})
}

// InviteMore adds invitees to a group call.
func (c *Conn) InviteMore(ctx context.Context, callID string, invitees []string) (*Call, error) {
	return c.callRequest(ctx, "invite_more", struct {
		CallID   string   `json:"call_id"`
		Invitees []string `json:"invitees"`
	}{callID, invitees})
}

// GetCall returns a call the user takes part in.
func (c *Conn) GetCall(ctx context.Context, callID string) (*Call, error) {
	return c.callRequest(ctx, "get_call", callRef{callID})
}

// SetState reports the app state, "foreground" or "background": a
// backgrounded iOS app is suspended, so ringd rings it by push. The state
// is kept for reconnects.
func (c *Conn) SetState(ctx context.Context, state string) error {
	c.mu.Lock()
	c.state = state
	c.mu.Unlock()
	return c.request(ctx, "state", struct {
		State string `json:"state"`
	}{state}, nil)
}

// Ping asks the server for its time (a round trip).
func (c *Conn) Ping(ctx context.Context) (time.Time, error) {
	var out struct {
		ServerTime time.Time `json:"server_time"`
	}
	err := c.request(ctx, "ping", nil, &out)
	return out.ServerTime, err
}

// Logout unbinds this device from push (it stops ringing when the app is
// not connected) and ends the Conn.
func (c *Conn) Logout(ctx context.Context) error {
	if err := c.request(ctx, "logout", nil, nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.finishAs(ErrLoggedOut)
	select {
	case <-c.done:
	case <-ctx.Done():
	}
	return nil
}
