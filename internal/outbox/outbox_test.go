package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in a synctest bubble: time is fake and only moves when every
// goroutine is blocked, synctest.Wait returns once Run and its workers are
// idle, and synctest.Test fails if a goroutine is left behind.

// fakeOutbox is a queue of items that Run claims from and processes. An
// item's Process blocks until the test lets it finish.
type fakeOutbox struct {
	release chan struct{} // each receive lets one item finish

	mu        sync.Mutex
	next      int   // the next item to hand out
	items     int   // how many items there are in all
	limits    []int // the limit of each claim
	claimedAt []time.Time
	claimErrs []error // returned by the first claims, in order
	active    int     // items inside Process
	maxActive int
	done      int
	overbook  string // set when a claim asked for more than the idle workers
	workers   int
}

func newFakeOutbox(workers, items int) *fakeOutbox {
	return &fakeOutbox{release: make(chan struct{}), workers: workers, items: items}
}

func (f *fakeOutbox) claim(_ context.Context, limit int) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits = append(f.limits, limit)
	f.claimedAt = append(f.claimedAt, time.Now())
	if limit+f.active > f.workers && f.overbook == "" {
		f.overbook = fmt.Sprintf("claim of %d with %d active of %d workers", limit, f.active, f.workers)
	}
	if len(f.claimErrs) > 0 {
		err := f.claimErrs[0]
		f.claimErrs = f.claimErrs[1:]
		return nil, err
	}
	var out []int
	for ; f.next < f.items && len(out) < limit; f.next++ {
		out = append(out, f.next)
	}
	return out, nil
}

func (f *fakeOutbox) process(_ context.Context, _ *int) {
	f.mu.Lock()
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	f.mu.Unlock()
	<-f.release
	f.mu.Lock()
	f.active--
	f.done++
	f.mu.Unlock()
}

type snapshot struct{ claims, active, maxActive, done int }

func (f *fakeOutbox) snapshot() snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return snapshot{claims: len(f.limits), active: f.active, maxActive: f.maxActive, done: f.done}
}

func (f *fakeOutbox) config(workers, batch int, poll time.Duration) Config[int] {
	return Config[int]{Workers: workers, Batch: batch, PollInterval: poll, Claim: f.claim, Process: f.process}
}

// start runs Run in the bubble; stop cancels it and returns its error.
func start(t *testing.T, cfg Config[int]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	return func() error {
		cancel()
		return <-done
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	tests := []struct {
		name           string
		workers, batch int
		items          int
		wantFirst      []int // limits of the claims before any item finishes
	}{
		{name: "one worker", workers: 1, batch: 10, items: 5, wantFirst: []int{1}},
		{name: "batch above workers", workers: 3, batch: 10, items: 20, wantFirst: []int{3}},
		{name: "batch below workers fills them at once", workers: 5, batch: 2, items: 20, wantFirst: []int{2, 2, 1}},
		{name: "fewer items than workers", workers: 8, batch: 3, items: 4, wantFirst: []int{3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeOutbox(tt.workers, tt.items)
				stop := start(t, f.config(tt.workers, tt.batch, time.Second))
				synctest.Wait()
				f.mu.Lock()
				limits := append([]int(nil), f.limits...)
				f.mu.Unlock()
				if fmt.Sprint(limits) != fmt.Sprint(tt.wantFirst) {
					t.Errorf("first claims asked for %v, want %v", limits, tt.wantFirst)
				}
				if got, want := f.snapshot().active, min(tt.workers, tt.items); got != want {
					t.Errorf("%d items in flight, want %d", got, want)
				}
				// Let the items finish one at a time, each freeing a worker.
				for range tt.items {
					f.release <- struct{}{}
					synctest.Wait()
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				s := f.snapshot()
				if s.done != tt.items || s.maxActive != min(tt.workers, tt.items) {
					t.Errorf("done %d of %d, at most %d at once; want at most %d", s.done, tt.items, s.maxActive, tt.workers)
				}
				if f.overbook != "" {
					t.Error(f.overbook)
				}
			})
		})
	}
}

