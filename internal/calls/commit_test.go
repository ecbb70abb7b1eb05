package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/store"
)

// checkFor polls cond until it holds, failing the test after d.
func checkFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gatedStore is a CallStore whose first write waits at the gate, so that
// the writes that arrive meanwhile queue up; fail makes the writes of a
// call (or, for "*", every write) fail with that error.
type gatedStore struct {
	store.CallStore
	gate chan struct{} // nil: no gate; closed: open

	mu      sync.Mutex
	gated   bool
	fail    map[string]error
	batches [][]string // the calls of each write, in order
}

func (g *gatedStore) write(ctx context.Context, calls []*store.Call, put func() error) error {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	g.mu.Lock()
	g.batches = append(g.batches, ids)
	wait := g.gate != nil && !g.gated
	g.gated = g.gated || wait
	var err error
	for _, id := range ids {
		if e := g.fail[id]; e != nil {
			err = fmt.Errorf("put call %s: %w", id, e)
		}
	}
	if e := g.fail["*"]; e != nil {
		err = e
	}
	g.mu.Unlock()
	if wait {
		<-g.gate
	}
	if err != nil {
		return err
	}
	return put()
}

func (g *gatedStore) PutCall(ctx context.Context, c *store.Call) error {
	return g.write(ctx, []*store.Call{c}, func() error { return g.CallStore.PutCall(ctx, c) })
}

func (g *gatedStore) PutCalls(ctx context.Context, cs []*store.Call) error {
	return g.write(ctx, cs, func() error { return g.CallStore.PutCalls(ctx, cs) })
}

func (g *gatedStore) PutCallsWithPushes(ctx context.Context, cs []*store.Call, ps []store.PushWithDeliveries) error {
	return g.write(ctx, cs, func() error { return g.CallStore.PutCallsWithPushes(ctx, cs, ps) })
}

func (g *gatedStore) Batches() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

func TestCommitter(t *testing.T) {
	unavailable := fmt.Errorf("database is locked: %w", store.ErrUnavailable)
	tests := []struct {
		name        string
		fail        map[string]error
		wantBatches [][]string
		wantErr     map[string]error // by call; nil: succeeds
	}{
		{
			name:        "changes that arrive during a write share the next",
			wantBatches: [][]string{{"c0"}, {"c1", "c2", "c3"}},
		},
		{
			name:        "a failed batch fails each change",
			fail:        map[string]error{"*": unavailable},
			wantBatches: [][]string{{"c0"}, {"c1", "c2", "c3"}},
			wantErr:     map[string]error{"c0": store.ErrUnavailable, "c1": store.ErrUnavailable, "c2": store.ErrUnavailable, "c3": store.ErrUnavailable},
		},
		{
			name: "a call refused in a batch fails alone",
			fail: map[string]error{"c2": store.ErrConflict},
			// The batch fails for c2's sake: each is written again alone.
			wantBatches: [][]string{{"c0"}, {"c1", "c2", "c3"}, {"c1"}, {"c2"}, {"c3"}},
			wantErr:     map[string]error{"c2": store.ErrConflict},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			gs := &gatedStore{CallStore: e.st, gate: make(chan struct{}), fail: tt.fail}
			g := newCommitter(gs, e.push)
			errs := make([]error, 4)
			pushIDs := make([]string, 4)
			var wg sync.WaitGroup
			put := func(i int) {
				c := &store.Call{ID: fmt.Sprint("c", i), SDKAppID: testApp, Caller: "alice", State: store.CallRinging, Seq: 1}
				st, err := e.push.Stage(context.Background(), testApp, "bob", nil, push.Request{Body: "ring"})
				if err != nil {
					t.Fatal(err)
				}
				pushIDs[i] = st.ID
				wg.Go(func() {
					errs[i] = g.Do(context.Background(), callWrite{call: c, pushes: []*push.Staged{st}})
				})
			}
			put(0)
			checkFor(t, 5*time.Second, "the first write", func() bool { return len(gs.Batches()) == 1 })
			for i := 1; i < 4; i++ {
				put(i) // one at a time, so that they queue in order
				checkFor(t, 5*time.Second, "a queued change", func() bool { return g.Queued() == i })
			}
			close(gs.gate)
			wg.Wait()
			for i, err := range errs {
				id := fmt.Sprint("c", i)
				want := tt.wantErr[id]
				if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
					t.Errorf("%s: error %v, want %v", id, err, want)
				}
				_, gotErr := e.st.Call(context.Background(), testApp, id)
				if stored := gotErr == nil; stored != (want == nil) {
					t.Errorf("%s: stored %v (%v), want %v", id, stored, gotErr, want == nil)
				}
				// The change's push goes out with it, or not at all.
				sent := slices.ContainsFunc(e.push.Submits(), func(s submitted) bool { return s.ID == pushIDs[i] })
				if sent != (want == nil) {
					t.Errorf("%s: its push sent %v, want %v", id, sent, want == nil)
				}
			}
			if p := e.push.Pending(); len(p) != 0 {
				t.Errorf("pushes neither sent nor dropped: %v", p)
			}
			if got := gs.Batches(); !slices.EqualFunc(got, tt.wantBatches, slices.Equal) {
				t.Errorf("batches %q, want %q", got, tt.wantBatches)
			}
			if g.Queued() != 0 {
				t.Errorf("committer left busy: %d queued", g.Queued())
			}
		})
	}
}

