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

// One batch records every outcome, its attempts and its registration
// marks; a mark on a registration that is gone is skipped.
func testFinishAttempts(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	cert := mustCert(t, s, app, store.EnvProduction)
	for _, tok := range []string{"aa01", "aa02"} {
		mustPut(t, s, newReg(app, "alice", tok, cert.ID, "phone-"+tok, 1), 10)
	}
	p, _ := mustPush(t, s, app, "push-1", "aa01", "aa02", "aa03")
	ds := claim(t, s, at(1), at(61), 3)
	equal(t, "claimed", len(ds), 3)

	var fs []store.Finish
	var attempts []*store.Attempt
	for i := range ds {
		d := &ds[i]
		d.Attempts, d.UpdatedAt = 1, at(2)
		f := store.Finish{Delivery: d}
		switch d.Token {
		case "aa01": // delivered: a success on the registration
			d.State = store.DeliveryDelivered
			f.Mark = &store.RegistrationMark{At: at(2)}
		case "aa02": // refused: a failure on the registration
			d.State, d.Reason = store.DeliveryFailed, "BadDeviceToken"
			f.Mark = &store.RegistrationMark{At: at(2), Reason: "BadDeviceToken"}
		case "aa03": // its registration is gone: the mark is skipped
			d.State = store.DeliveryDelivered
			f.Mark = &store.RegistrationMark{At: at(2)}
		}
		f.Attempt = &store.Attempt{At: at(2), Status: 200, APNsID: d.APNsID, Classification: "delivered"}
		attempts = append(attempts, f.Attempt)
		fs = append(fs, f)
	}
	must(t, s.FinishAttempts(ctx, fs))
	for i, a := range attempts {
		if a.DeliveryID != ds[i].ID || a.PushID != p.ID {
			t.Fatalf("attempt %d not filled in: %+v", i, a)
		}
		if !ds[i].LeaseUntil.IsZero() {
			t.Fatalf("delivery %d keeps its lease", ds[i].ID)
		}
	}
	stored, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	equal(t, "deliveries", stored, ds)
	got, err := s.Attempts(ctx, p.ID)
	must(t, err)
	for i := range got {
		if got[i].ID == 0 {
			t.Fatalf("stored attempt %d has no ID", i)
		}
		got[i].ID = 0 // FinishAttempts does not read IDs back
	}
	equal(t, "attempts", got, deref(attempts))
	r1, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	equal(t, "success mark", r1.LastSuccessAt, at(2))
	r2, err := s.Registration(ctx, app, "aa02")
	must(t, err)
	equal(t, "failure mark", []any{r2.LastFailureAt, r2.LastFailureReason}, []any{at(2), "BadDeviceToken"})
	must(t, s.FinishAttempts(ctx, nil))
}

// A batch with a missing delivery writes nothing at all.
func testFinishAttemptsAtomic(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	p, _ := mustPush(t, s, app, "push-1", "aa01")
	d := claim(t, s, at(1), at(61), 1)[0]
	d.State, d.Attempts = store.DeliveryDelivered, 1
	missing := store.Delivery{ID: d.ID + 1000, State: store.DeliveryFailed}
	err := s.FinishAttempts(ctx, []store.Finish{
		{Delivery: &d, Attempt: &store.Attempt{At: at(2), Status: 200}},
		{Delivery: &missing, Attempt: &store.Attempt{PushID: p.ID, At: at(2)}},
	})
	wantErr(t, "FinishAttempts with a missing delivery", err, store.ErrNotFound)
	attempts, err := s.Attempts(ctx, p.ID)
	must(t, err)
	equal(t, "attempts after the failed batch", len(attempts), 0)
	stored, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	equal(t, "delivery state after the failed batch", stored[0].State, store.DeliveryPending)
}

func testPushesByID(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	var want []*store.Push
	var ids []string
	for i := range 700 { // more than one IN list
		p, _ := mustPush(t, s, app, fmt.Sprintf("push-%d", i), fmt.Sprintf("aa%04d", i))
		want = append(want, p)
		ids = append(ids, p.ID)
	}
	got, err := s.PushesByID(ctx, append(ids, "push-unknown"))
	must(t, err)
	equal(t, "pushes found", len(got), len(want))
	for _, p := range want {
		equal(t, "push "+p.ID, got[p.ID], p)
	}
	none, err := s.PushesByID(ctx, nil)
	must(t, err)
	equal(t, "no IDs", len(none), 0)
}

// A group larger than one multi-row statement is written whole, and the
// latest of two successes on one registration wins.
func testFinishAttemptsLargeGroup(t *testing.T, open Open) {
	s, ctx := open(t), t.Context()
	mustApp(t, s, app)
	cert := mustCert(t, s, app, store.EnvProduction)
	mustPut(t, s, newReg(app, "alice", "aa01", cert.ID, "phone", 1), 10)
	const n = 150
	toks := make([]string, n)
	for i := range toks {
		toks[i] = "aa01" // every delivery to the one registered token
	}
	p, _ := mustPush(t, s, app, "push-1", toks...)
	ds := claim(t, s, at(1), at(61), n)
	fs := make([]store.Finish, len(ds))
	for i := range ds {
		ds[i].State, ds[i].Attempts, ds[i].UpdatedAt = store.DeliveryDelivered, 1, at(2)
		fs[i] = store.Finish{Delivery: &ds[i], Attempt: &store.Attempt{At: at(2), Status: 200},
			Mark: &store.RegistrationMark{At: at(2 + i)}}
	}
	must(t, s.FinishAttempts(ctx, fs))
	stored, err := s.Deliveries(ctx, p.ID)
	must(t, err)
	for _, d := range stored {
		if d.State != store.DeliveryDelivered || d.Attempts != 1 || !d.LeaseUntil.IsZero() {
			t.Fatalf("delivery %d after the group: %+v", d.ID, d)
		}
	}
	attempts, err := s.Attempts(ctx, p.ID)
	must(t, err)
	equal(t, "attempts", len(attempts), n)
	r, err := s.Registration(ctx, app, "aa01")
	must(t, err)
	equal(t, "latest success", r.LastSuccessAt, at(2+n-1))
}