func TestRunClaimsWhenAWorkerFrees(t *testing.T) {
	tests := []struct {
		name       string
		items      int
		wantClaims int // after one item finishes, before any poll
	}{
		// The claim got all it asked for: more is likely due, so a free
		// worker claims again without waiting for the poll.
		{name: "after a full claim", items: 3, wantClaims: 2},
		// The claim got less: the outbox is drained, and a finished item
		// does not query it again.
		{name: "after a partial claim", items: 1, wantClaims: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeOutbox(2, tt.items)
				stop := start(t, f.config(2, 2, time.Hour))
				began := time.Now()
				synctest.Wait()
				if s := f.snapshot(); s.claims != 1 {
					t.Fatalf("%d claims at start, want 1", s.claims)
				}
				f.release <- struct{}{}
				synctest.Wait()
				if s := f.snapshot(); s.claims != tt.wantClaims {
					t.Errorf("%d claims after a worker freed, want %d", s.claims, tt.wantClaims)
				}
				if d := time.Since(began); d != 0 {
					t.Errorf("claimed after %v, want at once", d)
				}
				close(f.release)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestRunClaimsOnWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOutbox(2, 0)
		wake := make(chan struct{}, 1)
		afterClaim := 0
		cfg := f.config(2, 2, time.Hour)
		cfg.Wake = wake
		cfg.AfterClaim = func(context.Context) { afterClaim++ }
		stop := start(t, cfg)
		began := time.Now()
		synctest.Wait()
		if s := f.snapshot(); s.claims != 1 {
			t.Fatalf("%d claims at start, want 1", s.claims)
		}
		f.mu.Lock()
		f.items = 1 // an item is queued, then Run is woken
		f.mu.Unlock()
		wake <- struct{}{}
		synctest.Wait()
		if s := f.snapshot(); s.claims != 2 || s.active != 1 {
			t.Errorf("after the wake-up: %d claims, %d in flight; want 2, 1", s.claims, s.active)
		}
		if d := time.Since(began); d != 0 {
			t.Errorf("claimed after %v, want at once", d)
		}
		close(f.release)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if afterClaim != f.snapshot().claims {
			t.Errorf("AfterClaim called %d times for %d claims", afterClaim, f.snapshot().claims)
		}
	})
}

func TestRunWaitsForItemsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOutbox(2, 2)
		cfg := f.config(2, 2, time.Hour)
		var sawCancel [2]bool
		cfg.Process = func(ctx context.Context, item *int) {
			f.process(ctx, item)
			sawCancel[*item] = ctx.Err() != nil // Run's ctx, cancelled by then
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg) }()
		synctest.Wait()
		if s := f.snapshot(); s.active != 2 {
			t.Fatalf("%d items in flight, want 2", s.active)
		}
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) with 2 items in flight", err)
		default:
		}
		f.release <- struct{}{}
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) with an item in flight", err)
		default:
		}
		f.release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := f.snapshot(); s.done != 2 || s.claims != 1 {
			t.Errorf("done %d, claims %d; want 2, 1 (no claim after cancel)", s.done, s.claims)
		}
		if sawCancel != [2]bool{true, true} {
			t.Errorf("items saw their ctx cancelled: %v, want both", sawCancel)
		}
	})
}

