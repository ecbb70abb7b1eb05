// Package server wires ringd's parts into one process: store, secrets,
// APNs client (or the in-process simulator with --dev), push pipeline, REST
// API and metrics on one address, with a graceful shutdown.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/apns"
	"github.com/ringd/ringd/internal/apnssim"
	"github.com/ringd/ringd/internal/bus"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/clock"
	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/console"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/gateway"
	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
	"github.com/ringd/ringd/internal/webhooks"
)

// Options are what a caller of New may add to the Config: where to print
// the start banner and which logger and clock to use.
type Options struct {
	Stdout io.Writer
	Logger *slog.Logger
	Clock  clock.Clock // nil: the real clock; tests pass a fake to fire ring timeouts
}

// Server is one running ringd.
type Server struct {
	cfg        config.Config
	opts       Options
	log        *slog.Logger
	store      store.Store
	sealer     *credentials.Sealer
	sim        *apnssim.Simulator
	apns       *apns.Client
	creds      *push.CredentialCache
	push       *push.Service
	hub        *bus.Hub
	calls      *calls.Service
	gateway    *gateway.Gateway
	webhooks   *webhooks.Service
	api        *httpapi.API
	console    *console.Console
	registry   *prometheus.Registry
	httpSrv    *http.Server
	listener   net.Listener
	adminToken string
	debugAddr  string
	demo       *Demo
	closers    []func() error
	closeOnce  sync.Once
}

// New opens everything the Config names and starts listening, so Addr is
// known before Run. On error, whatever was opened is closed again.
func New(ctx context.Context, cfg config.Config, opts Options) (s *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	srv := &Server{cfg: cfg, opts: opts, log: opts.Logger, registry: prometheus.NewRegistry()}
	s = srv
	defer func() {
		if err != nil {
			// srv, not s: every error return sets the named result s to nil.
			_ = srv.close()
		}
	}()
	for _, step := range []func(context.Context) error{
		s.openDataDir, s.openSecrets, s.openStore, s.openSimulator, s.openAPNs, s.openPipeline, s.openConsole, s.openHTTP, s.openDebug,
	} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Dev {
		if s.demo, err = s.ensureDemo(ctx); err != nil {
			return nil, fmt.Errorf("dev demo app: %w", err)
		}
	}
	return s, nil
}

func (s *Server) openDataDir(context.Context) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := LockDataDir(s.cfg.DataDir, false)
	if err != nil {
		return fmt.Errorf("%w: is `ringd rotate-master-key` running?", err)
	}
	s.closers = append(s.closers, unlock)
	return nil
}

func (s *Server) openSecrets(context.Context) error {
	keyFile := s.cfg.MasterKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(s.cfg.DataDir, "master.key")
	}
	key, err := credentials.LoadOrCreateMasterKey(keyFile)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	if s.sealer, err = credentials.NewSealer(key); err != nil {
		return fmt.Errorf("master key %s: %w", keyFile, err)
	}
	token, generated, err := adminToken(s.cfg.AdminToken, s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.adminToken = token
	if generated {
		s.log.Info("generated an admin token", "file", filepath.Join(s.cfg.DataDir, "admin.token"))
	}
	return nil
}

func (s *Server) openStore(ctx context.Context) error {
	st, err := openStore(ctx, s.cfg, s.log)
	if err != nil {
		return err
	}
	s.store = st
	s.closers = append(s.closers, st.Close)
	return nil
}

func (s *Server) openSimulator(ctx context.Context) error {
	if !s.cfg.Dev {
		return nil
	}
	sim, err := apnssim.New(apnssim.Config{StateDir: filepath.Join(s.cfg.DataDir, "apns-sim"), Logger: s.log.With("component", "apns-sim")})
	if err != nil {
		return fmt.Errorf("apns simulator: %w", err)
	}
	s.closers = append(s.closers, sim.Close)
	if err := sim.Start(ctx); err != nil {
		return fmt.Errorf("apns simulator: %w", err)
	}
	s.sim = sim
	s.log.Info("apns simulator running", "sandbox", sim.SandboxURL(), "production", sim.ProductionURL())
	return nil
}

func (s *Server) openAPNs(context.Context) error {
	cfg := apns.Config{ProductionURL: s.cfg.APNSProdURL, SandboxURL: s.cfg.APNSSandboxURL, Logger: s.log.With("component", "apns")}
	if s.sim != nil {
		cfg.ProductionURL, cfg.SandboxURL, cfg.RootCAs = s.sim.ProductionURL(), s.sim.SandboxURL(), s.sim.RootCAs()
	} else if s.cfg.APNSCAFile != "" {
		pool, err := readCAFile(s.cfg.APNSCAFile)
		if err != nil {
			return err
		}
		cfg.RootCAs = pool
	}
	client, err := apns.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("apns client: %w", err)
	}
	s.apns = client
	s.closers = append(s.closers, client.Close)
	return nil
}

func readCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--apns-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--apns-ca-file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func (s *Server) openPipeline(ctx context.Context) error {
	s.hub = bus.NewHub()
	s.creds = push.NewCredentialCache(s.store, s.sealer)
	// The parts refer to each other through the API (secrets, settings)
	// and the webhooks (push and call events); closures resolve them once
	// all exist.
	s.webhooks = webhooks.New(webhooks.Config{Logger: s.log.With("component", "webhooks"), Metrics: s.registry, Now: s.opts.Clock.Now},
		s.store, apiSecrets{s}, apiSettings{s})
	s.push = push.New(push.Config{
		Workers: s.cfg.PushWorkers, DefaultTTL: s.cfg.PushTTL, MaxOutbox: s.cfg.MaxOutbox, Now: s.opts.Clock.Now,
		Logger: s.log.With("component", "push"), Metrics: push.NewMetrics(s.registry), OnFinal: s.pushFinal,
	}, s.store, s.apns, s.creds)
	// One settings cache for the API, which writes the settings, and the
	// call service, which reads them for every call.
	set := settings.NewCache(s.store, 0, s.opts.Clock.Now)
	s.calls = calls.New(calls.Config{Clock: s.opts.Clock, Logger: s.log.With("component", "calls"), Metrics: s.registry, Settings: set.Load},
		s.store, s.hub, s.push, s.webhooks)
	s.api = httpapi.New(httpapi.Config{
		Store: s.store, Sealer: s.sealer, Push: s.push, Calls: s.calls, AdminToken: s.adminToken, MaxDevices: s.cfg.MaxDevices,
		Limits: apiLimits(s.cfg), SecretGrace: s.cfg.SecretGrace,
		Now: s.opts.Clock.Now, Logger: s.log.With("component", "api"), CredentialChanged: s.forgetCredential, Settings: set,
	})
	s.gateway = gateway.New(gateway.Config{Logger: s.log.With("component", "gateway"), Metrics: s.registry, MaxConnsPerIP: wsLimit(s.cfg)}, s.calls, s.hub, s.api, s.api)
	s.registerMetrics()
	if err := s.calls.Start(ctx); err != nil {
		return fmt.Errorf("calls: %w", err)
	}
	s.closers = append(s.closers, func() error { s.calls.Close(); return nil })
	// After Drain, this ends what is left and stops the gateway's Waiter;
	// closers run in reverse, so sessions end before the calls service.
	s.closers = append(s.closers, func() error { s.gateway.Close(); return nil })
	return nil
}

// pushFinal turns a push that failed or expired into a push.failed webhook.
func (s *Server) pushFinal(ctx context.Context, ev push.FinalEvent) {
	s.webhooks.Emit(ctx, ev.SDKAppID, "push.failed", ev)
}

type apiSecrets struct{ s *Server }

func (a apiSecrets) AppSecret(ctx context.Context, sdkAppID int64) (string, error) {
	return a.s.api.AppSecret(ctx, sdkAppID)
}

type apiSettings struct{ s *Server }

func (a apiSettings) WebhookURL(ctx context.Context, sdkAppID int64) (string, error) {
	return a.s.api.WebhookURL(ctx, sdkAppID)
}

// forgetCredential drops a deleted certificate's cached key and its APNs
// connections.
func (s *Server) forgetCredential(id int64) {
	s.creds.Forget(id)
	s.apns.Forget(id)
}

func (s *Server) openHTTP(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	trusted, err := config.ParsePrefixes(s.cfg.TrustedProxies)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	s.listener = newLimitListener(ln, s.cfg.MaxConnsPerIP, trusted, s.registry, s.log.With("component", "http"))
	s.httpSrv = &http.Server{
		Handler:           realIP(trusted, s.routes()),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// Addr is the address the server listens on (useful with :0).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the base URL of the API.
func (s *Server) URL() string { return "http://" + s.Addr() }

// AdminToken is the token that admin requests must send.
func (s *Server) AdminToken() string { return s.adminToken }

// Simulator is the in-process APNs simulator (nil without --dev).
func (s *Server) Simulator() *apnssim.Simulator { return s.sim }

// Demo is the --dev demo app (nil without --dev).
func (s *Server) Demo() *Demo { return s.demo }

// Run serves until ctx is done, then shuts down within the configured
// deadline: stop accepting, finish requests, stop the push workers (what is
// not sent stays in the outbox), close APNs connections and the store.
func (s *Server) Run(ctx context.Context) error {
	workers, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{s.push.Run, s.webhooks.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(workers); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.httpSrv.Serve(s.listener) }()
	s.printBanner()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	s.log.Info("shutting down", "deadline", s.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	// Lame duck: clients are told to reconnect (spread over part of the
	// deadline) before the listener closes, so calls survive a deploy.
	s.gateway.Drain(shutdownCtx, s.cfg.ShutdownTimeout/4)
	if e := s.httpSrv.Shutdown(shutdownCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("http shutdown: %w", e))
	}
	stopWorkers()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		s.log.Warn("workers did not stop before the deadline; unsent pushes stay in the outbox")
	}
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return errors.Join(err, s.close())
}

func (s *Server) close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.listener != nil {
			_ = s.listener.Close() // already closed after a Shutdown; needed when Run never ran
		}
		for i := len(s.closers) - 1; i >= 0; i-- {
			err = errors.Join(err, s.closers[i]())
		}
	})
	return err
}
