package push

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

// finishRecorder is a store that only records FinishAttempts calls. When
// gate is set, the first call waits on it, so the test can queue more
// outcomes behind a commit in progress.
type finishRecorder struct {
	store.Store
	gate    chan struct{}
	started chan struct{}
	bad     int64 // a delivery ID whose finish fails with ErrNotFound

	mu     sync.Mutex
	calls  [][]int64
	stored map[int64]bool
}

func (r *finishRecorder) FinishAttempts(_ context.Context, fs []store.Finish) error {
	r.mu.Lock()
	first := len(r.calls) == 0
	ids := make([]int64, len(fs))
	for i, f := range fs {
		ids[i] = f.Delivery.ID
	}
	r.calls = append(r.calls, ids)
	r.mu.Unlock()
	if first && r.gate != nil {
		close(r.started)
		<-r.gate
	}
	for _, id := range ids {
		if id == r.bad {
			return fmt.Errorf("delivery %d: %w", id, store.ErrNotFound)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.stored[id] = true
	}
	return nil
}

func (r *finishRecorder) commits() [][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *finishRecorder) queued(g *groupCommit[store.Finish]) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

func finishOf(id int64) store.Finish {
	return store.Finish{Delivery: &store.Delivery{ID: id}}
}

func TestGroupCommitSharesCommits(t *testing.T) {
	tests := []struct {
		name    string
		waiting int   // outcomes queued behind the first commit
		bad     int64 // a delivery that cannot be recorded (0: none)
	}{
		{name: "one group", waiting: 10},
		{name: "more than maxGroup", waiting: maxGroup + 20},
		{name: "one bad outcome fails alone", waiting: 10, bad: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &finishRecorder{gate: make(chan struct{}), started: make(chan struct{}), bad: tt.bad, stored: map[int64]bool{}}
			g := newGroupCommit(rec.FinishAttempts, nil)
			n := tt.waiting + 1
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			wg.Go(func() { errs[1] = g.record(t.Context(), finishOf(1)) })
			<-rec.started // the first leader is committing alone
			for id := 2; id <= n; id++ {
				wg.Go(func() { errs[id] = g.record(t.Context(), finishOf(int64(id))) })
			}
			checkFor(t, 10*time.Second, time.Millisecond, func() error {
				if q := rec.queued(g); q != tt.waiting {
					return fmt.Errorf("%d outcomes queued behind the commit, want %d", q, tt.waiting)
				}
				return nil
			})
			close(rec.gate)
			wg.Wait()

			for id := 1; id <= n; id++ {
				if int64(id) == tt.bad {
					if !errors.Is(errs[id], store.ErrNotFound) {
						t.Errorf("bad outcome %d: err = %v, want ErrNotFound", id, errs[id])
					}
					continue
				}
				if errs[id] != nil || !rec.stored[int64(id)] {
					t.Errorf("outcome %d: err = %v, stored = %v", id, errs[id], rec.stored[int64(id)])
				}
			}
			commits := rec.commits()
			if len(commits[0]) != 1 {
				t.Fatalf("first commit = %v, want the first outcome alone", commits[0])
			}
			for _, c := range commits {
				if len(c) > maxGroup {
					t.Fatalf("a commit of %d outcomes, over maxGroup %d", len(c), maxGroup)
				}
			}
			groups := (tt.waiting + maxGroup - 1) / maxGroup
			want := 1 + groups
			if tt.bad != 0 {
				want += tt.waiting // the failed group is written again one by one
			}
			if len(commits) != want {
				t.Fatalf("%d commits for %d outcomes, want %d: %v", len(commits), n, want, commits)
			}
		})
	}
}

func TestGroupCommitAloneAndSequential(t *testing.T) {
	rec := &finishRecorder{stored: map[int64]bool{}}
	g := newGroupCommit(rec.FinishAttempts, nil)
	for id := int64(1); id <= 3; id++ {
		if err := g.record(t.Context(), finishOf(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(rec.commits()); got != 3 {
		t.Fatalf("%d commits for 3 sequential outcomes, want 3", got)
	}
	if g.leading || len(g.queue) != 0 {
		t.Fatalf("left leading=%v with %d queued", g.leading, len(g.queue))
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	rec := &finishRecorder{stored: map[int64]bool{}}
	g := newGroupCommit(rec.FinishAttempts, nil)
	const workers, each = 32, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := g.record(context.Background(), finishOf(int64(w*each+i+1))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(rec.stored) != workers*each {
		t.Fatalf("%d outcomes stored, want %d", len(rec.stored), workers*each)
	}
	if g.leading || len(g.queue) != 0 {
		t.Fatalf("left leading=%v with %d queued", g.leading, len(g.queue))
	}
}

// ctxRecorder fails a write whose context is done, as a store does.
type ctxRecorder struct{ finishRecorder }

func (r *ctxRecorder) FinishAttempts(ctx context.Context, fs []store.Finish) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.finishRecorder.FinishAttempts(ctx, fs)
}

func TestGroupCommitOutlivesTheLeadersContext(t *testing.T) {
	rec := &ctxRecorder{finishRecorder{stored: map[int64]bool{}}}
	g := newGroupCommit(rec.FinishAttempts, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the leader's client went away before it recorded
	if err := g.record(ctx, finishOf(1)); err != nil {
		t.Fatalf("record with a cancelled context: %v; the group's write must not depend on it", err)
	}
	if !rec.stored[1] {
		t.Fatal("outcome not stored")
	}
}
