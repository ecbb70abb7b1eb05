// Package ratelimit holds ringd's abuse limits: a token bucket per key
// (client IP, app) with bounded memory, and a counter of concurrent uses
// per key (connections per IP). Both are safe for concurrent use and take
// their clock from the caller, so tests need no sleeping.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Limiter remembers.
const DefaultMaxKeys = 100_000

// Config sizes a Limiter: Burst events at once per key, refilled at
// Burst per Per (so "20 per minute" is Burst 20, Per time.Minute).
type Config struct {
	Burst int
	Per   time.Duration
	// MaxKeys bounds memory: past it, the key used least recently is
	// forgotten (which forgives it). Zero is DefaultMaxKeys.
	MaxKeys int
	Now     func() time.Time // nil: time.Now
}

// Limiter is a token bucket per key. A key whose bucket has refilled is
// idle: it carries no information and is dropped, so memory follows the
// keys active within one refill period, up to MaxKeys.
type Limiter struct {
	burst   float64
	rate    float64 // tokens per second
	refill  time.Duration
	maxKeys int
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // of *entry
	lru  *list.List               // least recently used first
}

type entry struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns a Limiter. A Burst or Per that is not positive disables it:
// every event is allowed.
func New(c Config) *Limiter {
	if c.MaxKeys <= 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	l := &Limiter{maxKeys: c.MaxKeys, now: c.Now, keys: map[string]*list.Element{}, lru: list.New()}
	if c.Burst > 0 && c.Per > 0 {
		l.burst = float64(c.Burst)
		l.rate = l.burst / c.Per.Seconds()
		l.refill = c.Per
	}
	return l
}

func (l *Limiter) disabled() bool { return l == nil || l.rate == 0 }

// Allow takes one token from key's bucket. When none is left it takes
// nothing and says how long until one is.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.disabled() {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.entry(key, now, true)
	if e.tokens < 1 {
		return false, l.wait(e)
	}
	e.tokens--
	return true, 0
}

// Blocked says whether key's bucket is empty, without taking a token, and
// if so for how long. A key never seen is not blocked and is not stored.
func (l *Limiter) Blocked(key string) (blocked bool, retryAfter time.Duration) {
	if l.disabled() {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key, l.now(), false)
	if e == nil || e.tokens >= 1 {
		return false, 0
	}
	return true, l.wait(e)
}

// Take takes a token from key's bucket if there is one (an event that
// happened whether or not it was allowed, such as a failed login), and
// reports whether the bucket is now empty.
func (l *Limiter) Take(key string) (exhausted bool) {
	if l.disabled() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key, l.now(), true)
	if e.tokens >= 1 {
		e.tokens--
	}
	return e.tokens < 1
}

// Len is how many keys the limiter remembers.
func (l *Limiter) Len() int {
	if l.disabled() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// wait is how long until e has one token, rounded up to whole seconds as
// Retry-After carries them.
func (l *Limiter) wait(e *entry) time.Duration {
	secs := math.Ceil((1 - e.tokens) / l.rate)
	return time.Duration(max(secs, 1)) * time.Second
}

// entry returns key's bucket refilled to now, creating it when create is
// set, and drops idle keys first. Callers hold mu.
func (l *Limiter) entry(key string, now time.Time, create bool) *entry {
	l.sweep(now)
	if el, ok := l.keys[key]; ok {
		e := el.Value.(*entry)
		if d := now.Sub(e.last); d > 0 {
			e.tokens = math.Min(l.burst, e.tokens+d.Seconds()*l.rate)
			e.last = now
		}
		l.lru.MoveToBack(el)
		return e
	}
	if !create {
		return nil
	}
	for len(l.keys) >= l.maxKeys {
		l.remove(l.lru.Front())
	}
	e := &entry{key: key, tokens: l.burst, last: now}
	l.keys[key] = l.lru.PushBack(e)
	return e
}

// sweep drops keys unused for a whole refill period: their buckets are
// full again. The list is in order of last use, so it stops at the first
// key still in use.
func (l *Limiter) sweep(now time.Time) {
	for el := l.lru.Front(); el != nil; el = l.lru.Front() {
		if now.Sub(el.Value.(*entry).last) < l.refill {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.keys, el.Value.(*entry).key)
	l.lru.Remove(el)
}

// Concurrency counts concurrent uses per key (open connections per IP)
// and refuses more than Max. Keys at zero are dropped, so memory follows
// the keys in use.
type Concurrency struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewConcurrency returns a counter allowing max uses per key; max <= 0
// allows any number.
func NewConcurrency(max int) *Concurrency {
	return &Concurrency{max: max, n: map[string]int{}}
}

// Acquire counts one more use of key, or refuses it when key has Max.
// Every successful Acquire needs one Release.
func (c *Concurrency) Acquire(key string) bool {
	if c == nil || c.max <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release ends one use of key.
func (c *Concurrency) Release(key string) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
		return
	}
	c.n[key]--
}

// InUse is key's count.
func (c *Concurrency) InUse(key string) int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Keys is how many keys are in use.
func (c *Concurrency) Keys() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}
