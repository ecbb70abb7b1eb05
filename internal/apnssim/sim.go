package apnssim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Environments. A device token, a certificate environment and an endpoint
// are "development" (sandbox) or "production"; keys and certificates may
// also be "both".
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
	EnvBoth        = "both"
)

// Device kinds: the registration a token came from.
const (
	KindAlert = "alert" // UIApplication.registerForRemoteNotifications
	KindVoIP  = "voip"  // PKPushRegistry (PushKit)
)

// Defaults.
const (
	DefaultInboxLimit = 100
	// DefaultMaxConcurrentStreams is what APNs has been seen to advertise
	// (500 to 1500 over the years, "typically 1000").
	DefaultMaxConcurrentStreams = 1000
	// closeGrace bounds how long Close waits for connections to drain after
	// GOAWAY before cutting them.
	closeGrace = 3 * time.Second
	// flushInterval is how often accepted notifications reach the disk.
	flushInterval = time.Second
)

// Config configures a Simulator.
type Config struct {
	// StateDir is where keys, certificates, devices, inboxes and the CA
	// persist as JSON files. "" keeps everything in memory (benchmarks).
	StateDir string
	// SandboxAddr and ProductionAddr are the listen addresses of the two
	// TLS endpoints; "" means "127.0.0.1:0".
	SandboxAddr, ProductionAddr string
	// Now is the clock; nil means time.Now. Tests inject one to age JWTs.
	Now func() time.Time
	// Logger receives the simulator's logs; nil discards them.
	Logger *slog.Logger
	// InboxLimit is how many notifications each device keeps (default 100).
	InboxLimit int
}

// Simulator is an in-process APNs.
type Simulator struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store *stateFiles

	ca         *authority
	serverCert tls.Certificate
	tlsConfig  *tls.Config

	keys    keyRing
	certs   certLedger
	revoked revokedSerials
	devices deviceTable
	faults  faultBox
	stats   counters
	conns   connTable

	endpoints [2]*endpoint // sandbox, production

	baseCtx    context.Context
	cancelBase context.CancelFunc
	dirty      atomic.Bool // inboxes changed since the last flush
	started    atomic.Bool
	stopFlush  chan struct{}
	loops      sync.WaitGroup // accept loops
	bg         sync.WaitGroup // the flusher
	closeOnce  sync.Once
	closeErr   error
	// life serialises Restart and Close; closed is set by Close under it.
	life   sync.Mutex
	closed bool
}

// New loads the state in cfg.StateDir, or creates it: the CA key and
// certificate persist so that a restart keeps trusting what it issued.
func New(cfg Config) (*Simulator, error) {
	s := &Simulator{cfg: cfg, log: cfg.Logger, now: cfg.Now, stopFlush: make(chan struct{})}
	s.stats.init()
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.InboxLimit <= 0 {
		s.cfg.InboxLimit = DefaultInboxLimit
	}
	s.store = newStateFiles(cfg.StateDir)
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.endpoints[0] = &endpoint{sim: s, env: EnvDevelopment, addr: orLoopback(cfg.SandboxAddr)}
	s.endpoints[1] = &endpoint{sim: s, env: EnvProduction, addr: orLoopback(cfg.ProductionAddr)}
	return s, nil
}

func orLoopback(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// setupTLS issues a fresh server certificate from the persisted CA at every
// start; clients trust the CA, not the leaf.
func (s *Simulator) setupTLS() error {
	cert, err := s.ca.issueServerCert(s.now())
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	s.serverCert = cert
	s.tlsConfig = s.serverTLSConfig()
	return nil
}

// Start listens on both endpoints and serves until Close. ctx bounds the
// start only: the owner decides when to stop (a server draining on SIGTERM
// may still be pushing), and Close persists the state.
func (s *Simulator) Start(ctx context.Context) error {
	s.life.Lock() // not concurrently with Restart or Close
	defer s.life.Unlock()
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("apnssim: already started")
	}
	for _, e := range s.endpoints {
		if err := e.listen(ctx); err != nil {
			s.closeListeners()
			return err
		}
	}
	for _, e := range s.endpoints {
		s.loops.Add(1)
		go e.acceptLoop()
	}
	s.bg.Add(1)
	go s.flushLoop()
	s.log.Info("apns simulator started", "sandbox", s.SandboxURL(), "production", s.ProductionURL())
	return nil
}

// SandboxURL is the development endpoint, "https://127.0.0.1:PORT".
func (s *Simulator) SandboxURL() string { return s.endpoints[0].url() }

// ProductionURL is the production endpoint.
func (s *Simulator) ProductionURL() string { return s.endpoints[1].url() }

// RootCAs trusts the endpoints' server certificate (and the client
// certificates the simulator issues).
func (s *Simulator) RootCAs() *x509.CertPool { return s.ca.pool() }

// CACertPEM is the CA certificate in PEM, for --apns-ca-file.
func (s *Simulator) CACertPEM() []byte { return append([]byte(nil), s.ca.certPEM...) }

// Close stops the listeners, sends GOAWAY on every connection, waits a
// little for requests in flight, and persists the state.
func (s *Simulator) Close() error {
	s.closeOnce.Do(func() {
		s.life.Lock()
		defer s.life.Unlock()
		s.closed = true
		s.closeListeners()
		s.loops.Wait() // no connection is opened after this
		s.conns.drain(closeGrace)
		s.cancelBase()
		close(s.stopFlush)
		s.bg.Wait()
		s.closeErr = s.persistAll()
		s.log.Info("apns simulator stopped")
	})
	return s.closeErr
}

func (s *Simulator) closeListeners() {
	for _, e := range s.endpoints {
		e.close()
	}
}

// flushLoop writes devices and inboxes that changed, so neither the hot
// path nor minting touches the disk. The file holds every inbox, so the
// pause between writes grows with the time a write takes: persistence
// never costs more than about a tenth of the simulator's time.
func (s *Simulator) flushLoop() {
	defer s.bg.Done()
	t := time.NewTimer(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
		}
		wait := flushInterval
		if s.dirty.Swap(false) {
			start := time.Now()
			if err := s.persistDevices(); err != nil {
				s.dirty.Store(true)
				s.log.Error("apnssim: persist devices", "err", err)
			}
			wait = max(wait, 10*time.Since(start))
		}
		t.Reset(wait)
	}
}
