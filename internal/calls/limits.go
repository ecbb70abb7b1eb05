package calls

import (
	"context"
	"errors"
	"sync"
	"time"
)

// idempotency remembers the result of each (app, user, request ID) for a
// while, so a retried request gets the same answer without a second change.
type idempotency struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[idemKey]*idemEntry
	order   []idemKey // insertion order, for expiry (the TTL is the same for all)
}

type idemKey struct {
	app       int64
	user      string
	requestID string
}

type idemEntry struct {
	done chan struct{}
	at   time.Time
	call *Call
	err  error
}

func newIdempotency(ttl time.Duration) *idempotency {
	return &idempotency{ttl: ttl, entries: map[idemKey]*idemEntry{}}
}

// begin returns the key's entry and whether the caller must do the work
// (and then call finish).
func (m *idempotency) begin(k idemKey, now time.Time) (*idemEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if e := m.entries[k]; e != nil {
		return e, false
	}
	e := &idemEntry{done: make(chan struct{}), at: now}
	m.entries[k] = e
	m.order = append(m.order, k)
	return e, true
}

// finish records the result; keep false forgets the key (a transient
// failure: a retry should try again).
func (m *idempotency) finish(k idemKey, e *idemEntry, c *Call, err error, keep bool) {
	m.mu.Lock()
	if c != nil {
		cc := cloneCall(c)
		e.call = &cc
	}
	e.err = err
	if !keep && m.entries[k] == e {
		delete(m.entries, k)
	}
	m.mu.Unlock()
	close(e.done)
}

func (m *idempotency) expire(now time.Time) {
	i := 0
	for ; i < len(m.order); i++ {
		k := m.order[i]
		e := m.entries[k]
		if e != nil && now.Sub(e.at) < m.ttl {
			break
		}
		if e != nil {
			select {
			case <-e.done:
				delete(m.entries, k)
			default:
				// still running: keep it (and everything after) for now
				m.order = m.order[i:]
				return
			}
		}
	}
	m.order = m.order[i:]
}

// idempotent runs fn once per request ID of the actor within the TTL.
// Results and *Error refusals are remembered; other errors (the store
// unavailable...) are not, so a retry does the work again.
func (s *Service) idempotent(ctx context.Context, a Actor, fn func() (*Call, error)) (*Call, error) {
	if a.RequestID == "" {
		return fn()
	}
	k := idemKey{a.SDKAppID, a.UserID, a.RequestID}
	e, mine := s.idem.begin(k, s.clock.Now())
	if !mine {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.call != nil {
			c := cloneCall(e.call)
			return &c, e.err
		}
		return nil, e.err
	}
	c, err := fn()
	var ce *Error
	s.idem.finish(k, e, c, err, err == nil || errors.As(err, &ce))
	return c, err
}

// rateLimiter is a token bucket per user: a burst of perMinute invites,
// refilled at perMinute a minute.
type rateLimiter struct {
	mu      sync.Mutex
	buckets map[userKey]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter() *rateLimiter { return &rateLimiter{buckets: map[userKey]*bucket{}} }

func (l *rateLimiter) allow(k userKey, perMinute int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	capacity := float64(perMinute)
	rate := capacity / 60 // tokens a second
	if now.Sub(l.sweep) > time.Minute {
		// Full buckets carry no information: drop them.
		for key, b := range l.buckets {
			if b.tokens+now.Sub(b.at).Seconds()*rate >= capacity {
				delete(l.buckets, key)
			}
		}
		l.sweep = now
	}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: capacity, at: now}
		l.buckets[k] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(capacity, b.tokens+el*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
