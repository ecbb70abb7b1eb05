package push

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
)

func TestSubmitWakesWorkers(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.PollInterval = time.Hour // only the wake-up can start the send
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.run()
	start := time.Now()
	e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("delivered after %s", d)
	}
}

func TestExpiredProviderTokenRetriesAtOnce(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.BackoffBase, e.svc.cfg.BackoffMax = time.Hour, time.Hour // a backoff would stall the test
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(i int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		if i == 0 {
			return answer(403, "ExpiredProviderToken")
		}
		return answer(200, "")
	}
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusDelivered)
	if as := tr.Devices[0].Attempts; len(as) != 2 || !strings.Contains(as[0].Diagnosis, "retrying at once") {
		t.Errorf("attempts %+v", as)
	}
}

func TestRunReturnsAfterInFlightSends(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.svc.cfg.Lease = 600 * time.Millisecond
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	started := make(chan struct{})
	var once sync.Once
	e.sender.respond = func(_ int, _ *apns.Credential, _ *apns.Notification) (*apns.Response, error) {
		once.Do(func() { close(started) })
		time.Sleep(50 * time.Millisecond) // a request in flight when shutdown begins
		return answer(200, "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	id := e.submit("bob", Request{Body: "hi"})
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	// The answer that arrived during shutdown is recorded, not lost.
	tr, err := e.svc.Trace(context.Background(), testApp, id)
	if err != nil || tr.Status != StatusDelivered {
		t.Fatalf("trace %+v, %v", tr, err)
	}
}

func TestLogsMaskTokensAndOmitPayloads(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	var buf syncBuffer
	e.svc.log = slog.New(slog.NewTextHandler(&buf, nil))
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return answer(400, "BadDeviceToken")
	}
	e.run()
	e.waitStatus(e.submit("bob", Request{Body: "secret-body", Ext: "secret-ext"}), StatusFailed)
	checkFor(t, 2*time.Second, 5*time.Millisecond, func() error {
		if !strings.Contains(buf.String(), "push: delivery failed") {
			return errNotYet
		}
		return nil
	})
	out := buf.String()
	if strings.Contains(out, tokenA) || strings.Contains(out, "secret-") {
		t.Errorf("log leaks token or payload:\n%s", out)
	}
	if !strings.Contains(out, "a1a1…a1a1") || !strings.Contains(out, "reason=BadDeviceToken") {
		t.Errorf("log lacks masked token or reason:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSendRequestErrorIsNotRetried(t *testing.T) {
	prod, _ := newCerts()
	e := newTestEnv(t, prod)
	e.register("bob", tokenA, store.KindAlert, "", prod, time.Now())
	e.sender.respond = func(int, *apns.Credential, *apns.Notification) (*apns.Response, error) {
		return nil, &apns.RequestError{Reason: "BadTopic", Message: "topic has a newline"}
	}
	e.run()
	tr := e.waitStatus(e.submit("bob", Request{Body: "hi"}), StatusFailed)
	d := tr.Devices[0]
	if len(d.Attempts) != 1 || d.Attempts[0].Classification != "bad_request" || d.Reason != "BadTopic" || !strings.Contains(d.Diagnosis, "did not send") {
		t.Errorf("device %+v", d)
	}
}