// Changes of different calls that share a failed transaction each fail:
// every call stays as it was, in memory and in the store, and nobody is
// told of a change that was not stored.
func TestGroupCommitFailureLeavesCallsUnchanged(t *testing.T) {
	e := newEnv(t)
	gs := &gatedStore{CallStore: e.st}
	e.svc.commit = newCommitter(gs, e.push)
	const n = 4
	var ids []string
	for i := range n {
		callee := fmt.Sprint("callee", i)
		e.connect(callee, "phone", bus.Foreground)
		c := e.invite(fmt.Sprint("caller", i), InviteRequest{Invitees: []string{callee}})
		ids = append(ids, c.CallID)
		e.wantEvents(callee, "phone", EventInvited)
	}
	before := make([]*Call, n)
	for i, id := range ids {
		before[i] = e.stored(id)
	}

	gs.mu.Lock()
	gs.gate = make(chan struct{})
	gs.fail = map[string]error{"*": fmt.Errorf("disk I/O error: %w", store.ErrUnavailable)}
	gs.mu.Unlock()
	first := len(gs.Batches())
	errs := make([]error, n)
	var wg sync.WaitGroup
	accept := func(i int) {
		wg.Go(func() {
			_, errs[i] = e.svc.Accept(context.Background(), actor(fmt.Sprint("callee", i), "phone"), ids[i])
		})
	}
	accept(0)
	checkFor(t, 5*time.Second, "the first write", func() bool { return len(gs.Batches()) == first+1 })
	for i := 1; i < n; i++ {
		accept(i)
	}
	checkFor(t, 5*time.Second, "the other changes queued", func() bool { return e.svc.commit.Queued() == n-1 })
	close(gs.gate)
	wg.Wait()

	if got := gs.Batches()[first:]; len(got) != 2 || len(got[1]) != n-1 {
		t.Fatalf("writes %q, want one alone then one of %d calls", got, n-1)
	}
	for i, id := range ids {
		if !errors.Is(errs[i], store.ErrUnavailable) {
			t.Errorf("accept %d: error %v, want the store's", i, errs[i])
		}
		got, err := e.svc.Get(context.Background(), testApp, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateRinging || got.Seq != before[i].Seq || outcomes(got) != outcomes(before[i]) {
			t.Errorf("call %d in memory: %s seq %d %s, want it unchanged", i, got.State, got.Seq, outcomes(got))
		}
		if s := e.stored(id); s.State != StateRinging || s.Seq != before[i].Seq {
			t.Errorf("call %d stored: %s seq %d, want it unchanged", i, s.State, s.Seq)
		}
		e.wantEvents(fmt.Sprint("callee", i), "phone")
	}

	// Once the store is back, the same changes go through.
	gs.mu.Lock()
	gs.fail = nil
	gs.mu.Unlock()
	for i, id := range ids {
		c, err := e.svc.Accept(context.Background(), actor(fmt.Sprint("callee", i), "phone"), id)
		if err != nil || c.State != StateAnswered {
			t.Fatalf("accept %d after the outage: %v", i, err)
		}
	}
}

// gatedPusher holds its first Expire at the gate, so that others queue.
type gatedPusher struct {
	*fakePusher
	gate   chan struct{}
	mu     sync.Mutex
	calls  int
	failOn string // a reason whose Expire fails
}

func (g *gatedPusher) Expire(ctx context.Context, ids []string, reason string) error {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		<-g.gate
	}
	if reason == g.failOn {
		return errors.New("outbox unavailable")
	}
	return g.fakePusher.Expire(ctx, ids, reason)
}

func (g *gatedPusher) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// Ring pushes stopped by concurrent changes are expired in one Expire per
// reason, and each change learns its own group's outcome.
func TestExpirerBatches(t *testing.T) {
	p := &gatedPusher{fakePusher: &fakePusher{}, gate: make(chan struct{}), failOn: "call_declined"}
	x := newExpirer(p)
	reqs := []pushExpiry{
		{[]string{"p0"}, "call_accepted"},
		{[]string{"p1", "p2"}, "call_timeout"},
		{[]string{"p3"}, "call_declined"},
		{[]string{"p4"}, "call_timeout"},
	}
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { errs[i] = x.Do(context.Background(), r) })
		if i == 0 {
			checkFor(t, 5*time.Second, "the first Expire", func() bool { return p.Calls() == 1 })
		} else {
			checkFor(t, 5*time.Second, "a queued expiry", func() bool { return x.Queued() == i })
		}
	}
	close(p.gate)
	wg.Wait()
	want := []expiry{
		{[]string{"p0"}, "call_accepted"},
		{[]string{"p1", "p2", "p4"}, "call_timeout"},
	}
	got := p.Expiries()
	if len(got) != len(want) {
		t.Fatalf("expiries %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i].IDs, want[i].IDs) || got[i].Reason != want[i].Reason {
			t.Errorf("expiry %d: %v, want %v", i, got[i], want[i])
		}
	}
	for i, err := range errs {
		if failed := err != nil; failed != (reqs[i].reason == "call_declined") {
			t.Errorf("expiry %d (%s): error %v", i, reqs[i].reason, err)
		}
	}
}
