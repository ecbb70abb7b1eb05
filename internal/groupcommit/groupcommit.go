// Package groupcommit lets concurrent callers share one store transaction
// (group commit). Each caller still waits until its own item is written
// before it goes on, so whatever it does next (publish an event, report a
// push) happens only once its item is durable; what changes is that the
// callers waiting at the same moment pay one commit between them instead
// of one each. On SQLite, with its single writer connection, that is the
// difference between a WAL write per item and one per group; PostgreSQL
// pays a flush per commit.
//
// A Group has no goroutine of its own: the first caller to arrive while no
// group is being written leads. It writes everything queued (its own item
// first, up to Max), then hands the lead to the oldest caller still
// waiting, so no caller writes for others for longer than one group.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// errMissing answers an item for which Write returned no error value:
// it cannot be taken for written.
var errMissing = errors.New("groupcommit: Write gave no outcome for the item")

// Defaults of Group.
const (
	DefaultMax     = 256              // items in one group
	DefaultTimeout = 15 * time.Second // one group's writes (SQLite's busy_timeout is 5 s)
)

// Group writes the items of concurrent callers in shared groups.
type Group[T any] struct {
	// Write writes items, returning one error per item, in order. It gets
	// a context of its own, not the leader's: the group is everyone's.
	Write func(ctx context.Context, items []T) []error
	// Observe, when set, is told each group's size (for a metric).
	Observe func(n int)
	Max     int           // items per group; DefaultMax when 0
	Timeout time.Duration // bound of one group's Write; DefaultTimeout when 0

	mu      sync.Mutex
	queue   []*waiter[T]
	leading bool
}

type waiter[T any] struct {
	item T
	err  error
	// done gets one value: false once the group holding item is written
	// (err is its outcome), true when this caller leads the next group.
	done chan bool
}

// Do writes item, together with the items of whoever else calls Do
// meanwhile, and returns its outcome once its group is written. It does
// not return early when ctx ends: whether the item was written must be
// known before the caller may report either way; Timeout bounds the wait.
func (g *Group[T]) Do(ctx context.Context, item T) error {
	w := &waiter[T]{item: item, done: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.leading {
		g.mu.Unlock()
		if lead := <-w.done; !lead {
			return w.err
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// w leads: it heads the queue (the lead goes only to the head, and the
	// queue is empty whenever nobody leads). Let the callers that are ready
	// to join run first: pinned to one CPU (GOMAXPROCS=1) nothing else
	// runs during a write, and without this yield every group would be the
	// leader alone.
	runtime.Gosched()
	g.mu.Lock()
	group := g.take()
	g.mu.Unlock()

	// Even when Write panics (and a caller up the stack recovers, as
	// net/http does), the group is answered and the lead handed on:
	// otherwise every later Do would wait for good.
	defer g.handOff(group)
	g.write(ctx, group)
	return w.err
}

// handOff answers the group and passes the lead to the oldest waiter, or
// ends it. A panicking Write left no errors: its group gets one.
func (g *Group[T]) handOff(group []*waiter[T]) {
	if p := recover(); p != nil {
		for _, w := range group {
			w.err = fmt.Errorf("groupcommit: write panicked: %v", p)
		}
		defer panic(p)
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- true // leading stays true for the next leader
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, o := range group[1:] {
		o.done <- false
	}
}

// take removes up to Max items from the queue, oldest first.
func (g *Group[T]) take() []*waiter[T] {
	limit := g.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	n := min(len(g.queue), limit)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil // let the backing array go
	}
	return group
}

func (g *Group[T]) write(ctx context.Context, group []*waiter[T]) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	items := make([]T, len(group))
	for i, w := range group {
		items[i] = w.item
	}
	if g.Observe != nil {
		g.Observe(len(items))
	}
	errs := g.Write(wctx, items)
	for i, w := range group {
		w.err = errMissing
		if i < len(errs) {
			w.err = errs[i]
		}
	}
}

// Queued is how many items wait for a group (for tests and metrics).
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// AllOrEach turns a write of many items in one transaction, all or none,
// into a Group's Write: when the transaction fails and retryAlone(err)
// says the failure may be one item's (a conflict, a row gone), each item
// is written again alone, so that only the bad one fails; otherwise (a
// store that is unavailable) every item gets the error. A nil retryAlone
// always retries alone.
func AllOrEach[T any](write func(ctx context.Context, items []T) error, retryAlone func(error) bool) func(context.Context, []T) []error {
	return func(ctx context.Context, items []T) []error {
		errs := make([]error, len(items))
		err := write(ctx, items)
		if err == nil || len(items) == 1 || ctx.Err() != nil || (retryAlone != nil && !retryAlone(err)) {
			for i := range errs {
				errs[i] = err
			}
			return errs
		}
		for i := range items {
			errs[i] = write(ctx, items[i:i+1])
		}
		return errs
	}
}
