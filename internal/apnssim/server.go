package apnssim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/ringd/ringd/internal/credentials"
)

// handshakeTimeout bounds a TLS handshake, so a silent peer cannot hold a
// goroutine.
const handshakeTimeout = 10 * time.Second

// endpoint is one of Apple's two hosts: sandbox or production.
type endpoint struct {
	sim  *Simulator
	env  string // EnvDevelopment (sandbox) or EnvProduction
	addr string

	mu sync.Mutex
	ln net.Listener
}

func (e *endpoint) listen(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", e.addr)
	if err != nil {
		return fmt.Errorf("listen %s endpoint on %s: %w", e.env, e.addr, err)
	}
	e.mu.Lock()
	e.ln = ln
	// Keep the port a ":0" listen was given, so that Restart listens on
	// the same address and clients find the endpoint again.
	e.addr = ln.Addr().String()
	e.mu.Unlock()
	return nil
}

func (e *endpoint) url() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln == nil {
		return ""
	}
	return "https://" + e.ln.Addr().String()
}

func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln != nil {
		_ = e.ln.Close() // the accept loop sees net.ErrClosed and returns
	}
}

func (e *endpoint) acceptLoop() {
	defer e.sim.loops.Done()
	backoff := 5 * time.Millisecond
	for {
		raw, err := e.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: wait rather than spin.
			e.sim.log.Warn("apnssim: accept", "env", e.env, "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		cs := e.sim.conns.open(e.env, raw, e.sim.now())
		e.sim.stats.connsTotal.Add(1)
		go e.serveConn(cs)
	}
}

// serveConn does the TLS handshake and serves HTTP/2 on one connection.
// Each connection gets its own http2.Server so that SETTINGS (max
// concurrent streams) follow the faults in force when it opened, and its
// own http.Server so Close can send it a GOAWAY.
func (e *endpoint) serveConn(cs *connState) {
	defer e.sim.conns.closed(cs)
	tc := tls.Server(cs.raw, e.sim.tlsConfig)
	defer tc.Close()
	if err := e.handshake(tc); err != nil {
		e.sim.log.Debug("apnssim: handshake", "env", e.env, "remote", cs.remote, "err", err)
		return
	}
	cs.readPeer(tc.ConnectionState())
	h2 := &http2.Server{MaxConcurrentStreams: e.sim.faults.maxStreams(e.sim.now())}
	hs := &http.Server{ErrorLog: slog.NewLogLogger(e.sim.log.Handler(), slog.LevelDebug)}
	if err := http2.ConfigureServer(hs, h2); err != nil {
		e.sim.log.Error("apnssim: configure http2", "err", err)
		return
	}
	if !cs.setShutdown(func() { _ = hs.Shutdown(context.Background()) }) {
		return // Close began during the handshake
	}
	ctx := context.WithValue(e.sim.baseCtx, connKey{}, cs)
	//lint:ignore SA1019 ServeConn is the only way to give each connection its own SETTINGS.
	h2.ServeConn(tc, &http2.ServeConnOpts{Context: ctx, BaseConfig: hs, Handler: e}) //nolint:staticcheck // see above
}

// handshake insists on TLS 1.2+ (config) and HTTP/2 by ALPN, as APNs does.
func (e *endpoint) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(e.sim.baseCtx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		return fmt.Errorf("client did not negotiate h2 (ALPN %q)", p)
	}
	return nil
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs != nil {
		cs.active.Add(1)
		defer cs.active.Add(-1)
	}
	e.sim.servePush(w, r, e.env, cs)
}

func (s *Simulator) serverTLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.serverCert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{http2.NextProtoTLS},
		// RequestClientCert plus our own chain check instead of
		// VerifyClientCertIfGiven: the standard check refuses an expired
		// certificate in the handshake, where Apple answers 403 BadCertificate.
		ClientAuth: tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return s.ca.verifyClientChain(raw)
		},
	}
}

type connKey struct{}

// connState is what APNs remembers about one TLS connection: its client
// certificate, the provider token bound to it, and counters.
type connState struct {
	id     uint64
	env    string
	remote string
	opened time.Time
	raw    net.Conn

	requests   atomic.Int64
	active     atomic.Int64 // requests being answered
	jwtChanges atomic.Int64
	goaway     atomic.Bool

	// Set once after the handshake, read-only afterwards.
	cert       *x509.Certificate
	certSerial string // upper-case hex, as CertIssue.CertificateID
	certInfo   credentials.CertInfo
	certErr    error

	mu       sync.Mutex
	shutdown func() // nil until HTTP/2 starts; sends GOAWAY
	draining bool
	token    tokenBinding
}

func (cs *connState) readPeer(st tls.ConnectionState) {
	if len(st.PeerCertificates) == 0 {
		return
	}
	// Under mu for Stats; the connection's handlers start after this.
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.cert = st.PeerCertificates[0]
	cs.certSerial = fmt.Sprintf("%X", cs.cert.SerialNumber)
	cs.certInfo, cs.certErr = credentials.ReadCertInfo(cs.cert)
}

// setShutdown reports false when the simulator is already draining.
func (cs *connState) setShutdown(f func()) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.draining {
		return false
	}
	cs.shutdown = f
	return true
}

func (cs *connState) authKind() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	switch {
	case cs.cert != nil:
		return authKindCertificate
	case cs.token.jwt != "":
		return "token"
	default:
		return ""
	}
}

// connTable tracks open connections for Stats and for a graceful Close.
type connTable struct {
	mu     sync.Mutex
	m      map[uint64]*connState
	nextID uint64
	wg     sync.WaitGroup
	count  atomic.Int64
}

func (t *connTable) open(env string, raw net.Conn, now time.Time) *connState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[uint64]*connState)
	}
	t.nextID++
	cs := &connState{id: t.nextID, env: env, remote: raw.RemoteAddr().String(), opened: now, raw: raw}
	t.m[cs.id] = cs
	t.wg.Add(1)
	t.count.Add(1)
	return cs
}

func (t *connTable) closed(cs *connState) {
	t.mu.Lock()
	delete(t.m, cs.id)
	t.mu.Unlock()
	t.count.Add(-1)
	t.wg.Done()
}

func (t *connTable) snapshot() []*connState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*connState, 0, len(t.m))
	for _, cs := range t.m {
		out = append(out, cs)
	}
	return out
}

// drain sends GOAWAY on every connection, lets requests in flight finish
// (for up to grace), then cuts what is left instead of waiting for each
// client to hang up: the HTTP/2 server would otherwise hold an idle
// connection open for another second after its GOAWAY.
func (t *connTable) drain(grace time.Duration) {
	for _, cs := range t.snapshot() {
		cs.mu.Lock()
		cs.draining = true
		f := cs.shutdown
		cs.mu.Unlock()
		if f != nil {
			f()
		} else {
			_ = cs.raw.Close() // still in the handshake
		}
	}
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for t.busy() && time.Now().Before(deadline) {
		<-tick.C
	}
	// Answers are flushed by each connection's writer just after the
	// handler returns; give them a moment before cutting.
	for settle := 0; settle < 20 && t.count.Load() > 0; settle++ {
		<-tick.C
	}
	for _, cs := range t.snapshot() {
		_ = cs.raw.Close()
	}
	t.wg.Wait()
}

func (t *connTable) busy() bool {
	for _, cs := range t.snapshot() {
		if cs.active.Load() > 0 {
			return true
		}
	}
	return false
}
