package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/store"
)

func claim(t *testing.T, s store.Store, now, lease time.Time, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(t.Context(), now, lease, limit)
	must(t, err)
	return ds
}

func testClaim(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	leased := newDelivery("leased", 0)
	leased.LeaseUntil = at(10)
	done := newDelivery("done", 0)
	done.State = store.DeliveryDelivered
	ds := []*store.Delivery{newDelivery("due-1", 1), newDelivery("later", 5),
		newDelivery("due-0", -1), leased, done}
	must(t, s.CreatePush(ctx, newPush(app, "alice", "push-1", 0), ds))

	got := claim(t, s, at(3), at(63), 10)
	equal(t, "first claim", deliveryTokens(got), []string{"due-0", "due-1"})
	for _, d := range got {
		equal(t, "LeaseUntil of "+d.Token, d.LeaseUntil, at(63))
	}
	equal(t, "claim while leased", len(claim(t, s, at(3), at(63), 10)), 0)

	// Once the leases run out, everything pending is due again.
	got = claim(t, s, at(63), at(120), 10)
	equal(t, "claim after the lease", deliveryTokens(got), []string{"due-0", "leased", "due-1", "later"})
	stored, err := s.Deliveries(ctx, "push-1")
	must(t, err)
	for _, d := range stored {
		if d.State == store.DeliveryPending && !d.LeaseUntil.Equal(at(120)) {
			t.Errorf("stored lease of %s = %v, want %v", d.Token, d.LeaseUntil, at(120))
		}
	}
	equal(t, "claim with limit 0", len(claim(t, s, at(200), at(300), 0)), 0)
}

func testClaimLimit(t *testing.T, open Open) {
	s := open(t)
	mustApp(t, s, app)
	ds := []*store.Delivery{}
	for i := range 5 {
		ds = append(ds, newDelivery(fmt.Sprint("t", i), 5-i))
	}
	must(t, s.CreatePush(t.Context(), newPush(app, "alice", "push-1", 0), ds))
	equal(t, "oldest two", deliveryTokens(claim(t, s, at(10), at(70), 2)), []string{"t4", "t3"})
	equal(t, "next two", deliveryTokens(claim(t, s, at(10), at(70), 2)), []string{"t2", "t1"})
}

// Several workers claim and finish at once: each delivery is leased to
// exactly one of them, and no driver error (SQLITE_BUSY, serialization
// failure) reaches a worker.
func testClaimConcurrent(t *testing.T, open Open) {
	const deliveries, workers = 60, 8
	s := open(t)
	mustApp(t, s, app)
	for p := range 3 {
		toks := []string{}
		for i := range deliveries / 3 {
			toks = append(toks, fmt.Sprintf("p%dt%02d", p, i))
		}
		mustPush(t, s, app, fmt.Sprint("push-", p), toks...)
	}

	var (
		mu      sync.Mutex
		claimed []int64
		wg      sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			ids, err := work(t, s)
			mu.Lock()
			claimed = append(claimed, ids...)
			mu.Unlock()
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}

	slices.Sort(claimed)
	if n := len(slices.Compact(slices.Clone(claimed))); n != len(claimed) {
		t.Errorf("%d claims but %d distinct deliveries: a delivery was leased twice", len(claimed), n)
	}
	equal(t, "deliveries claimed", len(claimed), deliveries)
	n, err := s.OutboxDepth(t.Context())
	must(t, err)
	equal(t, "OutboxDepth after the workers", n, 0)
}

// work is one outbox worker: claim a few, finish each, until none is due.
// It runs off the test goroutine, so it returns errors instead of failing.
func work(t *testing.T, s store.Store) ([]int64, error) {
	var ids []int64
	for {
		ds, err := s.ClaimDeliveries(t.Context(), at(100), at(1000), 3)
		if err != nil || len(ds) == 0 {
			return ids, err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
			d.State, d.Attempts, d.UpdatedAt = store.DeliveryDelivered, 1, at(100)
			a := &store.Attempt{DeliveryID: d.ID, PushID: d.PushID, At: at(100), Status: 200}
			if err := s.FinishAttempt(t.Context(), a, &d); err != nil {
				return ids, err
			}
		}
	}
}

