package apnssim

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// fakeClock starts at the real time, so TLS (which uses the real clock)
// and the simulator agree, and moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newTestSim starts a simulator on loopback ports with a fake clock and
// closes it when the test ends.
func newTestSim(t testing.TB, dir string, mod ...func(*Config)) (*Simulator, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{StateDir: dir, Now: clock.Now, Logger: testLogger(t)}
	for _, m := range mod {
		m(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim, clock
}

// newClient returns an HTTP/2 client that trusts the simulator; each
// client opens its own connections.
func newClient(t testing.TB, sim *Simulator, certs ...tls.Certificate) *http.Client {
	t.Helper()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs(), Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type result struct {
	status    int
	reason    string
	timestamp int64
	header    http.Header
	body      []byte
}

// do sends one request and decodes Apple's error body strictly.
func do(t testing.TB, c *http.Client, method, url string, h http.Header, body []byte) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := result{status: resp.StatusCode, header: resp.Header, body: raw}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("error body %q: %v", raw, err)
		}
		r.reason, r.timestamp = e.Reason, e.Timestamp
	}
	return r
}

// signJWT builds an APNs provider token the way apns2 does.
func signJWT(t testing.TB, p8, kid, iss string, iat int64) string {
	t.Helper()
	return signJWTAlg(t, p8, kid, iss, "ES256", iat)
}

func signJWTAlg(t testing.TB, p8, kid, iss, alg string, iat int64) string {
	t.Helper()
	blk, _ := pem.Decode([]byte(p8))
	if blk == nil {
		t.Fatal("p8: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("p8: %v", err)
	}
	key := k.(*ecdsa.PrivateKey)
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(fmt.Sprintf(`{"alg":%q,"kid":%q}`, alg, kid)))
	claims := enc.EncodeToString([]byte(fmt.Sprintf(`{"iss":%q,"iat":%d}`, iss, iat)))
	digest := sha256.Sum256([]byte(head + "." + claims))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return head + "." + claims + "." + enc.EncodeToString(sig)
}

func bearer(tok string) string { return "bearer " + tok }

// tlsCert opens an issued p12 as a client certificate.
func tlsCert(t testing.TB, ci CertIssue) tls.Certificate {
	t.Helper()
	key, cert, _, err := pkcs12.DecodeChain(ci.P12, ci.Password)
	if err != nil {
		t.Fatalf("decode p12: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// checkFor polls f until it succeeds or the deadline passes.
func checkFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		<-tick.C
	}
}

var errNotYet = errors.New("not yet")
