package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/store/sqlite"
)

const (
	testApp    = 1400000001
	testSecret = "app-secret-key"
)

var errNotYet = errors.New("not yet")

// checkFor polls fn until it returns nil or the deadline passes.
func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
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
		time.Sleep(5 * time.Millisecond)
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

// sources is the app's URL and secret, changeable by a test.
type sources struct {
	mu     sync.Mutex
	url    string
	secret string
	urlErr error
}

func (s *sources) set(url string) {
	s.mu.Lock()
	s.url = url
	s.mu.Unlock()
}

func (s *sources) WebhookURL(context.Context, int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url, s.urlErr
}

func (s *sources) AppSecret(context.Context, int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret, nil
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

// received is one request the receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an app server: it answers with the statuses in order (then
// the last one) and records every request.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []received
	statuses []int
	answer   string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := len(r.reqs)
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body})
		status, answer := http.StatusOK, r.answer
		if len(r.statuses) > 0 {
			status = r.statuses[min(i, len(r.statuses)-1)]
		}
		r.mu.Unlock()
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

type testEnv struct {
	t     *testing.T
	st    *sqlite.Store
	src   *sources
	svc   *Service
	clock *testClock
	log   *syncBuffer
	reg   *prometheus.Registry
}

// newTestEnv opens a SQLite store with one app and a Service with fast
// polling and short backoffs; cfg's non-zero fields override.
func newTestEnv(t *testing.T, url string, cfg Config) *testEnv {
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
	e := &testEnv{t: t, st: st, src: &sources{url: url, secret: testSecret}, clock: &testClock{}, log: &syncBuffer{}, reg: prometheus.NewRegistry()}
	setDefault(&cfg.PollInterval, 5*time.Millisecond)
	setDefault(&cfg.BackoffBase, time.Millisecond)
	setDefault(&cfg.BackoffMax, 5*time.Millisecond)
	cfg.Now, cfg.Metrics = e.clock.Now, e.reg
	cfg.Logger = slog.New(slog.NewTextHandler(e.log, nil))
	e.svc = New(cfg, st, e.src, e.src)
	return e
}

