package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

// timedSender wraps a respond function and records when each call came.
type timedSender struct {
	mu    sync.Mutex
	times []time.Time
}

func (ts *timedSender) wrap(f func(i int) (*apns.Response, error)) func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
	return func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		ts.mu.Lock()
		ts.times = append(ts.times, time.Now())
		ts.mu.Unlock()
		return f(i)
	}
}

func (ts *timedSender) gaps() []time.Duration {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(ts.times); i++ {
		out = append(out, ts.times[i].Sub(ts.times[i-1]))
	}
	return out
}

// TestBackoffErrorWaitsForThePool: while the APNs pool backs off its
// dials, a delivery is not retried before the pool's wait, however short
// the pipeline's own backoff, and the outage does not spend its attempts.
func TestBackoffErrorWaitsForThePool(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.MaxAttempts = 2
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	const poolWait = 120 * time.Millisecond
	ts := &timedSender{}
	e.sender.respond = ts.wrap(func(i int) (*apns.Response, error) {
		if i < 3 {
			return nil, &apns.BackoffError{Host: "api.push.apple.com", Wait: poolWait, Err: errors.New("connection refused")}
		}
		return answer(200, "")
	})
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)
	if as := tr.Devices[0].Attempts; len(as) != 4 || !strings.Contains(as[0].Diagnosis, "no connection") {
		t.Fatalf("attempts %+v", as)
	}
	for i, g := range ts.gaps() {
		if g < poolWait {
			t.Errorf("attempt %d came %s after the previous one, before the pool's %s", i+2, g, poolWait)
		}
	}
}

// TestUnansweredFailuresOutliveMaxAttempts: resets and timeouts are waited
// out until the push expires; only answered failures spend MaxAttempts.
func TestUnansweredFailuresOutliveMaxAttempts(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.MaxAttempts = 2
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		switch {
		case i < 5:
			return nil, errors.New("read tcp: connection reset by peer")
		case i == 5:
			return answer(503, "ServiceUnavailable")
		}
		return answer(200, "")
	}
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)
	if n := len(tr.Devices[0].Attempts); n != 7 {
		t.Fatalf("%d attempts, want 7", n)
	}

	// Two answered failures spend the budget of 2, resets in between or not.
	first := len(e.sender.Calls())
	e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		if (i-first)%2 == 1 {
			return nil, errors.New("read tcp: connection reset by peer")
		}
		return answer(500, "InternalServerError")
	}
	tr = e.waitStatus(e.submit("bob", Request{Body: "again"}), StatusFailed)
	if as := tr.Devices[0].Attempts; len(as) != 3 || !strings.Contains(as[2].Diagnosis, "gave up after 3 attempts") {
		t.Fatalf("attempts %+v", as)
	}
}

// TestExpiredProviderTokenTwiceBacksOff: one ExpiredProviderToken is
// retried at once, a second in a row waits for the backoff.
func TestExpiredProviderTokenTwiceBacksOff(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.BackoffBase, e.svc.cfg.BackoffMax = 100*time.Millisecond, 200*time.Millisecond
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	ts := &timedSender{}
	e.sender.respond = ts.wrap(func(i int) (*apns.Response, error) {
		if i < 2 {
			return answer(403, "ExpiredProviderToken")
		}
		return answer(200, "")
	})
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)
	as := tr.Devices[0].Attempts
	if len(as) != 3 || !strings.Contains(as[0].Diagnosis, "retrying at once") || strings.Contains(as[1].Diagnosis, "retrying at once") {
		t.Fatalf("attempts %+v", as)
	}
	if g := ts.gaps(); g[1] < 100*time.Millisecond {
		t.Errorf("second ExpiredProviderToken retried after %s, want at least the backoff base", g[1])
	}
}

// TestOutboxLimit: over MaxOutbox pending deliveries, Submit refuses with
// outbox_full and a Retry-After; the call service's pushes get headroom;
// once the workers drain the outbox, pushes are accepted again.
func TestOutboxLimit(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.MaxOutbox = 8
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		<-release // APNs hangs: nothing leaves the outbox
		return answer(200, "")
	}
	e.run()
	t.Cleanup(unblock) // runs before run's cleanup, which waits for the workers
	ctx := context.Background()
	var ids []string
	for range 8 {
		ids = append(ids, e.submit("bob", Request{Body: "hi"}))
	}
	_, err := e.svc.Submit(ctx, testApp, "bob", Request{Body: "one too many"})
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeOutboxFull || pe.RetryAfter < minOutboxRetryAfter || pe.RetryAfter > maxOutboxRetryAfter {
		t.Fatalf("9th push: %v (%+v)", err, pe)
	}
	if err := e.svc.Admit(); !errors.Is(err, &Error{Code: CodeOutboxFull}) {
		t.Fatalf("Admit = %v", err)
	}
	if _, err := e.svc.SubmitBatch(ctx, testApp, []string{"bob", "alice"}, Request{Body: "batch"}); !errors.Is(err, &Error{Code: CodeOutboxFull}) {
		t.Fatalf("batch: %v", err)
	}
	// A call's own push still gets through, once (8 + 8/8).
	if _, err := e.svc.Submit(ctx, testApp, "bob", Request{Body: "missed call", Source: SourceCall}); err != nil {
		t.Fatalf("call push within the headroom: %v", err)
	}
	if _, err := e.svc.Submit(ctx, testApp, "bob", Request{Body: "missed call", Source: SourceCall}); !errors.Is(err, &Error{Code: CodeOutboxFull}) {
		t.Fatalf("call push past the headroom: %v", err)
	}
	// The periodic sample agrees with the running count.
	e.svc.sampleDepth(ctx)
	if n := e.svc.OutboxDepth(); n != 9 {
		t.Fatalf("sampled depth %d, want 9", n)
	}
	// Expire takes a push out: at once, or, when a worker that took the
	// push before the Expire records it expired itself, once it has.
	if err := e.svc.Expire(ctx, ids[:1], "answered"); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if n := e.svc.OutboxDepth(); n != 8 {
			return fmt.Errorf("depth after Expire %d, want 8", n)
		}
		return nil
	})
	unblock()
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if e.svc.OutboxDepth() != 0 {
			return errNotYet
		}
		return e.svc.Admit()
	})
	e.waitStatus(e.submit("bob", Request{Body: "after the drain"}), StatusDelivered)
}

