package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/clock"
	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/server"
	"github.com/ringd/ringd/internal/store/storetest"
)

const bundle = "com.example.ringtest"

// backends are the stores every end-to-end test runs against: SQLite
// always, PostgreSQL when RINGD_TEST_POSTGRES names one.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	b := map[string]func(t *testing.T) string{"sqlite": func(*testing.T) string { return "" }}
	if dsn := os.Getenv("RINGD_TEST_POSTGRES"); dsn != "" {
		b["postgres"] = func(t *testing.T) string { return storetest.FreshPostgresDSN(t, dsn) }
	}
	return b
}

// forEachBackend runs f as a subtest per store backend.
func forEachBackend(t *testing.T, f func(t *testing.T, database string)) {
	for name, dsn := range backends(t) {
		t.Run(name, func(t *testing.T) { f(t, dsn(t)) })
	}
}

type env struct {
	srv   *server.Server
	admin *client.Admin
	sim   *client.Simulator
}

// startDev runs `ringd serve --dev` in-process on a random port.
func startDev(t *testing.T, database string) *env {
	t.Helper()
	return startDevWith(t, database, nil)
}

// startDevWith is startDev with a clock (nil: the real one).
func startDevWith(t *testing.T, database string, clk clock.Clock) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Dev, cfg.Addr, cfg.DataDir, cfg.Database = true, "127.0.0.1:0", t.TempDir(), database
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger, Clock: clk})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &env{srv: srv, admin: client.NewAdmin(srv.URL(), srv.AdminToken(), nil), sim: client.NewSimulator(srv.URL(), nil)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// userFor returns an SDK client acting as user in app.
func (e *env) userFor(t *testing.T, app *client.App, user string) *client.User {
	sig, err := auth.GenUserSig(app.SDKAppID, app.SecretKey, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return client.NewUser(e.srv.URL(), sig, nil)
}

// certIDs uploads the simulator's development and production .p12 for
// bundle and returns their certificate IDs.
func (e *env) uploadP12(t *testing.T, app *client.App, environment string, voip bool) []client.Certificate {
	t.Helper()
	ctx := ctxT(t)
	simEnv := environment
	c := must[*client.SimCertificate](t)(e.sim.IssueCertificate(ctx, bundle, simEnv, voip))
	return must[[]client.Certificate](t)(e.admin.UploadP12(ctx, app.SDKAppID, c.P12, c.Password, environment))
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want API error %q", err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %q (%s), want %q", e.Code, e.Message, code)
	}
}
