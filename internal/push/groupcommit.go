package push

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/ringd/ringd/internal/store"
)

// maxGroup bounds one group commit, so a transaction stays short and a
// worker's wait for its own outcome stays bounded.
const maxGroup = 256

// groupCommit records the outcomes of concurrent workers in shared
// transactions. Each worker still waits until its own outcome is on disk
// before it counts, logs or reports it; what changes is that the workers
// waiting at the same moment pay one commit between them instead of one
// each, which on SQLite is the difference between a WAL write per push
// and one per group.
//
// There is no goroutine of its own: the first worker to arrive while no
// commit runs leads. It commits everything queued (its own outcome among
// it, up to maxGroup), then hands the lead to the oldest worker still
// waiting, so no worker commits for others for longer than one group.
type groupCommit struct {
	st store.Store
	m  *Metrics

	mu      sync.Mutex
	queue   []*outcome
	leading bool
}

// outcome is one worker's Finish and the answer it waits for.
type outcome struct {
	f    store.Finish
	done chan error // errLead, or the result of the commit
}

// errLead tells a waiting worker that it leads the next group.
var errLead = errors.New("push: lead the next group commit")

func newGroupCommit(st store.Store, m *Metrics) *groupCommit { return &groupCommit{st: st, m: m} }

// record writes f, together with whatever other workers record meanwhile,
// and returns once it is committed or has failed.
func (g *groupCommit) record(ctx context.Context, f store.Finish) error {
	o := &outcome{f: f, done: make(chan error, 1)}
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
	// Let the workers that are ready to record run first, so they join
	// this group. With one CPU (GOMAXPROCS=1, a pinned process) nothing
	// else runs during a commit, and without this yield every group would
	// be the leader alone.
	runtime.Gosched()
	g.mu.Lock()
	group := g.take()
	g.mu.Unlock()

	g.commit(ctx, group)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead // leading stays true for the next leader
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return <-o.done
}

// take removes up to maxGroup outcomes from the queue, oldest first. The
// caller is the leader, whose own outcome is the oldest: it is always in
// its group.
func (g *groupCommit) take() []*outcome {
	n := min(len(g.queue), maxGroup)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil // let the backing array go
	}
	return group
}

// commit writes the group in one transaction. When that fails, each
// outcome is written alone, so one delivery that cannot be recorded (its
// app was deleted meanwhile, say) fails only its own worker.
func (g *groupCommit) commit(ctx context.Context, group []*outcome) {
	fs := make([]store.Finish, len(group))
	for i, o := range group {
		fs[i] = o.f
	}
	g.m.group(len(fs))
	err := g.st.FinishAttempts(ctx, fs)
	if err == nil || len(group) == 1 {
		for _, o := range group {
			o.done <- err
		}
		return
	}
	for i, o := range group {
		o.done <- g.st.FinishAttempts(ctx, fs[i:i+1])
	}
}
