package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
)

const testApp = 1400000001

var errNotYet = errors.New("not yet")

// checkFor polls fn until it returns nil or the deadline passes.
func checkFor(t *testing.T, timeout, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(every)
	}
}

// testClock is the real clock shifted by an offset a test may move.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

type sentCall struct {
	cred apns.Credential
	n    apns.Notification
}

// fakeSender answers with respond (200 when nil) and records every call.
type fakeSender struct {
	mu      sync.Mutex
	calls   []sentCall
	respond func(i int, cred *apns.Credential, n *apns.Notification) (*apns.Response, error)
}

func (f *fakeSender) Send(ctx context.Context, cred *apns.Credential, n *apns.Notification) (*apns.Response, error) {
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, sentCall{cred: *cred, n: *n})
	respond := f.respond
	f.mu.Unlock()
	host := "api.push.apple.com"
	if cred.Environment == apns.Development {
		host = "api.sandbox.push.apple.com"
	}
	if respond == nil {
		return &apns.Response{Status: 200, APNsID: n.ID, Host: host, Latency: time.Millisecond}, nil
	}
	resp, err := respond(i, cred, n)
	if resp != nil {
		resp.Host, resp.APNsID = host, n.ID
	}
	return resp, err
}

func (f *fakeSender) Calls() []sentCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentCall(nil), f.calls...)
}

func answer(status int, reason string) (*apns.Response, error) {
	return &apns.Response{Status: status, Reason: reason, Latency: time.Millisecond}, nil
}

// storeCreds is a CredentialSource without key material: the fake sender
// needs only the certificate ID and environment.
type storeCreds struct{ st store.Store }

func (s storeCreds) Credential(ctx context.Context, id int64) (*apns.Credential, *store.Certificate, error) {
	c, err := s.st.Certificate(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %w", ErrCredentialUnusable, err)
	}
	if err != nil {
		return nil, nil, err
	}
	return &apns.Credential{ID: c.ID, Environment: c.Environment}, c, nil
}

type testEnv struct {
	t      *testing.T
	st     *sqlite.Store
	svc    *Service
	sender *fakeSender
	clock  *testClock
}

// newTestEnv opens a SQLite store with one app and the given certificates
// (IDs from 10001 in order) and a Service with fast retries.
func newTestEnv(t *testing.T, certs ...*store.Certificate) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ringd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now()
	if err := st.CreateApp(ctx, &store.App{SDKAppID: testApp, Name: "test", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if len(certs) > 0 {
		for _, c := range certs {
			c.SDKAppID, c.CreatedAt = testApp, now
		}
		if err := st.CreateCertificates(ctx, certs); err != nil {
			t.Fatal(err)
		}
	}
	e := &testEnv{t: t, st: st, sender: &fakeSender{}, clock: &testClock{}}
	cfg := Config{
		Workers: 4, PollInterval: 5 * time.Millisecond, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Lease: 3 * time.Second, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(nil),
	}
	e.svc = New(cfg, st, e.sender, storeCreds{st})
	return e
}

func newCerts() (prod, dev *store.Certificate) {
	prod = &store.Certificate{Type: "p12", Environment: store.EnvProduction, BundleID: "com.example.app",
		Topics: []string{"com.example.app", "com.example.app.voip"}, VoIP: true}
	dev = &store.Certificate{Type: "p12", Environment: store.EnvDevelopment, BundleID: "com.example.app",
		Topics: []string{"com.example.app", "com.example.app.voip"}, VoIP: true}
	return prod, dev
}

// run starts the workers until the test ends.
func (e *testEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			e.t.Error("Run did not return after cancel")
		}
	})
}

func (e *testEnv) register(user, token, kind, device string, cert *store.Certificate, at time.Time) {
	e.t.Helper()
	r := &store.Registration{SDKAppID: testApp, UserID: user, Token: token, CertificateID: cert.ID, Environment: cert.Environment,
		Kind: kind, DeviceID: device, RegisteredAt: at}
	if _, err := e.st.PutRegistration(context.Background(), r, 0); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) submit(user string, req Request) string {
	e.t.Helper()
	id, err := e.svc.Submit(context.Background(), testApp, user, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// waitStatus polls the push's trace until it has the status.
func (e *testEnv) waitStatus(pushID, status string) *Trace {
	e.t.Helper()
	var tr *Trace
	checkFor(e.t, 5*time.Second, 5*time.Millisecond, func() error {
		var err error
		tr, err = e.svc.Trace(context.Background(), testApp, pushID)
		if err != nil {
			return err
		}
		if tr.Status != status {
			return fmt.Errorf("%w: status %s, want %s", errNotYet, tr.Status, status)
		}
		return nil
	})
	return tr
}

const (
	tokenA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	tokenB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	tokenV = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
)