func TestOutboxGaugeRetryAfter(t *testing.T) {
	var g outboxGauge
	now := time.Unix(1_700_000_000, 0)
	g.sample(1000, now)
	if d := g.retryAfter(1000); d != maxOutboxRetryAfter/4 {
		t.Errorf("no drain rate yet: %s", d)
	}
	g.left(500) // 500 in 10 s: 50/s smoothed to 15/s
	g.sample(1100, now.Add(10*time.Second))
	if d := g.retryAfter(1000); d < 10*time.Second || d > 20*time.Second {
		t.Errorf("200 over 90%% of the limit at 15/s: %s", d)
	}
	g.sample(100_000, now.Add(20*time.Second))
	if d := g.retryAfter(1000); d != maxOutboxRetryAfter {
		t.Errorf("far over: %s", d)
	}
}

// TestExpiredCertificateFailsFast: a push through a certificate past its
// NotAfter fails at once without a request, with the reason in the trace;
// a push through another certificate of the app is delivered.
func TestExpiredCertificateFailsFast(t *testing.T) {
	prod, dev := newCerts()
	prod.ExpiresAt = time.Now().Add(time.Hour)
	dev.ExpiresAt = time.Now().Add(30 * 24 * time.Hour)
	e := newTestEnv(t, prod, dev)
	e.register("bob", tokenA, store.KindAlert, "phone", prod, time.Now())
	e.register("bob", tokenB, store.KindAlert, "ipad", dev, time.Now())
	e.clock.Advance(2 * time.Hour)
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusPartiallyDelivered)
	for _, d := range tr.Devices {
		switch d.Token {
		case tokenA:
			if d.State != store.DeliveryFailed || d.Reason != ReasonCertificateExpired || len(d.Attempts) != 1 ||
				d.Attempts[0].Classification != "configuration" || !strings.Contains(d.Attempts[0].Diagnosis, "expired at") {
				t.Errorf("device through the expired certificate: %+v", d)
			}
		case tokenB:
			if d.State != store.DeliveryDelivered {
				t.Errorf("device through the valid certificate: %+v", d)
			}
		}
	}
	for _, c := range e.sender.Calls() {
		if c.cred.ID == prod.ID {
			t.Errorf("a request went out through the expired certificate")
		}
	}
}

// TestSubmitDispatchesToIdleWorkers: with workers idle, a submitted push
// is written leased and handed to a worker at once, so no claim can take
// it (and none has to: the claim's write transaction is saved).
func TestSubmitDispatchesToIdleWorkers(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	claims := &claimCounter{Store: e.st}
	// A poll takes every idle worker for the length of its claim, and a
	// reservation made meanwhile fails (the push then goes by claim, as it
	// should). Only Run's first claim may run here, so the test is exact.
	cfg := e.svc.cfg
	cfg.PollInterval = time.Hour
	e.svc = New(cfg, claims, e.sender, storeCreds{e.st})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	sending := make(chan struct{}, 1)
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		sending <- struct{}{}
		<-release
		return answer(200, "")
	}
	e.run()
	// Registered after run's cleanup so that it runs first: Run waits for
	// the blocked worker.
	t.Cleanup(unblock)

	checkFor(t, 5*time.Second, time.Millisecond, func() error { // Run has started
		if res := e.svc.direct.Reserve(1); res != nil {
			res.Release()
			return nil
		}
		return errNotYet
	})
	ctx := context.Background()
	id := e.submit("bob", Request{Body: "hi"})
	select {
	case <-sending:
	case <-time.After(5 * time.Second):
		t.Fatal("the push was not sent")
	}
	ds, err := e.st.Deliveries(ctx, id)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	if ds[0].LeaseUntil.IsZero() {
		t.Fatal("the delivery was written without a lease")
	}
	if n := claims.claimed.Load(); n != 0 {
		t.Fatalf("claims took %d deliveries; the push should have gone to a worker without one", n)
	}
	unblock()
	e.waitStatus(id, StatusDelivered)
}

// claimCounter counts the deliveries that claims return.
type claimCounter struct {
	store.Store
	claimed atomic.Int64
}

func (c *claimCounter) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.Delivery, error) {
	ds, err := c.Store.ClaimDeliveries(ctx, now, leaseUntil, limit)
	c.claimed.Add(int64(len(ds)))
	return ds, err
}

// TestNoSendAfterTheLeaseEnded: a delivery whose lease ran out while it
// waited for a worker may already be another claim's: it is not sent.
func TestNoSendAfterTheLeaseEnded(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	id := e.submit("bob", Request{Body: "hi"}) // no workers running: it stays pending
	ctx := context.Background()
	ds, err := e.st.ClaimDeliveries(ctx, e.clock.Now(), e.clock.Now().Add(time.Second), 10)
	if err != nil || len(ds) != 1 || ds[0].PushID != id {
		t.Fatalf("claimed %v, %v", ds, err)
	}
	e.clock.Advance(2 * time.Second) // the lease is over before a worker starts
	e.svc.process(ctx, &ds[0])
	e.sender.mu.Lock()
	n := len(e.sender.calls)
	e.sender.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests sent after the lease ended", n)
	}
}