func TestRunRetriesClaimErrorsOnTheNextPoll(t *testing.T) {
	const poll = 5 * time.Second
	synctest.Test(t, func(t *testing.T) {
		errDown := errors.New("store down")
		f := newFakeOutbox(2, 1)
		f.claimErrs = []error{errDown, errDown}
		cfg := f.config(2, 2, poll)
		var reported []error
		cfg.OnError = func(err error) { reported = append(reported, err) }
		started := make(chan struct{})
		cfg.Process = func(ctx context.Context, item *int) {
			close(started)
			f.process(ctx, item)
		}
		stop := start(t, cfg)
		// Two failed claims, each followed by a whole poll interval (fake
		// time moves while everything waits), then the item is claimed.
		<-started
		close(f.release)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(reported) != 2 || !errors.Is(reported[0], errDown) || !errors.Is(reported[1], errDown) {
			t.Errorf("reported %v, want the two claim errors", reported)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.claimedAt) < 3 {
			t.Fatalf("%d claims, want at least 3", len(f.claimedAt))
		}
		for i := 1; i < 3; i++ {
			if d := f.claimedAt[i].Sub(f.claimedAt[i-1]); d != poll {
				t.Errorf("claim %d came %v after a failed one, want the poll interval %v", i+1, d, poll)
			}
		}
	})
}

func TestRunDoesNotReportClaimErrorsAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config[int]{
			Workers: 1, Batch: 1, PollInterval: time.Hour,
			Claim: func(ctx context.Context, _ int) ([]int, error) {
				<-ctx.Done() // a claim cut short by shutdown
				return nil, ctx.Err()
			},
			Process: func(context.Context, *int) {},
			OnError: func(err error) { t.Errorf("reported %v after cancel", err) },
		}
		stop := start(t, cfg)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	valid := func() Config[int] {
		return Config[int]{
			Workers: 1, Batch: 1, PollInterval: time.Second,
			Claim:   func(context.Context, int) ([]int, error) { return nil, nil },
			Process: func(context.Context, *int) {},
		}
	}
	tests := []struct {
		name   string
		change func(*Config[int])
	}{
		{"no workers", func(c *Config[int]) { c.Workers = 0 }},
		{"no batch", func(c *Config[int]) { c.Batch = -1 }},
		{"no poll interval", func(c *Config[int]) { c.PollInterval = 0 }},
		{"no claim", func(c *Config[int]) { c.Claim = nil }},
		{"no process", func(c *Config[int]) { c.Process = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)
			if err := Run(t.Context(), cfg); err == nil {
				t.Error("Run accepted an invalid config")
			}
		})
	}
}

func TestRunClaimsABacklogInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOutbox(4, 12)
		cfg := f.config(4, 4, time.Hour)
		cfg.MinClaim = 2
		stop := start(t, cfg)
		synctest.Wait()
		claims := func(want int, when string) {
			t.Helper()
			if s := f.snapshot(); s.claims != want {
				t.Fatalf("%d claims %s, want %d", s.claims, when, want)
			}
		}
		claims(1, "at start")
		f.release <- struct{}{}
		synctest.Wait()
		claims(1, "with one worker idle, below MinClaim")
		f.release <- struct{}{}
		synctest.Wait()
		claims(2, "with two workers idle")
		close(f.release)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDirectDispatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOutbox(2, 0) // nothing to claim
		d := &Direct[int]{}
		cfg := f.config(2, 2, time.Hour)
		cfg.Direct = d
		if d.Reserve(1) != nil {
			t.Fatal("Reserve before Run started")
		}
		stop := start(t, cfg)
		synctest.Wait()
		if d.Reserve(3) != nil {
			t.Fatal("reserved 3 of 2 workers")
		}
		res := d.Reserve(2)
		if res == nil {
			t.Fatal("could not reserve 2 idle workers")
		}
		if d.Reserve(1) != nil {
			t.Fatal("reserved a worker already reserved")
		}
		if !res.Dispatch([]int{7}) { // one of two used: the other is given back
			t.Fatal("Dispatch while running")
		}
		synctest.Wait()
		if s := f.snapshot(); s.active != 1 {
			t.Fatalf("%d items in flight after dispatching one, want 1", s.active)
		}
		if got := d.Reserve(1); got == nil {
			t.Fatal("the unused reserved worker was not given back")
		} else {
			got.Release()
		}
		close(f.release)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if d.Reserve(1) != nil {
			t.Fatal("Reserve after Run stopped")
		}
		if res.Dispatch([]int{8}) {
			t.Fatal("Dispatch after Run stopped")
		}
	})
}
