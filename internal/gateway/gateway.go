// Package gateway serves ringd's client protocol: one WebSocket per app
// session (GET /v1/connect), the requests a device sends (invite, accept,
// reject, cancel, hang up, app state...), the call events it receives in
// order, presence (foreground/background), login policy and the lame-duck
// drain of sockets. docs/protocol.md is the protocol's reference.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/ratelimit"
	"github.com/ringd/ringd/internal/wsconn"
)

// Defaults of Config.
const (
	DefaultHeartbeatTimeout = 30 * time.Second
	DefaultMaxFrame         = 64 << 10
	DefaultMaxBadFrames     = 20 // per BadFrameWindow
	DefaultBadFrameWindow   = time.Minute
	DefaultRequestRate      = 20 // per second
	DefaultRequestBurst     = 40
	DefaultWriteTimeout     = 10 * time.Second
	DefaultRequestTimeout   = 10 * time.Second
	DefaultMaxInFlight      = 32
	DefaultMaxConnsPerIP    = 256
	DefaultMaxStarting      = 64
)

// CallService is what the gateway needs of calls.Service.
type CallService interface {
	Invite(ctx context.Context, a calls.Actor, req calls.InviteRequest) (*calls.Call, error)
	Accept(ctx context.Context, a calls.Actor, callID string) (*calls.Call, error)
	Reject(ctx context.Context, a calls.Actor, callID, reason string) (*calls.Call, error)
	Cancel(ctx context.Context, a calls.Actor, callID string) (*calls.Call, error)
	Hangup(ctx context.Context, a calls.Actor, callID string) (*calls.Call, error)
	InviteMore(ctx context.Context, a calls.Actor, callID string, invitees []string) (*calls.Call, error)
	GetForUser(ctx context.Context, sdkAppID int64, userID, callID string) (*calls.Call, error)
	DeviceConnected(ctx context.Context, sdkAppID int64, userID, deviceID string) ([]calls.Event, error)
	DeviceDisconnected(ctx context.Context, sdkAppID int64, userID, deviceID string) error
	DeviceStateChanged(ctx context.Context, sdkAppID int64, userID, deviceID, state string) error
	UnbindDevice(ctx context.Context, sdkAppID int64, userID, deviceID string) error
}

// Authenticator checks a UserSig. An error may implement
// interface{ HTTPStatus() int; ErrorCode() string } to choose the HTTP
// answer; other errors become a 500.
type Authenticator interface {
	AuthenticateUserSig(ctx context.Context, sig string) (sdkAppID int64, userID string, err error)
}

// PolicySource tells an app's login policy: "multi" or "single".
type PolicySource interface {
	LoginPolicy(ctx context.Context, sdkAppID int64) (string, error)
}

// Login policies.
const (
	LoginMulti  = "multi"
	LoginSingle = "single"
)

// Config tunes the gateway. Zero values take the defaults.
type Config struct {
	// HeartbeatTimeout: a connection with no frame from the client (data,
	// ping or pong) for this long is dead. The server pings a client that
	// has been silent for a third of it.
	HeartbeatTimeout time.Duration
	// MaxFrame is the largest client frame answered normally; a larger
	// one gets a frame_too_large error, and one over 4×MaxFrame closes the
	// connection (1009).
	MaxFrame int
	// MaxBadFrames malformed, refused or rate-limited frames per
	// BadFrameWindow are tolerated; one more closes the connection (1008).
	MaxBadFrames   int
	BadFrameWindow time.Duration
	// RequestRate and RequestBurst size each connection's token bucket.
	RequestRate  float64
	RequestBurst int
	// MaxInFlight requests may wait per connection; more are rate_limited.
	MaxInFlight int
	// MaxConnsPerIP sessions may be open from one client IP (the request's
	// RemoteAddr, which the server resolves behind trusted proxies); more
	// get 429 too_many_connections before the upgrade. Negative: no limit.
	MaxConnsPerIP int
	// MaxStarting sessions may be starting at once (subscribing, applying
	// the login policy, reading their sync from the store); the others
	// wait their turn holding only their socket. The store sets the pace
	// of a reconnect storm anyway: unbounded, every waiting connection
	// would hold a goroutine stack grown by the store calls, which the
	// heap then keeps for good.
	MaxStarting int
	// WriteTimeout bounds one frame write.
	WriteTimeout time.Duration
	// RequestTimeout bounds one call-service request.
	RequestTimeout time.Duration
	// OriginPatterns, when set, limits the browser origins allowed to
	// connect. Empty allows every origin: authentication is an explicit
	// UserSig, never a cookie, so cross-site WebSocket hijacking gains an
	// attacker nothing.
	OriginPatterns []string
	Logger         *slog.Logger
	Metrics        prometheus.Registerer // nil: metrics are kept but not exported
	Now            func() time.Time
}