func testFinishAttempt(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	p, _ := mustPush(t, s, app, "push-1", "aa01")
	d := claim(t, s, at(1), at(61), 1)[0]

	// A transient failure: try again at 30s.
	d.Attempts, d.NextAttemptAt, d.Reason, d.UpdatedAt = 1, at(30), "InternalServerError", at(1)
	a := &store.Attempt{DeliveryID: d.ID, PushID: p.ID, At: at(1), Environment: store.EnvProduction,
		Host: "api.push.apple.com", CertificateID: 10001, APNsID: d.APNsID, APNsUniqueID: "u-1",
		Status: 500, Reason: "InternalServerError", Latency: 123456789 * time.Nanosecond,
		Classification: "transient", Diagnosis: "Apple had a problem"}
	must(t, s.FinishAttempt(ctx, a, &d))
	if a.ID == 0 {
		t.Fatal("FinishAttempt did not set the attempt's ID")
	}
	stored, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	d.LeaseUntil = time.Time{}
	equal(t, "delivery after a retry", stored, []store.Delivery{d})
	attempts, err := s.Attempts(ctx, p.ID)
	must(t, err)
	equal(t, "Attempts", attempts, []store.Attempt{*a})

	equal(t, "claim before the retry time", len(claim(t, s, at(29), at(89), 1)), 0)
	d = claim(t, s, at(30), at(90), 1)[0]

	// Final, with no attempt to record (say, the call stopped ringing).
	d.State, d.Attempts, d.Reason, d.UpdatedAt = store.DeliveryExpired, 1, "call ended", at(31)
	must(t, s.FinishAttempt(ctx, nil, &d))
	stored, err = s.Deliveries(ctx, p.ID)
	must(t, err)
	d.LeaseUntil = time.Time{}
	equal(t, "delivery after expiry", stored, []store.Delivery{d})
	attempts, err = s.Attempts(ctx, p.ID)
	must(t, err)
	equal(t, "attempts after expiry", len(attempts), 1)

	missing := store.Delivery{ID: d.ID + 1000, State: store.DeliveryFailed}
	err = s.FinishAttempt(ctx, &store.Attempt{PushID: p.ID, At: at(40)}, &missing)
	wantErr(t, "FinishAttempt of a missing delivery", err, store.ErrNotFound)
	attempts, err = s.Attempts(ctx, p.ID)
	must(t, err)
	equal(t, "attempts after the failed finish", len(attempts), 1)
}

// Leased deliveries are still in the outbox; final ones are not.
func testOutboxDepth(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	depth := func(want int) {
		t.Helper()
		n, err := s.OutboxDepth(ctx)
		must(t, err)
		equal(t, "OutboxDepth", n, want)
	}
	depth(0)
	mustPush(t, s, app, "push-1", "aa01", "aa02", "aa03")
	depth(3)
	d := claim(t, s, at(1), at(61), 1)[0]
	depth(3)
	d.State = store.DeliveryFailed
	must(t, s.FinishAttempt(ctx, nil, &d))
	depth(2)
}

// When a call stops ringing its pushes expire: every delivery still in
// the outbox, leased or not, and nothing already final.
func testExpirePushes(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	delivered := newDelivery("delivered", 0)
	delivered.State, delivered.Reason = store.DeliveryDelivered, ""
	failed := newDelivery("failed", 0)
	failed.State, failed.Reason = store.DeliveryFailed, "BadDeviceToken"
	leased := newDelivery("leased", 0)
	leased.LeaseUntil = at(60)
	must(t, s.CreatePush(ctx, newPush(app, "alice", "p1", 0),
		[]*store.Delivery{newDelivery("pending", 0), leased, delivered, failed}))
	must(t, s.CreatePush(ctx, newPush(app, "bob", "p2", 0), []*store.Delivery{newDelivery("p2", 30)}))
	must(t, s.CreatePush(ctx, newPush(app, "carol", "p3", 0), []*store.Delivery{newDelivery("kept", 0)}))

	tests := []struct {
		name    string
		pushIDs []string
		want    int
	}{
		{"none", nil, 0},
		{"unknown pushes", []string{"p9"}, 0},
		{"two pushes", []string{"p1", "p2", "p9"}, 3},
		{"again", []string{"p1", "p2"}, 0},
	}
	for _, tt := range tests {
		n, err := s.ExpirePushes(ctx, tt.pushIDs, "call ended", at(10))
		must(t, err)
		equal(t, "ExpirePushes "+tt.name, n, tt.want)
	}

	type state struct{ Token, State, Reason string }
	var got []state
	for _, p := range []string{"p1", "p2", "p3"} {
		ds, err := s.Deliveries(ctx, p)
		must(t, err)
		for _, d := range ds {
			got = append(got, state{d.Token, d.State, d.Reason})
			if d.State == store.DeliveryExpired &&
				(!d.UpdatedAt.Equal(at(10)) || !d.LeaseUntil.IsZero()) {
				t.Errorf("expired %s: updated %v, lease %v", d.Token, d.UpdatedAt, d.LeaseUntil)
			}
		}
	}
	equal(t, "delivery states", got, []state{
		{"pending", store.DeliveryExpired, "call ended"},
		{"leased", store.DeliveryExpired, "call ended"},
		{"delivered", store.DeliveryDelivered, ""},
		{"failed", store.DeliveryFailed, "BadDeviceToken"},
		{"p2", store.DeliveryExpired, "call ended"},
		{"kept", store.DeliveryPending, ""},
	})
	equal(t, "claim after expiry", deliveryTokens(claim(t, s, at(100), at(160), 10)), []string{"kept"})
}

// After a crash the sole user of the database frees the leases it held, so
// what was in flight is due again at once.
func testReleaseLeases(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	mustPush(t, s, app, "push-1", "aa01", "aa02", "aa03")
	got := claim(t, s, at(1), at(61), 2)
	equal(t, "claimed", len(got), 2)
	d := got[0]
	d.State = store.DeliveryDelivered
	must(t, s.FinishAttempt(ctx, nil, &d))
	equal(t, "claim while leased", deliveryTokens(claim(t, s, at(2), at(62), 10)), []string{"aa03"})
	n, err := s.ReleaseLeases(ctx)
	must(t, err)
	equal(t, "released", n, 2)
	equal(t, "claim after release", len(claim(t, s, at(3), at(63), 10)), 2)
}