// run starts the workers of svc until the test ends.
func (e *testEnv) run(svc *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
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

// webhooks returns the app's stored events, oldest first.
func (e *testEnv) webhooks() []store.Webhook {
	e.t.Helper()
	ws, err := e.st.Webhooks(context.Background(), testApp, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(ws)-1; i < j; i, j = i+1, j-1 {
		ws[i], ws[j] = ws[j], ws[i]
	}
	return ws
}

// waitState polls until the app's only event has the state.
func (e *testEnv) waitState(state string) store.Webhook {
	e.t.Helper()
	var w store.Webhook
	checkFor(e.t, 5*time.Second, func() error {
		ws := e.webhooks()
		if len(ws) != 1 {
			return fmt.Errorf("%w: %d events", errNotYet, len(ws))
		}
		if w = ws[0]; w.State != state {
			return fmt.Errorf("%w: state %s (attempts %d, last error %q), want %s", errNotYet, w.State, w.Attempts, w.LastError, state)
		}
		return nil
	})
	return w
}

func (e *testEnv) counter(result string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "ringd_webhooks_total" && m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

type callEnded struct {
	CallID string `json:"call_id"`
	Reason string `json:"reason"`
}

func TestDeliveredAndSigned(t *testing.T) {
	rcv := newReceiver(t)
	e := newTestEnv(t, rcv.URL+"/hooks/ringd?token=abc", Config{})
	e.run(e.svc)
	before := e.clock.Now()
	e.svc.Emit(context.Background(), testApp, "call.ended", callEnded{CallID: "c1", Reason: "hangup"})
	w := e.waitState(store.WebhookDelivered)

	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if !bytes.Equal(body, w.Body) {
		t.Errorf("body sent %s, stored %s", body, w.Body)
	}
	if !Verify(testSecret, body, h.Get(HeaderSignature)) {
		t.Errorf("signature %q does not verify with the app secret", h.Get(HeaderSignature))
	}
	if Verify("another-secret", body, h.Get(HeaderSignature)) {
		t.Error("signature verifies with another secret")
	}
	var env struct {
		ID        string    `json:"id"`
		Type      string    `json:"type"`
		SDKAppID  int64     `json:"sdkappid"`
		CreatedAt string    `json:"created_at"`
		Data      callEnded `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("envelope %s: %v", body, err)
	}
	created, err := time.Parse(time.RFC3339Nano, env.CreatedAt)
	if err != nil || created.Before(before.Add(-time.Millisecond)) || created.Location() != time.UTC {
		t.Errorf("created_at %q (%v), emitted after %s", env.CreatedAt, err, before)
	}
	if env.ID == "" || env.ID != w.EventID || env.Type != "call.ended" || env.SDKAppID != testApp || env.Data != (callEnded{"c1", "hangup"}) {
		t.Errorf("envelope %+v, stored event %s", env, w.EventID)
	}
	// The exact header names the documentation promises.
	wantHeaders := map[string]string{"Content-Type": "application/json", "X-Ringd-Event": "call.ended", "X-Ringd-Delivery": env.ID}
	for k, v := range wantHeaders {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	ts, err := strconv.ParseInt(h.Get("X-Ringd-Timestamp"), 10, 64)
	if err != nil || ts < before.Unix() || ts > e.clock.Now().Unix() {
		t.Errorf("X-Ringd-Timestamp %q", h.Get("X-Ringd-Timestamp"))
	}
	if !strings.HasPrefix(h.Get("X-Ringd-Signature"), "sha256=") {
		t.Errorf("X-Ringd-Signature %q", h.Get("X-Ringd-Signature"))
	}
	if w.Attempts != 1 || w.LastError != "" || w.EventType != "call.ended" {
		t.Errorf("stored %+v", w)
	}
	checkFor(t, time.Second, func() error {
		if e.counter(ResultQueued) != 1 || e.counter(ResultDelivered) != 1 {
			return fmt.Errorf("%w: queued %v delivered %v", errNotYet, e.counter(ResultQueued), e.counter(ResultDelivered))
		}
		return nil
	})
	if strings.Contains(e.log.String(), "token=abc") {
		t.Errorf("log shows the webhook URL's token:\n%s", e.log.String())
	}
}

func TestAnswers(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes: the stored answer is cut at 200, on a rune boundary
	tests := []struct {
		name      string
		statuses  []int
		answer    string
		wantState string
		wantReqs  int
		wantError string // prefix of the stored last error
	}{
		{"500 then delivered", []int{500, 500, 200}, "", store.WebhookDelivered, 3, ""},
		{"503 then delivered", []int{503, 204}, "", store.WebhookDelivered, 2, ""},
		{"408 is retried", []int{408, 200}, "", store.WebhookDelivered, 2, ""},
		{"429 is retried", []int{429, 200}, "", store.WebhookDelivered, 2, ""},
		{"a redirect is not followed but retried", []int{302, 200}, "", store.WebhookDelivered, 2, ""},
		{"400 fails at once", []int{400}, "bad event", store.WebhookFailed, 1, "HTTP 400: bad event"},
		{"401 fails at once", []int{401}, "", store.WebhookFailed, 1, "HTTP 401"},
		{"404 fails at once", []int{404}, "", store.WebhookFailed, 1, "HTTP 404"},
		{"410 fails at once", []int{410}, "", store.WebhookFailed, 1, "HTTP 410"},
		{"gives up after MaxAttempts", []int{500}, "oops", store.WebhookFailed, 3, "HTTP 500: oops"},
		{"answer is cut to 200 bytes", []int{422}, long, store.WebhookFailed, 1, "HTTP 422: " + long[:200]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.statuses...)
			rcv.answer = tt.answer
			e := newTestEnv(t, rcv.URL, Config{MaxAttempts: 3})
			e.run(e.svc)
			e.svc.Emit(context.Background(), testApp, "push.failed", map[string]string{"push_id": "p1"})
			w := e.waitState(tt.wantState)
			reqs := rcv.requests()
			if len(reqs) != tt.wantReqs || w.Attempts != tt.wantReqs {
				t.Fatalf("%d requests, %d attempts stored, want %d", len(reqs), w.Attempts, tt.wantReqs)
			}
			for i, r := range reqs {
				// The same event on every attempt: idempotency key, body, signature.
				if r.header.Get(HeaderDelivery) != w.EventID || !bytes.Equal(r.body, w.Body) || !Verify(testSecret, r.body, r.header.Get(HeaderSignature)) {
					t.Errorf("attempt %d: delivery %q (want %q), body %s", i+1, r.header.Get(HeaderDelivery), w.EventID, r.body)
				}
			}
			if tt.wantError == "" && w.LastError != "" {
				t.Errorf("last error %q after delivery", w.LastError)
			}
			if tt.wantError != "" && w.LastError != tt.wantError {
				t.Errorf("last error %q, want %q", w.LastError, tt.wantError)
			}
			retries := float64(tt.wantReqs - 1)
			if tt.wantState == store.WebhookFailed && tt.wantReqs == 1 {
				retries = 0
			}
			checkFor(t, time.Second, func() error {
				if got := e.counter(ResultRetry); got != retries {
					return fmt.Errorf("%w: retry counter %v, want %v", errNotYet, got, retries)
				}
				if got := e.counter(tt.wantState); got != 1 {
					return fmt.Errorf("%w: %s counter %v, want 1", errNotYet, tt.wantState, got)
				}
				return nil
			})
		})
	}
}

// TestBackoffUsesTheClock shows that a retry waits for its backoff: with
// an hour of backoff nothing is sent again until the clock moves.
func TestBackoffUsesTheClock(t *testing.T) {
	rcv := newReceiver(t, 500, 200)
	e := newTestEnv(t, rcv.URL, Config{BackoffBase: time.Hour, BackoffMax: time.Hour})
	e.run(e.svc)
	start := e.clock.Now()
	e.svc.Emit(context.Background(), testApp, "call.missed", nil)
	var w store.Webhook
	checkFor(t, 5*time.Second, func() error {
		if ws := e.webhooks(); len(ws) == 1 && ws[0].Attempts == 1 {
			w = ws[0]
			return nil
		}
		return errNotYet
	})
	if w.State != store.WebhookPending || w.NextAttemptAt.Before(start) || w.NextAttemptAt.After(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("after a 500: %+v", w)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("%d requests before the backoff passed", n)
	}
	e.clock.Advance(time.Hour + time.Second)
	e.waitState(store.WebhookDelivered)
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	var calls int
	var mu sync.Mutex
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
		if first {
			select { // no answer: the client times out
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs before srv.Close
	e := newTestEnv(t, srv.URL, Config{Client: &http.Client{Timeout: 100 * time.Millisecond}})
	e.run(e.svc)
	e.svc.Emit(context.Background(), testApp, "call.started", nil)
	w := e.waitState(store.WebhookDelivered)
	if w.Attempts != 2 {
		t.Errorf("attempts %d, want 2", w.Attempts)
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	e := newTestEnv(t, dead+"/hook?token=secret-in-url", Config{MaxAttempts: 2})
	e.run(e.svc)
	e.svc.Emit(context.Background(), testApp, "call.started", nil)
	w := e.waitState(store.WebhookFailed)
	if w.Attempts != 2 || w.LastError == "" || strings.Contains(w.LastError, "secret-in-url") {
		t.Errorf("stored %+v (the last error must not repeat the URL)", w)
	}
}

// TestURLReadAtSendTime: an event queued for the old URL goes to the new one.
func TestURLReadAtSendTime(t *testing.T) {
	oldRcv, newRcv := newReceiver(t), newReceiver(t)
	e := newTestEnv(t, oldRcv.URL, Config{})
	e.svc.Emit(context.Background(), testApp, "call.started", nil) // queued; no worker yet
	e.src.set(newRcv.URL)
	e.run(e.svc)
	e.waitState(store.WebhookDelivered)
	if n, m := len(oldRcv.requests()), len(newRcv.requests()); n != 0 || m != 1 {
		t.Errorf("old URL got %d, new URL got %d", n, m)
	}
}

func TestURLRemovedAfterQueueingFails(t *testing.T) {
	rcv := newReceiver(t)
	e := newTestEnv(t, rcv.URL, Config{})
	e.svc.Emit(context.Background(), testApp, "call.started", nil)
	e.src.set("")
	e.run(e.svc)
	w := e.waitState(store.WebhookFailed)
	if w.Attempts != 1 || !strings.Contains(w.LastError, "no webhook URL") || len(rcv.requests()) != 0 {
		t.Errorf("stored %+v", w)
	}
}

func TestEmitWithoutURLQueuesNothing(t *testing.T) {
	e := newTestEnv(t, "", Config{})
	e.svc.Emit(context.Background(), testApp, "call.started", map[string]string{"call_id": "c1"})
	e.src.urlErr = errors.New("settings unreadable")
	e.src.url = "http://example.invalid/"
	e.svc.Emit(context.Background(), testApp, "call.started", map[string]string{"call_id": "c2"})
	if ws := e.webhooks(); len(ws) != 0 {
		t.Errorf("%d events queued, want none", len(ws))
	}
	if !strings.Contains(e.log.String(), "settings unreadable") {
		t.Errorf("URL error not logged:\n%s", e.log.String())
	}
}

func TestEmitNeverFailsTheCaller(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *testEnv)
		payload any
		want    string // in the log
	}{
		{"store closed", func(e *testEnv) { _ = e.st.Close() }, nil, "event dropped: store event"},
		{"unknown app", func(*testEnv) {}, nil, ""}, // emitted for testApp+1 below
		{"payload cannot be encoded", func(*testEnv) {}, func() {}, "event dropped: encode event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, "http://127.0.0.1:1/hook", Config{})
			tt.prepare(e)
			app := int64(testApp)
			if tt.name == "unknown app" {
				app++
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // even a cancelled caller's context does not make Emit fail or hang
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.svc.Emit(ctx, app, "call.ended", tt.payload)
			}()
			select {
			case <-done:
			case <-time.After(emitTimeout + 3*time.Second):
				t.Fatal("Emit blocked")
			}
			if !strings.Contains(e.log.String(), tt.want) || e.counter(ResultDropped) != 1 {
				t.Errorf("dropped %v, log:\n%s", e.counter(ResultDropped), e.log.String())
			}
		})
	}
}

// TestEmitWithCancelledContextStillQueues: the event of a request whose
// client went away is still recorded.
func TestEmitWithCancelledContextStillQueues(t *testing.T) {
	rcv := newReceiver(t)
	e := newTestEnv(t, rcv.URL, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.svc.Emit(ctx, testApp, "call.ended", nil)
	if ws := e.webhooks(); len(ws) != 1 {
		t.Fatalf("%d events queued, want 1", len(ws))
	}
}

// TestConcurrentEmitAndTwoSenders emits from many goroutines while two
// Services (two processes) share the store: every event arrives, once.
func TestConcurrentEmitAndTwoSenders(t *testing.T) {
	rcv := newReceiver(t)
	e := newTestEnv(t, rcv.URL, Config{Workers: 3})
	other := New(Config{Workers: 2, PollInterval: 5 * time.Millisecond, Now: e.clock.Now, Logger: e.svc.log}, e.st, e.src, e.src)
	e.run(e.svc)
	e.run(other)
	const emitters, each = 8, 10
	var wg sync.WaitGroup
	for g := range emitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				svc := e.svc
				if i%2 == 1 {
					svc = other
				}
				svc.Emit(context.Background(), testApp, "call.started", map[string]int{"g": g, "i": i})
			}
		}()
	}
	wg.Wait()
	checkFor(t, 10*time.Second, func() error {
		ws := e.webhooks()
		delivered := 0
		for _, w := range ws {
			if w.State == store.WebhookDelivered {
				delivered++
			}
		}
		if delivered != emitters*each {
			return fmt.Errorf("%w: %d of %d delivered (%d queued)", errNotYet, delivered, emitters*each, len(ws))
		}
		return nil
	})
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		if !Verify(testSecret, r.body, r.header.Get(HeaderSignature)) {
			t.Errorf("bad signature on %s", r.body)
		}
		seen[r.header.Get(HeaderDelivery)]++
	}
	if len(seen) != emitters*each {
		t.Errorf("%d distinct events received, want %d", len(seen), emitters*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s received %d times", id, n)
		}
	}
}

func TestRunReturnsAfterInFlightRequest(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	e := newTestEnv(t, srv.URL, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	e.svc.Emit(context.Background(), testApp, "call.ended", nil)
	<-started
	cancel()
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	// The answer that arrived during shutdown is recorded.
	if ws := e.webhooks(); len(ws) != 1 || ws[0].State != store.WebhookDelivered {
		t.Errorf("events %+v", ws)
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"e1","type":"call.ended"}`)
	good := Sign(testSecret, body)
	// RFC 4231 test case 2.
	if got := Sign("Jefe", []byte("what do ya want for nothing?")); got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sign = %s", got)
	}
	tests := []struct {
		name   string
		secret string
		body   []byte
		sig    string
		want   bool
	}{
		{"valid", testSecret, body, good, true},
		{"valid, uppercase hex", testSecret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), true},
		{"wrong secret", "other", body, good, false},
		{"body changed", testSecret, append(bytes.Clone(body), ' '), good, false},
		{"empty", testSecret, body, "", false},
		{"prefix only", testSecret, body, "sha256=", false},
		{"no prefix", testSecret, body, strings.TrimPrefix(good, "sha256="), false},
		{"other algorithm", testSecret, body, "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"prefix case", testSecret, body, "SHA256=" + strings.TrimPrefix(good, "sha256="), false},
		{"truncated", testSecret, body, good[:len(good)-2], false},
		{"too long", testSecret, body, good + "00", false},
		{"not hex", testSecret, body, "sha256=" + strings.Repeat("zz", 32), false},
		{"odd length", testSecret, body, good[:len(good)-1], false},
		{"spaces", testSecret, body, " " + good, false},
		{"binary garbage", testSecret, body, "sha256=\x00\xff\xfe" + strings.Repeat("\x80", 61), false},
		{"two signatures", testSecret, body, good + "," + good, false},
		{"nil body", testSecret, nil, Sign(testSecret, nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.body, tt.sig); got != tt.want {
				t.Errorf("Verify(%q) = %v, want %v", tt.sig, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for attempts, ceiling := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 30: 10 * time.Minute} {
		for range 50 {
			if d := backoff(time.Second, 10*time.Minute, attempts); d < 0 || d > ceiling {
				t.Fatalf("backoff after %d attempts = %s, want within [0, %s]", attempts, d, ceiling)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := map[string]time.Duration{"": 0, "0": 0, "-5": 0, "abc": 0, "120": 2 * time.Minute, " 3 ": 3 * time.Second,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, "99999999": 24 * time.Hour}
	for in, want := range tests {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
