package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/groupcommit"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
)

// A batch is one transaction: a store error leaves no push of it behind.
func TestSubmitBatchAtomic(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("u1", tokenA, store.KindAlert, "", prod, time.Now())
	ctx := context.Background()
	// An unknown app: every push of the batch fails its foreign key.
	ids, err := e.svc.SubmitBatch(ctx, testApp+1, []string{"u1", "u2"}, Request{Body: "hi"})
	if !errors.Is(err, store.ErrNotFound) || ids != nil {
		t.Fatalf("ids %v, err %v: want none and ErrNotFound", ids, err)
	}
	if n, err := e.st.OutboxDepth(ctx); err != nil || n != 0 {
		t.Errorf("outbox depth %d, %v after a failed batch", n, err)
	}
	if got := e.svc.OutboxDepth(); got != 0 {
		t.Errorf("outbox gauge %d after a failed batch", got)
	}
}

// Every user gets a push, in order, also users listed twice and users
// without devices; a token that is not the user's refuses the batch.
func TestSubmitBatchPushes(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("u1", tokenA, store.KindAlert, "", prod, time.Now())
	e.register("u2", tokenB, store.KindAlert, "", prod, time.Now())
	e.register("u2", tokenV, store.KindAlert, "", prod, time.Now())
	ctx := context.Background()
	users := []string{"u2", "nobody", "u1", "u2"}
	ids, err := e.svc.SubmitBatch(ctx, testApp, users, Request{Body: "hi"})
	if err != nil || len(ids) != len(users) {
		t.Fatalf("ids %v, err %v", ids, err)
	}
	wantDevices := []int{2, 0, 1, 2}
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("push ID %s twice", id)
		}
		seen[id] = true
		p, err := e.st.Push(ctx, testApp, id)
		if err != nil || p.UserID != users[i] {
			t.Fatalf("push %d: %+v, %v; want user %s", i, p, err, users[i])
		}
		ds, err := e.st.Deliveries(ctx, id)
		if err != nil || len(ds) != wantDevices[i] {
			t.Errorf("push %d of %s: %d deliveries, %v; want %d", i, users[i], len(ds), err, wantDevices[i])
		}
	}
	if got := e.svc.OutboxDepth(); got != 5 {
		t.Errorf("outbox gauge %d, want 5", got)
	}
	_, err = e.svc.SubmitBatch(ctx, testApp, []string{"u1"}, Request{Body: "hi", Token: tokenB})
	if !errors.Is(err, &Error{Code: CodeTokenNotRegistered}) {
		t.Errorf("another user's token: %v", err)
	}
	if ps, err := e.st.Pushes(ctx, testApp, "u1", 0); err != nil || len(ps) != 1 {
		t.Errorf("u1 has %d pushes, %v; want 1", len(ps), err)
	}
}

// BenchmarkSubmitBatch measures the intake of one batch of 1000 users,
// one alert device each, into a real SQLite store (no workers run).
func BenchmarkSubmitBatch(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "ringd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: testApp, Name: "bench", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	prod, _ := newCerts()
	prod.SDKAppID, prod.CreatedAt = testApp, now
	if err := st.CreateCertificates(ctx, []*store.Certificate{prod}); err != nil {
		b.Fatal(err)
	}
	users := make([]string, MaxBatchUsers)
	for i := range users {
		users[i] = fmt.Sprint("user-", i)
		r := &store.Registration{SDKAppID: testApp, UserID: users[i], Token: fmt.Sprintf("%064x", i+1),
			CertificateID: prod.ID, Environment: prod.Environment, Kind: store.KindAlert, RegisteredAt: now}
		if _, err := st.PutRegistration(ctx, r, 0); err != nil {
			b.Fatal(err)
		}
	}
	cfg := Config{MaxOutbox: 1 << 30, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(nil)}
	svc := New(cfg, st, &fakeSender{}, storeCreds{st})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ids, err := svc.SubmitBatch(ctx, testApp, users, Request{Body: "bench"})
		if err != nil || len(ids) != len(users) {
			b.Fatalf("%d ids, %v", len(ids), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(users)), "ns/push")
}

func benchClaimAndFinish(b *testing.B, finish func(store.Store, []store.Delivery)) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "ringd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: testApp, Name: "bench", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	refill := func() {
		batch := make([]store.PushWithDeliveries, DefaultClaimBatch)
		for i := range batch {
			p := &store.Push{ID: fmt.Sprint(time.Now().UnixNano(), "-", i), SDKAppID: testApp, UserID: "u", CreatedAt: now}
			d := &store.Delivery{Token: fmt.Sprintf("%064x", i), CertificateID: 10001, Environment: store.EnvProduction,
				Kind: store.KindAlert, APNsID: p.ID, NextAttemptAt: now}
			batch[i] = store.PushWithDeliveries{Push: p, Deliveries: []*store.Delivery{d}}
		}
		if err := st.CreatePushes(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		refill()
		b.StartTimer()
		ds, err := st.ClaimDeliveries(ctx, time.Now(), time.Now().Add(time.Minute), DefaultClaimBatch)
		if err != nil || len(ds) != DefaultClaimBatch {
			b.Fatalf("claimed %d, %v", len(ds), err)
		}
		ids := make([]string, len(ds))
		for i := range ds {
			ids[i] = ds[i].PushID
		}
		if ps, err := st.PushesByID(ctx, ids); err != nil || len(ps) != len(ids) {
			b.Fatalf("read %d pushes, %v", len(ps), err)
		}
		finish(st, ds)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/DefaultClaimBatch, "ns/delivery")
}

