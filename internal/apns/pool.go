package apns

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Dial backoff after failures: 1s, 2s, 4s ... up to 30s, with jitter, reset
// as soon as APNs answers a request.
const (
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
)

// ErrClosed is returned by Send after Close, or when the credential's pool
// was closed by Forget while the request waited.
var ErrClosed = errors.New("apns: client closed")

// BackoffError is returned when a pool has no connection and the last dial
// failed recently: ringd does not hammer a failing host with dials.
//
// The caller should not try again before Wait has passed: the pool would
// answer the same at once, without a request. The push pipeline schedules
// its next attempt at least that far away.
type BackoffError struct {
	Host  string
	Until time.Time     // next dial allowed at (Config.Now clock)
	Wait  time.Duration // from the error until Until
	Err   error         // the last dial failure
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("apns: no connection to %s; next dial at %s after: %v", e.Host, e.Until.Format(time.RFC3339), e.Err)
}

func (e *BackoffError) Unwrap() error { return e.Err }

type poolKey struct {
	id  int64
	env string
}

// pool is the set of connections of one (credential, environment). It opens
// connections lazily, one at a time, only when every open one is at its
// stream limit, up to MaxConnsPerPool.
type pool struct {
	client *Client
	key    poolKey
	cred   Credential // a copy: compared with later Sends' credentials
	base   string     // "https://host[:port]", prefix of request URLs
	addr   string     // host:port to dial
	host   string     // host[:port] as configured, for answers and events
	tls    *tls.Config
	log    *slog.Logger

	mu       sync.Mutex
	conns    []*conn       // usable (not retired, not closed)
	draining int           // retired but not yet closed; they count against MaxConnsPerPool
	dialing  bool          // one dial at a time per pool
	wake     chan struct{} // closed and cleared when capacity may have changed
	failures int           // consecutive dial failures
	nextDial time.Time     // no dial before this (Config.Now clock)
	lastErr  error
	closed   bool
}

func (p *pool) event(err error) ConnEvent {
	return ConnEvent{CredentialID: p.key.id, Environment: p.key.env, Host: p.host, Err: err}
}

// acquire returns a connection for one request, counted in its inflight
// until release. It waits for a dial in progress or a free stream, within
// ctx.
func (p *pool) acquire(ctx context.Context) (*conn, error) {
	for {
		p.mu.Lock()
		c, wait, err := p.pickLocked()
		p.mu.Unlock()
		if c != nil || err != nil {
			return c, err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("apns: waiting for a connection to %s: %w", p.host, context.Cause(ctx))
		}
	}
}

// pickLocked chooses: a connection with a free stream; else a new dial
// (waiting for it); else, when no connection may be opened now, the least
// loaded one, where the request waits for a stream to free (h2Conn).
func (p *pool) pickLocked() (*conn, <-chan struct{}, error) {
	if p.closed {
		return nil, nil, ErrClosed
	}
	best := p.leastLoadedLocked()
	if best != nil && best.inflight < best.limit {
		best.inflight++
		return best, nil, nil
	}
	// Draining connections count: after a GOAWAY the old connection may
	// live on for its last streams, and the bound on connections to APNs
	// holds for open ones, not only for usable ones.
	canGrow := len(p.conns)+p.draining < p.client.cfg.MaxConnsPerPool
	backingOff := p.client.cfg.Now().Before(p.nextDial)
	if canGrow && !p.dialing && !backingOff {
		p.startDialLocked()
	}
	if best != nil && (!canGrow || backingOff && !p.dialing) {
		best.inflight++
		return best, nil, nil
	}
	if best == nil && backingOff && !p.dialing {
		wait := p.nextDial.Sub(p.client.cfg.Now())
		return nil, nil, &BackoffError{Host: p.host, Until: p.nextDial, Wait: wait, Err: p.lastErr}
	}
	return nil, p.waitLocked(), nil
}

func (p *pool) leastLoadedLocked() *conn {
	var best *conn
	for _, c := range p.conns {
		if best == nil || c.inflight*best.limit < best.inflight*c.limit {
			best = c // lowest inflight/limit, compared without division
		}
	}
	return best
}

func (p *pool) waitLocked() <-chan struct{} {
	if p.wake == nil {
		p.wake = make(chan struct{})
	}
	return p.wake
}

