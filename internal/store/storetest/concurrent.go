package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ringd/ringd/internal/store"
)

// Writes of different kinds made at once each keep their own outcome and
// atomicity, also when some of them fail: one that fails must not take
// the others with it, nor leave half of itself behind, nor count twice
// what it reports. (This guards any batching of writes across kinds, such
// as the shared transactions tried in docs/performance.md.)
func testConcurrentWritesOfManyKinds(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	const rounds, perKind = 5, 8
	for r := range rounds {
		// Pushes to expire, written first: each has one pending delivery.
		for i := range perKind {
			id := fmt.Sprintf("exp-%d-%d", r, i)
			must(t, s.CreatePush(ctx, newPush(app, "carol", id, 0), []*store.Delivery{newDelivery(id, 0)}))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*perKind)
		for i := range perKind {
			good := fmt.Sprintf("good-%d-%d", r, i)
			bad := fmt.Sprintf("bad-%d-%d", r, i)
			wg.Go(func() {
				if err := s.CreatePush(ctx, newPush(app, "alice", good, 0), []*store.Delivery{newDelivery(good, 0)}); err != nil {
					errs <- fmt.Errorf("valid push %s: %w", good, err)
				}
			})
			wg.Go(func() {
				// An unknown app: refused by its foreign key, after its push
				// row would have been written.
				err := s.CreatePush(ctx, newPush(app+1, "mallory", bad, 0), []*store.Delivery{newDelivery(bad, 0)})
				if !errors.Is(err, store.ErrNotFound) {
					errs <- fmt.Errorf("push of an unknown app %s: %v, want ErrNotFound", bad, err)
				}
			})
			wg.Go(func() {
				id := fmt.Sprintf("exp-%d-%d", r, i)
				n, err := s.ExpirePushes(ctx, []string{id}, "call ended", at(10))
				if err != nil || n != 1 {
					errs <- fmt.Errorf("expire %s: %d, %v; want 1 delivery", id, n, err)
				}
			})
			wg.Go(func() {
				c := newCall(app, fmt.Sprintf("call-%d-%d", r, i), "alice", 0)
				if err := s.PutCall(ctx, c); err != nil {
					errs <- fmt.Errorf("call %s: %w", c.ID, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range perKind {
			if _, err := s.Push(ctx, app, fmt.Sprintf("good-%d-%d", r, i)); err != nil {
				t.Errorf("valid push of round %d: %v", r, err)
			}
			if _, err := s.Push(ctx, app+1, fmt.Sprintf("bad-%d-%d", r, i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused push left its row behind: %v", err)
			}
			if _, err := s.Call(ctx, app, fmt.Sprintf("call-%d-%d", r, i)); err != nil {
				t.Errorf("call of round %d: %v", r, err)
			}
		}
	}
}
