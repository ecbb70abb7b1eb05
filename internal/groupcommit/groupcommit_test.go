package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var errGone = errors.New("gone")

// recorder is a store of ints: a write of a group containing bad fails
// with errGone and writes nothing; when gate is set the first write waits
// on it, so a test can queue items behind a write in progress.
type recorder struct {
	gate    chan struct{}
	started chan struct{}
	bad     int
	down    bool // every write fails: the store is unavailable

	mu     sync.Mutex
	writes [][]int
	stored map[int]bool
}

func newRecorder() *recorder { return &recorder{stored: map[int]bool{}} }

func (r *recorder) write(ctx context.Context, items []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	first := len(r.writes) == 0
	r.writes = append(r.writes, append([]int(nil), items...))
	r.mu.Unlock()
	if first && r.gate != nil {
		close(r.started)
		<-r.gate
	}
	if r.down {
		return errors.New("unavailable")
	}
	for _, it := range items {
		if it == r.bad {
			return fmt.Errorf("item %d: %w", it, errGone)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		r.stored[it] = true
	}
	return nil
}

func (r *recorder) snapshot() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]int(nil), r.writes...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupsShareWrites(t *testing.T) {
	const max = 16
	tests := []struct {
		name       string
		waiting    int  // items queued behind the first write
		bad        int  // an item that cannot be written (0: none)
		down       bool // the store fails every write
		retryAlone func(error) bool
		wantWrites int
	}{
		{name: "one group", waiting: 10, wantWrites: 2},
		{name: "more than Max", waiting: max + 5, wantWrites: 3},
		// The group of 10 fails, then each of its items is written alone.
		{name: "one bad item fails alone", waiting: 10, bad: 5, wantWrites: 2 + 10},
		// Unavailable: no retry alone, every item of the group fails.
		{name: "unavailable fails the group", waiting: 10, down: true,
			retryAlone: func(err error) bool { return errors.Is(err, errGone) }, wantWrites: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.gate, rec.started, rec.bad, rec.down = make(chan struct{}), make(chan struct{}), tt.bad, tt.down
			g := &Group[int]{Write: AllOrEach(rec.write, tt.retryAlone), Max: max}
			n := tt.waiting + 1
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			wg.Go(func() { errs[1] = g.Do(t.Context(), 1) })
			<-rec.started // the first leader writes alone
			for i := 2; i <= n; i++ {
				wg.Go(func() { errs[i] = g.Do(t.Context(), i) })
			}
			waitFor(t, "items queued behind the write", func() bool { return g.Queued() == tt.waiting })
			close(rec.gate)
			wg.Wait()

			for i := 1; i <= n; i++ {
				switch {
				case tt.down:
					if errs[i] == nil {
						t.Errorf("item %d written while the store is down", i)
					}
				case i == tt.bad:
					if !errors.Is(errs[i], errGone) {
						t.Errorf("bad item %d: err = %v, want errGone", i, errs[i])
					}
				case errs[i] != nil || !rec.stored[i]:
					t.Errorf("item %d: err = %v, stored = %v", i, errs[i], rec.stored[i])
				}
			}
			writes := rec.snapshot()
			if len(writes[0]) != 1 {
				t.Fatalf("first write %v, want the first item alone", writes[0])
			}
			for _, w := range writes {
				if len(w) > max {
					t.Fatalf("a write of %d items, over Max %d", len(w), max)
				}
			}
			if len(writes) != tt.wantWrites {
				t.Fatalf("%d writes, want %d: %v", len(writes), tt.wantWrites, writes)
			}
		})
	}
}

func TestSequentialCallersWriteAlone(t *testing.T) {
	rec := newRecorder()
	var sizes []int
	g := &Group[int]{Write: AllOrEach(rec.write, nil), Observe: func(n int) { sizes = append(sizes, n) }}
	for i := 1; i <= 3; i++ {
		if err := g.Do(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.snapshot()) != 3 || len(sizes) != 3 {
		t.Fatalf("%d writes, %d observed, want 3 each", len(rec.snapshot()), len(sizes))
	}
	if g.leading || g.Queued() != 0 {
		t.Fatalf("left leading=%v with %d queued", g.leading, g.Queued())
	}
}

func TestTheWriteOutlivesTheLeadersContext(t *testing.T) {
	rec := newRecorder()
	g := &Group[int]{Write: AllOrEach(rec.write, nil)}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the leader's client went away before it wrote
	if err := g.Do(ctx, 1); err != nil {
		t.Fatalf("Do with a cancelled context: %v; the group's write must not depend on it", err)
	}
	if !rec.stored[1] {
		t.Fatal("item not stored")
	}
}

func TestConcurrentCallers(t *testing.T) {
	rec := newRecorder()
	g := &Group[int]{Write: AllOrEach(rec.write, nil)}
	const callers, each = 32, 50
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if err := g.Do(context.Background(), c*each+i+1); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(rec.stored) != callers*each {
		t.Fatalf("%d items stored, want %d", len(rec.stored), callers*each)
	}
	if g.leading || g.Queued() != 0 {
		t.Fatalf("left leading=%v with %d queued", g.leading, g.Queued())
	}
}

func TestAPanickingWriteDoesNotStallTheGroup(t *testing.T) {
	calls := 0
	g := &Group[int]{Write: func(_ context.Context, items []int) []error {
		calls++
		if calls == 1 {
			panic("store bug")
		}
		return make([]error, len(items))
	}}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic of Write did not reach the leader's caller")
			}
		}()
		_ = g.Do(t.Context(), 1)
	}()
	done := make(chan error, 1)
	go func() { done <- g.Do(t.Context(), 2) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do after a panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do after a panicking Write waits for good")
	}
}

func TestShortWriteResultIsAnError(t *testing.T) {
	g := &Group[int]{Write: func(context.Context, []int) []error { return nil }}
	if err := g.Do(t.Context(), 1); err == nil {
		t.Fatal("an item Write gave no outcome for counted as written")
	}
}