func (c Config) withDefaults() Config {
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxBadFrames <= 0 {
		c.MaxBadFrames = DefaultMaxBadFrames
	}
	if c.BadFrameWindow <= 0 {
		c.BadFrameWindow = DefaultBadFrameWindow
	}
	if c.RequestRate <= 0 {
		c.RequestRate = DefaultRequestRate
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = DefaultRequestBurst
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.MaxStarting <= 0 {
		c.MaxStarting = DefaultMaxStarting
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Gateway holds the live sessions of this node.
type Gateway struct {
	cfg     Config
	calls   CallService
	hub     *bus.Hub
	authn   Authenticator
	policy  PolicySource
	log     *slog.Logger
	metrics *metrics
	perIP   *ratelimit.Concurrency

	mu       sync.Mutex
	sessions map[*session]struct{}
	draining bool
	beating  bool // the heartbeat goroutine runs
	// beatSlots holds the live sessions by the tick of the heartbeat
	// goroutine that checks them; beatTick counts its ticks.
	beatSlots [heartbeatChecks]map[*session]struct{}
	beatTick  int
	wg        sync.WaitGroup // sessions
	beatWG    sync.WaitGroup // the heartbeat goroutine
	quit      chan struct{}  // closed by Close: the heartbeat goroutine exits
	quitOnce  sync.Once
	starting  chan struct{}  // a slot per session starting (Config.MaxStarting)
	waiter    *wsconn.Waiter // idle sessions' wait for their clients; nil: a goroutine each
	noWaiter  bool           // none can be made here
}

// New returns a gateway; serve its Handler.
func New(cfg Config, callService CallService, hub *bus.Hub, authn Authenticator, policy PolicySource) *Gateway {
	cfg = cfg.withDefaults()
	return &Gateway{
		cfg: cfg, calls: callService, hub: hub, authn: authn, policy: policy,
		log: cfg.Logger, metrics: newMetrics(cfg.Metrics), sessions: map[*session]struct{}{},
		perIP: ratelimit.NewConcurrency(cfg.MaxConnsPerIP), quit: make(chan struct{}),
		starting: make(chan struct{}, cfg.MaxStarting),
	}
}

// Handler serves GET /v1/connect.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/connect", g.connect)
	return mux
}

// Connections is the number of live sessions.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// Drain puts the gateway in lame-duck mode: new connections get 503 with
// Retry-After, and every session is sent a reconnect frame whose after_ms
// hints are spread uniformly over spread, then closed (1012) at its hinted
// time. Drain returns when every session has ended, or when ctx is done,
// after closing the rest at once.
func (g *Gateway) Drain(ctx context.Context, spread time.Duration) {
	g.mu.Lock()
	g.draining = true
	list := make([]*session, 0, len(g.sessions))
	for s := range g.sessions {
		list = append(list, s)
	}
	g.mu.Unlock()
	n := len(list)
	g.log.Info("draining websocket sessions", "sessions", n, "spread", spread)
	for i, j := range mrand.Perm(n) {
		var after time.Duration
		if n > 1 && spread > 0 {
			after = time.Duration(float64(spread) * float64(i) / float64(n-1))
		}
		list[j].drain(after)
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.closeAll()
		<-done
	}
}

// Close ends every session at once (after Drain, or in tests).
func (g *Gateway) Close() {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	g.closeAll()
	g.wg.Wait()
	g.quitOnce.Do(func() { close(g.quit) })
	g.beatWG.Wait()
	g.mu.Lock()
	w := g.waiter
	g.mu.Unlock()
	if w != nil {
		_ = w.Close()
	}
}

func (g *Gateway) closeAll() {
	g.mu.Lock()
	list := make([]*session, 0, len(g.sessions))
	for s := range g.sessions {
		list = append(list, s)
	}
	g.mu.Unlock()
	for _, s := range list {
		s.end("closed")
		_ = s.conn.CloseNow() // also those waiting for a close handshake
	}
}

// httpError is the JSON body of a refused connection, like the REST API's.
type httpError struct {
	Status  int    `json:"http"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(httpError{Status: status, Code: code, Message: msg})
}

type codedError interface {
	HTTPStatus() int
	ErrorCode() string
}

// RequestAuthenticator is an Authenticator that also sees the upgrade
// request, to count failed UserSigs against the client's IP. An error
// with a RetryAfter() time.Duration method adds Retry-After.
type RequestAuthenticator interface {
	AuthenticateRequest(r *http.Request, sig string) (sdkAppID int64, userID string, err error)
}

// remoteIP is the client's IP from RemoteAddr (the server has already
// replaced it with the forwarded address behind a trusted proxy).
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// connect checks the upgrade request, authenticates it, applies the login
// policy and runs the session until it ends.
func (g *Gateway) connect(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	draining := g.draining
	g.mu.Unlock()
	if draining {
		w.Header().Set("Retry-After", "1")
		writeHTTPError(w, http.StatusServiceUnavailable, "draining", "this server is restarting; reconnect (to another node) shortly")
		return
	}
	ip := remoteIP(r)
	if !g.perIP.Acquire(ip) {
		w.Header().Set("Retry-After", "5")
		writeHTTPError(w, http.StatusTooManyRequests, "too_many_connections",
			fmt.Sprintf("more than %d WebSocket sessions from your address; close some or retry later", g.cfg.MaxConnsPerIP))
		return
	}
	owned := false // by a session, which releases ip when it ends
	defer func() {
		if !owned {
			g.perIP.Release(ip)
		}
	}()
	if !wsconn.HeaderHasToken(r.Header, "Connection", "upgrade") || !wsconn.HeaderHasToken(r.Header, "Upgrade", "websocket") {
		writeHTTPError(w, http.StatusUpgradeRequired, "websocket_required", "GET /v1/connect is a WebSocket endpoint; see docs/protocol.md")
		return
	}
	if protos := wsconn.HeaderTokens(r.Header, "Sec-WebSocket-Protocol"); len(protos) > 0 && !contains(protos, Protocol) {
		writeHTTPError(w, http.StatusBadRequest, "unsupported_protocol",
			"this server speaks the subprotocol "+Protocol+" only (asked for "+truncate(strings.Join(protos, ", "), 100)+")")
		return
	}
	q := r.URL.Query()
	deviceID := q.Get("device_id")
	if deviceID == "" || len(deviceID) > MaxDeviceIDLen || !utf8.ValidString(deviceID) || strings.ContainsFunc(deviceID, isControl) {
		writeHTTPError(w, http.StatusBadRequest, "bad_device_id", "device_id is required: 1 to 128 bytes of text, the same ID the device registers its APNs tokens with")
		return
	}
	state := q.Get("state")
	switch state {
	case "":
		state = bus.Foreground
	case bus.Foreground, bus.Background:
	default:
		writeHTTPError(w, http.StatusBadRequest, "bad_state", `state must be "foreground" (default) or "background"`)
		return
	}
	sig := q.Get("usersig")
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "UserSig") {
		sig = strings.TrimSpace(cred)
	}
	if sig == "" {
		writeHTTPError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: UserSig <usersig> or ?usersig=<usersig>")
		return
	}
	ctx := r.Context()
	var (
		sdkAppID int64
		userID   string
		err      error
	)
	if ra, ok := g.authn.(RequestAuthenticator); ok {
		sdkAppID, userID, err = ra.AuthenticateRequest(r, sig)
	} else {
		sdkAppID, userID, err = g.authn.AuthenticateUserSig(ctx, sig)
	}
	if err != nil {
		var ce codedError
		var wait interface{ RetryAfter() time.Duration }
		if errors.As(err, &wait) {
			w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64((wait.RetryAfter()+time.Second-1)/time.Second)), 10))
		}
		if errors.As(err, &ce) {
			writeHTTPError(w, ce.HTTPStatus(), ce.ErrorCode(), err.Error())
			return
		}
		g.log.Error("authenticate websocket", "err", err)
		writeHTTPError(w, http.StatusInternalServerError, CodeInternal, "internal error; it has been logged")
		return
	}
	policy, err := g.policy.LoginPolicy(ctx, sdkAppID)
	if err != nil {
		g.log.Warn("login policy unavailable", "sdkappid", sdkAppID, "err", err)
		w.Header().Set("Retry-After", "2")
		writeHTTPError(w, http.StatusServiceUnavailable, CodeUnavailable, "the app's settings cannot be read now; retry shortly")
		return
	}

	s := &session{
		g: g, sdkAppID: sdkAppID, userID: userID, deviceID: deviceID, state: state, policy: policy,
		id: newSessionID(), born: time.Now(), ip: ip,
		limiter: *newBucket(g.cfg.RequestRate, g.cfg.RequestBurst, g.cfg.Now()),
	}
	s.touch()
	// The session outlives the request, and nothing below reads the
	// request's context values: holding it would pin it (and what it
	// references) for the session's life.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	opts := wsconn.Options{
		Subprotocol:  Protocol,
		ReadLimit:    int64(4 * g.cfg.MaxFrame),
		WriteTimeout: g.cfg.WriteTimeout,
		OnControl:    s.touch,
	}
	if len(g.cfg.OriginPatterns) > 0 { // none: every origin (see Config.OriginPatterns)
		opts.OriginPatterns = g.cfg.OriginPatterns
	}
	c, err := wsconn.Upgrade(w, r, opts)
	if err != nil {
		s.cancel()
		g.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	s.conn = c

	g.mu.Lock()
	if g.draining {
		g.mu.Unlock()
		s.cancel()
		_ = c.Close(wsconn.StatusServiceRestart, "server restarting")
		return
	}
	if g.waiter == nil && !g.noWaiter {
		g.startWaiter()
	}
	g.sessions[s] = struct{}{}
	// The tick with this number comes round again one period from now.
	s.beatSlot = g.beatTick % heartbeatChecks
	if g.beatSlots[s.beatSlot] == nil {
		g.beatSlots[s.beatSlot] = map[*session]struct{}{}
	}
	g.beatSlots[s.beatSlot][s] = struct{}{}
	g.wg.Add(1)
	if !g.beating {
		g.beating = true
		g.beatWG.Add(1)
		go g.heartbeat()
	}
	g.mu.Unlock()
	g.metrics.connections.Inc()
	owned = true // released when the session ends
	// The request's goroutine ends here, and with it what net/http holds
	// for the request (its buffers, headers, connection state).
	go s.start()
}

// startWaiter starts the Waiter of idle sessions with the first session.
// g.mu must be held.
func (g *Gateway) startWaiter() {
	w, err := wsconn.NewWaiter()
	if err != nil {
		g.noWaiter = true
		g.log.Info("idle websocket sessions wait on a goroutine each", "err", err)
		return
	}
	g.waiter = w
}

// endSession forgets a session that has ended.
func (g *Gateway) endSession(s *session) {
	g.mu.Lock()
	delete(g.sessions, s)
	delete(g.beatSlots[s.beatSlot], s)
	g.mu.Unlock()
	g.perIP.Release(s.ip)
	g.metrics.connections.Dec()
	g.wg.Done()
}

// heartbeatChecks is how many ticks the heartbeat goroutine takes per
// HeartbeatTimeout/3: each session is checked once per HeartbeatTimeout/3,
// one period after it connected, within 1/heartbeatChecks of that.
const heartbeatChecks = 10

// heartbeat checks every live session once per HeartbeatTimeout/3, in its
// own phase (so pings spread over time as connections did): one goroutine
// and one ticker for the whole gateway instead of a ticker and a waiting
// goroutine per session. A tick visits only the sessions of its slot:
// visiting each of 18,500 sessions at every tick, reading one cold cache
// line each, was most of the heartbeats' CPU. It exits when no session is
// left.
func (g *Gateway) heartbeat() {
	defer g.beatWG.Done()
	period := g.cfg.HeartbeatTimeout / 3
	t := time.NewTicker(max(period/heartbeatChecks, time.Millisecond))
	defer t.Stop()
	var due []*session
	for {
		select {
		case <-t.C:
		case <-g.quit:
			return
		}
		g.mu.Lock()
		if len(g.sessions) == 0 {
			g.beating = false
			g.mu.Unlock()
			return
		}
		g.beatTick++
		for s := range g.beatSlots[g.beatTick%heartbeatChecks] {
			if s.live.Load() { // the heartbeat starts after sync_done
				due = append(due, s)
			}
		}
		g.mu.Unlock()
		for _, s := range due {
			s.beat()
		}
		clear(due)
		due = due[:0]
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// bucket is a token bucket; only its session's reader uses it.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *bucket) allow(now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// window counts events in a fixed window.
type window struct {
	start time.Time
	n     int
}

func (w *window) add(now time.Time, size time.Duration) int {
	if now.Sub(w.start) >= size {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n
}
