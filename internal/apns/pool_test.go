package apns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMoreConnectionsWhenStreamsAreFull(t *testing.T) {
	const maxConns, senders = 3, 7
	f := newFakeAPNs(t, fakeOptions{maxStreams: 1})
	var active, peak atomic.Int32
	gate := make(chan struct{})
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-gate
	})
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.MaxConnsPerPool = maxConns; cfg.Observer = obs })
	cred := newP8Credential(t, 1)

	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Go(func() {
			resp, err := c.Send(context.Background(), cred, voipNotification())
			if err == nil && resp.Status != 200 {
				err = fmt.Errorf("status %d", resp.Status)
			}
			errs <- err
		})
	}
	// Each connection allows one stream: three requests reach the server at
	// once, on three connections, and no fourth connection is opened.
	checkFor(t, 5*time.Second, func() error {
		if active.Load() != maxConns || c.OpenConnections() != maxConns {
			return fmt.Errorf("active %d open %d: %w", active.Load(), c.OpenConnections(), errNotYet)
		}
		return nil
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if peak.Load() != maxConns || f.dials.Load() != maxConns || obs.opened.Load() != maxConns {
		t.Errorf("peak %d dials %d opened %d, want %d each", peak.Load(), f.dials.Load(), obs.opened.Load(), maxConns)
	}
	if len(f.requests()) != senders {
		t.Errorf("server saw %d requests, want %d", len(f.requests()), senders)
	}
}

func TestOneConnectionWhileStreamsAreFree(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{maxStreams: 100})
	c := newTestClient(t, f, nil)
	cred := newP8Credential(t, 1)
	mustSend(t, c, cred, voipNotification()) // open the connection first
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.Send(context.Background(), cred, voipNotification()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if f.dials.Load() != 1 {
		t.Errorf("dials = %d, want 1: the connection had free streams", f.dials.Load())
	}
}

func TestKilledConnectionIsReplaced(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	obs := &countingObserver{}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Observer = obs })
	cred := newP8Credential(t, 1)
	mustSend(t, c, cred, voipNotification())

	f.srv.CloseClientConnections()
	checkFor(t, 5*time.Second, func() error {
		if c.OpenConnections() != 0 || obs.closed.Load() != 1 {
			return errNotYet
		}
		return nil
	})
	mustSend(t, c, cred, voipNotification())
	if f.dials.Load() != 2 || c.OpenConnections() != 1 {
		t.Errorf("dials %d open %d, want 2 and 1", f.dials.Load(), c.OpenConnections())
	}
	r := f.requests()
	if bearerOf(r[0]) == bearerOf(r[1]) {
		t.Error("the new connection reused the old connection's JWT")
	}
}

func TestGoAwayConnectionIsReplaced(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{})
	// "Connection: close" on an HTTP/2 response makes Go's server send
	// GOAWAY after it, like APNs going away.
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
	})
	c := newTestClient(t, f, nil)
	cred := newP8Credential(t, 1)
	for range 3 {
		mustSend(t, c, cred, voipNotification())
	}
	if d := f.dials.Load(); d < 2 {
		t.Errorf("dials = %d; a connection that sent GOAWAY must be replaced", d)
	}
	checkFor(t, 5*time.Second, func() error {
		if c.OpenConnections() > 1 {
			return errNotYet
		}
		return nil
	})
}

// refusingListener accepts TCP connections and closes them at once, so
// every TLS handshake fails.
func refusingListener(t *testing.T) (addr string, accepts *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepts = new(atomic.Int32)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			_ = conn.Close()
		}
	}()
	return ln.Addr().String(), accepts
}

func TestDialBackoff(t *testing.T) {
	addr, accepts := refusingListener(t)
	clock := newTestClock()
	obs := &countingObserver{}
	c, err := NewClient(Config{ProductionURL: "https://" + addr, SandboxURL: "https://" + addr, Now: clock.Now, Observer: obs, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cred := newP8Credential(t, 1)

	if _, err := c.Send(context.Background(), cred, voipNotification()); err == nil {
		t.Fatal("first Send succeeded against a refusing host")
	}
	// Immediately after a failure the pool refuses to dial again.
	for range 5 {
		_, err := c.Send(context.Background(), cred, voipNotification())
		var be *BackoffError
		if !errors.As(err, &be) || be.Err == nil {
			t.Fatalf("err = %v, want *BackoffError with the dial error", err)
		}
	}
	if accepts.Load() != 1 {
		t.Fatalf("accepts = %d, want 1: a failing host was hammered", accepts.Load())
	}
	checkFor(t, 5*time.Second, func() error {
		if obs.dialFailed.Load() != 1 {
			return errNotYet
		}
		return nil
	})
	clock.Advance(backoffMax)
	if _, err := c.Send(context.Background(), cred, voipNotification()); err == nil {
		t.Fatal("Send succeeded")
	}
	if accepts.Load() != 2 {
		t.Errorf("accepts = %d, want a new dial after the backoff", accepts.Load())
	}
}

func TestBackoffDelay(t *testing.T) {
	for n := 1; n < 70; n++ {
		full := min(backoffMax, backoffBase<<min(n-1, 10))
		for range 20 {
			if d := backoffDelay(n); d < full/2 || d > full {
				t.Fatalf("backoffDelay(%d) = %v, want within [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

func TestNotSent(t *testing.T) {
	if notSent(errors.New("boom")) || notSent(context.DeadlineExceeded) {
		t.Error("ordinary errors must not be retried")
	}
	if !notSent(fmt.Errorf("apns: POST: %w", errNotUsable)) || !notSent(errRefusedStream) {
		t.Error("a request APNs did not take must be retried")
	}
}

// TestStressKillsUnderLoad sends from many goroutines while the server
// kills every connection several times: every Send must return (answered or
// with an error, never hanging), the pools must recover once the kills stop,
// and the open-connection count must come back to zero after Close.
func TestStressKillsUnderLoad(t *testing.T) {
	f := newFakeAPNs(t, fakeOptions{maxStreams: 2})
	clock := newTestClock()
	c := newTestClient(t, f, func(cfg *Config) {
		cfg.MaxConnsPerPool = 4
		cfg.RequestTimeout = 5 * time.Second
		cfg.Now = clock.Now
	})
	creds := []*Credential{newP8Credential(t, 1), newCertCredential(t, 2)}

	killed := make(chan struct{})
	go func() {
		defer close(killed)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 10 {
			<-tick.C
			f.srv.CloseClientConnections()
			// Let the dial backoff expire so the pools keep reconnecting.
			clock.Advance(backoffMax)
		}
	}()
	var wg sync.WaitGroup
	var ok, failed atomic.Int32
	for i := range 16 {
		wg.Go(func() {
			for {
				select {
				case <-killed:
					return
				default:
				}
				if _, err := c.Send(context.Background(), creds[i%2], voipNotification()); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("under kills: answered %d, failed %d, dials %d", ok.Load(), failed.Load(), f.dials.Load())

	clock.Advance(backoffMax)
	for _, cred := range creds {
		mustSend(t, c, cred, voipNotification())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.OpenConnections(); n != 0 {
		t.Errorf("open connections after Close = %d", n)
	}
}
