package push

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxOutbox is the pending deliveries above which Submit refuses
// new pushes (Config.MaxOutbox).
const DefaultMaxOutbox = 1_000_000

// CodeOutboxFull is the stable code of a push refused because the outbox
// is over Config.MaxOutbox. The HTTP API answers it with 503 and
// Retry-After.
const CodeOutboxFull = "outbox_full"

// Retry-After bounds of an outbox_full answer.
const (
	minOutboxRetryAfter = time.Second
	maxOutboxRetryAfter = time.Minute
)

// callHeadroom is the share of MaxOutbox by which the call service's own
// pushes may go over the limit: a call the API admitted should still ring
// its invitees and tell them what they missed, while new pushes and calls
// from outside are refused.
const callHeadroom = 8 // MaxOutbox/8, i.e. 12.5 %

// outboxGauge is the outbox depth as this process knows it without a query
// per request: the count the workers sample every PollInterval, plus the
// deliveries accepted since, minus those that reached a final state since.
// Deliveries of other nodes show up at the next sample. It may be off by a
// batch between samples; the limit is a guard against unbounded growth, not
// an exact quota.
type outboxGauge struct {
	depth    atomic.Int64
	finished atomic.Int64 // deliveries that left pending, ever

	mu         sync.Mutex
	sampledAt  time.Time
	finishedAt int64   // finished at the last sample
	drainRate  float64 // deliveries leaving pending per second, smoothed
}

func (g *outboxGauge) added(n int) {
	if n > 0 {
		g.depth.Add(int64(n))
	}
}

func (g *outboxGauge) left(n int) {
	if n > 0 {
		g.depth.Add(-int64(n))
		g.finished.Add(int64(n))
	}
}

// sample replaces the running count with the store's and updates the
// drain rate.
func (g *outboxGauge) sample(n int, now time.Time) {
	g.depth.Store(int64(n))
	fin := g.finished.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.sampledAt.IsZero() {
		if secs := now.Sub(g.sampledAt).Seconds(); secs > 0 {
			rate := float64(fin-g.finishedAt) / secs
			g.drainRate = 0.7*g.drainRate + 0.3*rate // a few seconds of memory
		}
	}
	g.sampledAt, g.finishedAt = now, fin
}

// retryAfter estimates when the outbox will be back under limit at the
// current drain rate, within [1s, 1m].
func (g *outboxGauge) retryAfter(limit int64) time.Duration {
	over := float64(g.depth.Load() - limit + limit/10) // back to 90 % of the limit
	g.mu.Lock()
	rate := g.drainRate
	g.mu.Unlock()
	if rate <= 0 || over <= 0 {
		return maxOutboxRetryAfter / 4
	}
	d := time.Duration(math.Ceil(over/rate)) * time.Second
	return min(max(d, minOutboxRetryAfter), maxOutboxRetryAfter)
}

// OutboxDepth is the number of pending deliveries as the pipeline counts
// them between samples of the store.
func (s *Service) OutboxDepth() int { return int(s.outbox.depth.Load()) }

// Admit tells whether a new push from outside (the HTTP API, a new call)
// would be accepted now: nil, or an *Error with CodeOutboxFull and a
// RetryAfter. It costs two atomic loads, so the API may ask it on every
// request.
func (s *Service) Admit() error {
	return s.admit(SourceAPI)
}

func (s *Service) admit(source string) error {
	limit := int64(s.cfg.MaxOutbox)
	if source == SourceCall {
		limit += limit / callHeadroom
	}
	depth := s.outbox.depth.Load()
	if depth < limit {
		return nil
	}
	e := errorf(CodeOutboxFull, "%d deliveries are waiting to be sent (limit %d): APNs is slow or unreachable; retry later", depth, s.cfg.MaxOutbox)
	e.RetryAfter = s.outbox.retryAfter(int64(s.cfg.MaxOutbox))
	return e
}
