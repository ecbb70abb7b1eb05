package push

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// maxGroup bounds one group commit, so a transaction stays short and a
// worker's wait for its own outcome stays bounded.
const maxGroup = 256

// commitTimeout bounds one group's writes (SQLite's busy_timeout is 5 s).
const commitTimeout = 15 * time.Second

// groupCommit writes the items of concurrent callers in shared
// transactions: the outcomes of the workers, and the pushes that calls
// submit one at a time. Each caller still waits until its own item is on
// disk before it goes on (counts, logs, reports, wakes the workers); what
// changes is that the callers waiting at the same moment pay one commit
// between them instead of one each, which on SQLite is the difference
// between a WAL write per push and one per group.
//
// There is no goroutine of its own: the first caller to arrive while no
// commit runs leads. It commits everything queued (its own item among it,
// up to maxGroup), then hands the lead to the oldest caller still waiting,
// so no caller commits for others for longer than one group.
type groupCommit[T any] struct {
	// write stores items in one transaction, all or none.
	write   func(ctx context.Context, items []T) error
	observe func(n int) // group sizes, for a metric; may be nil

	mu      sync.Mutex
	queue   []*waiter[T]
	leading bool
}

// waiter is one caller's item and the answer it waits for.
type waiter[T any] struct {
	item T
	done chan error // errLead, or the result of the commit
}

// errLead tells a waiting worker that it leads the next group.
var errLead = errors.New("push: lead the next group commit")

func newGroupCommit[T any](write func(context.Context, []T) error, observe func(int)) *groupCommit[T] {
	return &groupCommit[T]{write: write, observe: observe}
}

// record writes item, together with whatever other callers record
// meanwhile, and returns once it is committed or has failed.
func (g *groupCommit[T]) record(ctx context.Context, item T) error {
	o := &waiter[T]{item: item, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, o)
	if g.leading {
		g.mu.Unlock()
		if err := <-o.done; err != errLead {
			return err
		}
		g.mu.Lock() // the lead was handed over with leading still set
	}
	g.leading = true
	g.mu.Unlock()
	// Let the callers that are ready to record run first, so they join
	// this group. With one CPU (GOMAXPROCS=1, a pinned process) nothing
	// else runs during a commit, and without this yield every group would
	// be the leader alone.
	runtime.Gosched()
	g.mu.Lock()
	group := g.take()
	g.mu.Unlock()

	// The group is everyone's: the leader's cancellation (a client gone
	// from its request) must not fail the others' items.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	g.commit(cctx, group)
	cancel()

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead // leading stays true for the next leader
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return <-o.done
}

// take removes up to maxGroup items from the queue, oldest first. The
// caller is the leader, whose own item is the oldest: it is always in its
// group.
func (g *groupCommit[T]) take() []*waiter[T] {
	n := min(len(g.queue), maxGroup)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil // let the backing array go
	}
	return group
}

// commit writes the group in one transaction. When that fails, each item
// is written alone, so one that cannot be (a delivery whose app was
// deleted meanwhile, say) fails only its own caller.
func (g *groupCommit[T]) commit(ctx context.Context, group []*waiter[T]) {
	items := make([]T, len(group))
	for i, o := range group {
		items[i] = o.item
	}
	if g.observe != nil {
		g.observe(len(items))
	}
	err := g.write(ctx, items)
	if err == nil || len(group) == 1 {
		for _, o := range group {
			o.done <- err
		}
		return
	}
	for i, o := range group {
		o.done <- g.write(ctx, items[i:i+1])
	}
}