func (p *pool) wakeLocked() {
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// release ends one request on c. It refreshes c's stream limit (APNs
// changes it over time: 1 until a token is accepted, 1 after a rejected
// push) and retires c when the server sent GOAWAY.
func (p *pool) release(c *conn) {
	st := c.cc.State() // not under p.mu: the connection has its own lock
	p.mu.Lock()
	c.inflight--
	if st.MaxConcurrentStreams > 0 {
		c.limit = int(st.MaxConcurrentStreams)
	}
	retire := (st.Closing || st.Closed) && p.retireLocked(c)
	p.wakeLocked()
	p.mu.Unlock()
	if retire {
		go p.shutdownConn(c)
	}
}

// retire takes c out of service and closes it once its streams are done.
func (p *pool) retire(c *conn) {
	p.mu.Lock()
	retire := p.retireLocked(c)
	p.mu.Unlock()
	if retire {
		go p.shutdownConn(c)
	}
}

// retireLocked marks c retired. It reports whether the caller must run
// shutdownConn, for which it has counted the goroutine in client.wg; it is
// done under p.mu so that Close, which closes pools before waiting, never
// waits on a WaitGroup that may still grow.
func (p *pool) retireLocked(c *conn) bool {
	if c.retired || p.closed {
		return false
	}
	c.retired = true
	if c.added && !c.closed {
		c.draining = true
		p.draining++
	}
	p.removeLocked(c)
	p.client.wg.Add(1)
	return true
}

func (p *pool) removeLocked(c *conn) {
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

// shutdownConn closes c gracefully: in-flight requests finish, bounded by
// RequestTimeout and by Close.
func (p *pool) shutdownConn(c *conn) {
	defer p.client.wg.Done()
	ctx, cancel := context.WithTimeout(p.client.ctx, p.client.cfg.RequestTimeout)
	defer cancel()
	if err := c.cc.Shutdown(ctx); err != nil {
		_ = c.cc.Close()
	}
}

func (p *pool) startDialLocked() {
	p.dialing = true
	p.client.wg.Add(1)
	go p.dial()
}

// dial opens one connection in the background, so that a caller giving up
// does not abort a dial that the next callers will use.
func (p *pool) dial() {
	defer p.client.wg.Done()
	ctx, cancel := context.WithTimeout(p.client.ctx, p.client.cfg.RequestTimeout)
	defer cancel()
	c, err := p.openConn(ctx)

	p.mu.Lock()
	p.dialing = false
	discard := false
	limit := 0
	switch {
	case err != nil:
		p.noteFailureLocked(err)
	case p.closed || c.closed:
		c.retired = true
		discard = true
	default:
		c.added = true
		limit = c.limit
		p.conns = append(p.conns, c)
		p.client.open.Add(1)
	}
	p.wakeLocked()
	p.mu.Unlock()

	switch {
	case err != nil:
		p.log.Warn("apns connection failed", "error", err, "retry_after", p.backoffUntil())
		p.client.cfg.Observer.DialFailed(p.event(err))
	case discard:
		_ = c.cc.Close()
	default:
		p.log.Info("apns connection opened", "max_streams", limit)
		p.client.cfg.Observer.ConnOpened(p.event(nil))
	}
}

func (p *pool) backoffUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextDial
}

func (p *pool) noteFailureLocked(err error) {
	p.failures++
	p.lastErr = err
	p.nextDial = p.client.cfg.Now().Add(backoffDelay(p.failures))
}

// backoffDelay is the wait after n consecutive failures: exponential with
// "equal jitter" (between half and all of it), so that pools failing
// together do not dial together.
func backoffDelay(n int) time.Duration {
	d := backoffMax
	if n < 6 {
		d = min(backoffMax, backoffBase<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// answered records that APNs answered on c: the host works, so the dial
// backoff is reset.
func (p *pool) answered(c *conn) {
	if c.answered.Load() || !c.answered.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	p.failures = 0
	p.nextDial = time.Time{}
	p.lastErr = nil
	p.mu.Unlock()
}

// connClosed runs when c's network connection closed.
func (p *pool) connClosed(c *conn) {
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		return
	}
	c.closed = true
	if !c.added {
		p.mu.Unlock()
		return // failed during openConn; dial reports it
	}
	if c.draining {
		c.draining = false
		p.draining--
	}
	p.removeLocked(c)
	life, byUs := time.Since(c.opened), c.retired
	if !byUs && !c.answered.Load() && life < minHealthyLife {
		p.noteFailureLocked(fmt.Errorf("apns: connection to %s closed %s after opening, before any answer", p.host, life.Round(time.Millisecond)))
	}
	p.wakeLocked()
	p.mu.Unlock()

	p.client.open.Add(-1)
	p.log.Info("apns connection closed", "lifetime", life.Round(time.Second), "by_us", byUs)
	p.client.cfg.Observer.ConnClosed(p.event(nil))
}

// close takes the pool out of service. With ctx nil the connections are
// closed at once (Client.Close); otherwise they finish their requests within
// ctx (Forget).
// abort closes the pool's connections at once, cutting requests in flight.
func (p *pool) abort() { p.shutdown(context.Background(), false) }

// close lets requests in flight finish until ctx ends, then closes.
func (p *pool) close(ctx context.Context) { p.shutdown(ctx, true) }

// shutdown retires every connection: gracefully until ctx ends, or at once.
func (p *pool) shutdown(ctx context.Context, graceful bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	for _, c := range conns {
		c.retired = true
	}
	p.wakeLocked()
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range conns {
		if !graceful {
			_ = c.cc.Close()
			continue
		}
		wg.Go(func() {
			if err := c.cc.Shutdown(ctx); err != nil {
				_ = c.cc.Close()
			}
		})
	}
	wg.Wait()
}