// BenchmarkClaimAndFinish measures the store's send-side work per claim
// of DefaultClaimBatch deliveries on a real SQLite store: the claim, the
// pushes read for their plans, then the outcomes recorded one transaction
// per delivery (one-by-one) or in groups of groupcommit.DefaultMax (grouped), as the
// workers' group commit does under load.
func BenchmarkClaimAndFinish(b *testing.B) {
	outcome := func(d *store.Delivery) store.Finish {
		d.State, d.Attempts, d.UpdatedAt = store.DeliveryDelivered, 1, time.Now()
		a := &store.Attempt{At: time.Now(), Environment: d.Environment, Host: "api.push.apple.com",
			CertificateID: d.CertificateID, APNsID: d.APNsID, Status: 200, Classification: "delivered"}
		return store.Finish{Attempt: a, Delivery: d, Mark: &store.RegistrationMark{At: time.Now()}}
	}
	b.Run("one-by-one", func(b *testing.B) {
		benchClaimAndFinish(b, func(st store.Store, ds []store.Delivery) {
			for i := range ds {
				if err := st.FinishAttempts(context.Background(), []store.Finish{outcome(&ds[i])}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("grouped", func(b *testing.B) {
		benchClaimAndFinish(b, func(st store.Store, ds []store.Delivery) {
			for chunk := range slices.Chunk(ds, groupcommit.DefaultMax) {
				fs := make([]store.Finish, len(chunk))
				for i := range chunk {
					fs[i] = outcome(&chunk[i])
				}
				if err := st.FinishAttempts(context.Background(), fs); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// A staged push goes to the registrations it is given, without reading
// the user's again (a call has just read them), and is written by the
// caller's own transaction: Commit counts and sends the groups written,
// and gives back the workers of the others.
func TestStageAndCommit(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.register("bob", tokenB, store.KindAlert, "", prod, time.Now())
	ctx := context.Background()
	all, err := e.st.Registrations(ctx, testApp, "bob")
	if err != nil || len(all) != 2 {
		t.Fatalf("registrations %v, %v", all, err)
	}
	reads := &registrationReads{Store: e.st}
	e.svc = New(e.svc.cfg, reads, e.sender, storeCreds{e.st})
	e.run()
	workersIdle := func() error {
		if res := e.svc.direct.Reserve(e.svc.cfg.Workers); res != nil {
			res.Release()
			return nil
		}
		return errNotYet
	}
	checkFor(t, 5*time.Second, time.Millisecond, workersIdle) // Run has started

	tests := []struct {
		name       string
		regs       []store.Registration
		written    bool
		wantTokens []string
	}{
		{"one of two", all[:1], true, []string{all[0].Token}},
		{"both", all, true, []string{all[0].Token, all[1].Token}},
		{"none", []store.Registration{}, true, nil},
		{"not written", all, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := e.svc.Stage(ctx, testApp, "bob", tc.regs, Request{Body: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			e.svc.Commit(ctx, [][]*Staged{{st}}, func() []bool {
				if !tc.written {
					return []bool{false}
				}
				return []bool{e.st.CreatePushes(ctx, []store.PushWithDeliveries{st.Push()}) == nil}
			})
			ds, err := e.st.Deliveries(ctx, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			var tokens []string
			for _, d := range ds {
				tokens = append(tokens, d.Token)
			}
			slices.Sort(tokens)
			want := slices.Sorted(slices.Values(tc.wantTokens))
			if !slices.Equal(tokens, want) {
				t.Errorf("deliveries to %v, want %v", tokens, want)
			}
			if tc.written && len(want) > 0 {
				e.waitStatus(st.ID, StatusDelivered)
			}
			// Every worker is free again: a written push's were used and
			// given back, an unwritten one's were given back at once.
			checkFor(t, 5*time.Second, time.Millisecond, workersIdle)
		})
	}
	if n := reads.n.Load(); n != 0 {
		t.Errorf("Stage read the registrations it was given %d times", n)
	}
	if _, err := e.svc.Submit(ctx, testApp, "bob", Request{Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if n := reads.n.Load(); n != 1 {
		t.Errorf("Submit read the registrations %d times, want once", n)
	}
}

// registrationReads counts reads of one user's registrations.
type registrationReads struct {
	store.Store
	n atomic.Int64
}

func (r *registrationReads) Registrations(ctx context.Context, sdkAppID int64, userID string) ([]store.Registration, error) {
	r.n.Add(1)
	return r.Store.Registrations(ctx, sdkAppID, userID)
}
