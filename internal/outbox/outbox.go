// Package outbox runs the workers of a durable outbox kept in the store:
// it leases due items, never more than there are idle workers, and hands
// each to its own goroutine. The push pipeline and the webhooks share it.
//
// Items are claimed when Run starts, on every poll, on a wake-up, and, after
// a claim that got all it asked for, as soon as a worker is free: more is
// then likely due, and waiting for the poll would leave workers idle. After
// a claim that got less, a finished item does not cause a claim, so a
// drained outbox is not queried each time a worker finishes. A failed claim
// is not retried at once but at the next poll or wake-up.
package outbox

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Config is what Run needs. Workers, Batch, PollInterval, Claim and Process
// are required.
type Config[T any] struct {
	// Workers is how many items are processed at most at once.
	Workers int
	// Batch is how many items one claim asks for at most.
	Batch int
	// MinClaim is how many workers must be idle before a backlog is
	// claimed again after a full claim (default 1). Each claim is a write
	// transaction, so claiming a few items each time one finishes costs a
	// transaction per handful of items; waiting for MinClaim idle workers
	// reads a backlog in batches. A Wake or a poll claims at once for
	// whatever is idle, so a new item never waits for the low-water mark.
	MinClaim int
	// PollInterval is how often the outbox is claimed from without a wake-up.
	PollInterval time.Duration
	// Wake, when not nil, makes Run claim at once when it receives.
	Wake <-chan struct{}
	// Claim leases at most limit due items (limit > 0). Run calls it from
	// one goroutine, never concurrently with itself.
	Claim func(ctx context.Context, limit int) ([]T, error)
	// Process handles one claimed item in its own goroutine. Its ctx is
	// Run's: it is cancelled at shutdown, and Run waits for Process to
	// return, so Process bounds its own work (the lease) instead of
	// dropping what it has half done when ctx is cancelled.
	Process func(ctx context.Context, item *T)
	// OnError, when not nil, gets the errors of Claim, except those once
	// ctx is done.
	OnError func(err error)
	// AfterClaim, when not nil, is called after each claim, from the
	// goroutine that claims.
	AfterClaim func(ctx context.Context)
	// Direct, when not nil, lets items that their writer leased itself go
	// to Run's workers without a claim (see Direct).
	Direct *Direct[T]
}

func (c *Config[T]) validate() error {
	switch {
	case c.Workers <= 0:
		return errors.New("outbox: Workers must be positive")
	case c.Batch <= 0:
		return errors.New("outbox: Batch must be positive")
	case c.PollInterval <= 0:
		return errors.New("outbox: PollInterval must be positive")
	case c.Claim == nil || c.Process == nil:
		return errors.New("outbox: Claim and Process are required")
	}
	return nil
}

// Run claims and processes items until ctx is done, then waits for the
// items in flight and returns nil. It returns an error only for an invalid
// Config, at once.
func Run[T any](ctx context.Context, cfg Config[T]) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	r := &runner[T]{
		cfg:   cfg,
		slots: make(chan struct{}, cfg.Workers),
		freed: make(chan struct{}, 1),
	}
	defer r.wg.Wait()
	if cfg.Direct != nil {
		cfg.Direct.attach(ctx, r)
		defer cfg.Direct.detach() // before the wait: no new items
	}
	ticker := time.NewTicker(cfg.PollInterval)
	defer ticker.Stop()
	for ctx.Err() == nil {
		full, err := r.claim(ctx)
		if err != nil && ctx.Err() == nil && cfg.OnError != nil {
			cfg.OnError(err)
		}
		if cfg.AfterClaim != nil {
			cfg.AfterClaim(ctx)
		}
		if full && r.idle() >= r.minClaim() {
			continue // more is waiting and there is room for it
		}
		// Waiting on freed only after a full claim avoids an empty claim
		// each time a worker finishes while the outbox is drained.
		var freed <-chan struct{}
		if full {
			freed = r.freed
		}
		r.wait(ctx, ticker.C, freed)
	}
	return nil
}

