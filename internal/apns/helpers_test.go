package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

// seenRequest is what the fake APNs received.
type seenRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Remote       string
	PeerCert     *x509.Certificate
}

type fakeOptions struct {
	maxStreams  uint32 // SETTINGS_MAX_CONCURRENT_STREAMS; 0: Go's default
	requireCert bool
}

// fakeAPNs is an HTTP/2 TLS server on 127.0.0.1:0 that records requests
// and answers with answer (200 when nil).
type fakeAPNs struct {
	srv   *httptest.Server
	dials atomic.Int32 // TCP connections accepted

	mu     sync.Mutex
	seen   []seenRequest
	answer func(w http.ResponseWriter, r *http.Request)
}

func newFakeAPNs(t testing.TB, opts fakeOptions) *fakeAPNs {
	t.Helper()
	f := &fakeAPNs{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.EnableHTTP2 = true
	if opts.maxStreams > 0 {
		srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(opts.maxStreams)}
	}
	if opts.requireCert {
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.dials.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are expected in some tests
	srv.StartTLS()
	f.srv = srv
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return f
}

func (f *fakeAPNs) setAnswer(a func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Remote: r.RemoteAddr}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s.PeerCert = r.TLS.PeerCertificates[0]
	}
	f.mu.Lock()
	f.seen = append(f.seen, s)
	answer := f.answer
	f.mu.Unlock()
	if answer != nil {
		answer(w, r)
		return
	}
	w.Header().Set("apns-id", r.Header.Get("apns-id"))
	w.WriteHeader(http.StatusOK)
}

func (f *fakeAPNs) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeAPNs) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.srv.Certificate())
	return p
}

// fakeClock is Config.Now with a settable offset from the real clock.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func newTestClock() *fakeClock               { return &fakeClock{} }

// countingObserver counts events.
type countingObserver struct {
	NopObserver
	opened, closed, dialFailed, jwts, requests atomic.Int32
}

func (o *countingObserver) ConnOpened(ConnEvent)     { o.opened.Add(1) }
func (o *countingObserver) ConnClosed(ConnEvent)     { o.closed.Add(1) }
func (o *countingObserver) DialFailed(ConnEvent)     { o.dialFailed.Add(1) }
func (o *countingObserver) JWTIssued(ConnEvent)      { o.jwts.Add(1) }
func (o *countingObserver) RequestDone(RequestEvent) { o.requests.Add(1) }

// newTestClient returns a client pointed at f for both environments.
func newTestClient(t testing.TB, f *fakeAPNs, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		ProductionURL: f.srv.URL,
		SandboxURL:    f.srv.URL,
		RootCAs:       f.roots(),
		Logger:        discardLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newP8Credential(t testing.TB, id int64) *Credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Credential{ID: id, Environment: Development, SigningKey: key, KeyID: "ABC123DEFG", TeamID: "DEF123GHIJ"}
}

// newCertCredential makes a self-signed client certificate standing in for
// an Apple push certificate from a .p12.
func newCertCredential(t testing.TB, id int64) *Credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(id),
		Subject:      pkix.Name{CommonName: "Apple Development IOS Push Services: com.example.app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return &Credential{ID: id, Environment: Production, Certificate: cert}
}

func voipNotification() *Notification {
	zero := time.Unix(0, 0)
	return &Notification{
		DeviceToken: testToken,
		Topic:       "com.example.app.voip",
		PushType:    PushTypeVoIP,
		Expiration:  &zero,
		Priority:    10,
		Payload:     []byte(`{"aps":{},"call_id":"c1"}`),
	}
}

var errNotYet = errors.New("not yet")

// checkFor polls f until it returns nil or timeout passes (nats' checkFor):
// tests wait for a condition, never for a duration.
func checkFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("condition not met after %s: %v", timeout, err)
		case <-tick.C:
		}
	}
}

func mustSend(t testing.TB, c *Client, cred *Credential, n *Notification) *Response {
	t.Helper()
	resp, err := c.Send(context.Background(), cred, n)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return resp
}

func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