// wait returns on a Wake, a poll or the end of ctx, or, when freed is not
// nil, once MinClaim workers are idle.
func (r *runner[T]) wait(ctx context.Context, tick <-chan time.Time, freed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.cfg.Wake:
			return
		case <-tick:
			return
		case <-freed:
			if r.idle() >= r.minClaim() {
				return
			}
		}
	}
}

func (r *runner[T]) idle() int { return cap(r.slots) - len(r.slots) }

func (r *runner[T]) minClaim() int {
	return max(1, min(r.cfg.MinClaim, r.cfg.Workers, r.cfg.Batch))
}

type runner[T any] struct {
	cfg   Config[T]
	slots chan struct{} // one token per item in flight
	freed chan struct{} // a worker finished since the last claim
	wg    sync.WaitGroup
}

// claim leases as many items as there are idle workers, up to Batch, and
// starts one goroutine per item. It reports whether it got all it asked
// for; with no idle worker it asks for nothing and reports true. The
// workers are taken before the claim, so a Direct reservation meanwhile
// cannot leave claimed items waiting (their leases running) for a worker.
func (r *runner[T]) claim(ctx context.Context) (bool, error) {
	limit := 0
	for limit < r.cfg.Batch && r.take() {
		limit++
	}
	if limit == 0 {
		return true, nil
	}
	items, err := r.cfg.Claim(ctx, limit)
	for range limit - len(items) {
		r.free()
	}
	if err != nil {
		return false, err
	}
	for i := range items {
		r.start(ctx, &items[i])
	}
	return len(items) == limit, nil
}

// take takes an idle worker's slot without waiting.
func (r *runner[T]) take() bool {
	select {
	case r.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// free gives a slot back and tells Run a worker is idle.
func (r *runner[T]) free() {
	<-r.slots
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// start processes item in a goroutine on a slot already taken.
func (r *runner[T]) start(ctx context.Context, item *T) {
	r.wg.Go(func() {
		defer r.free()
		r.cfg.Process(ctx, item)
	})
}

// Direct hands items to Run's workers without a claim. A writer that can
// reserve idle workers before it writes its items leases them in the same
// transaction (so no claim takes them) and dispatches them once written:
// the claim's write transaction, and the wait for the next claim, are
// saved. What the writer could not reserve is left unleased for Claim.
type Direct[T any] struct {
	mu  sync.Mutex
	ctx context.Context
	r   *runner[T] // nil while Run is not running
}

func (d *Direct[T]) attach(ctx context.Context, r *runner[T]) {
	d.mu.Lock()
	d.ctx, d.r = ctx, r
	d.mu.Unlock()
}

func (d *Direct[T]) detach() {
	d.mu.Lock()
	d.ctx, d.r = nil, nil
	d.mu.Unlock()
}

// Reservation is idle workers taken for items about to be written.
type Reservation[T any] struct {
	d *Direct[T]
	r *runner[T]
	n int
}

// Reserve takes n idle workers, all or none, without waiting; nil when
// fewer are idle or Run is not running.
func (d *Direct[T]) Reserve(n int) *Reservation[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.r == nil || n <= 0 {
		return nil
	}
	for i := range n {
		if !d.r.take() {
			for range i {
				d.r.free()
			}
			return nil
		}
	}
	return &Reservation[T]{d: d, r: d.r, n: n}
}

// Release gives the workers back unused (the write failed).
func (res *Reservation[T]) Release() {
	for range res.n {
		res.r.free()
	}
}

// Dispatch processes items, at most the reserved number, on the reserved
// workers, and gives back the workers left over. It returns false when
// that Run has stopped since: the items are not processed and stay leased
// in the store until their lease ends.
func (res *Reservation[T]) Dispatch(items []T) bool {
	d := res.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.r != res.r {
		return false // Run ended: its slots went with it
	}
	items = items[:min(len(items), res.n)]
	for i := range items {
		d.r.start(d.ctx, &items[i])
	}
	for range res.n - len(items) {
		res.r.free()
	}
	return true
}
