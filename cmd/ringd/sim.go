package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ringd/ringd/internal/apnssim"
)

// runSim runs the APNs simulator alone: its two TLS endpoints and its
// control API on a plain HTTP address.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringd apns-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8444", "control API address (/sim/v1/)")
	sandbox := fs.String("sandbox-addr", "127.0.0.1:8445", "sandbox (development) endpoint")
	production := fs.String("production-addr", "127.0.0.1:8446", "production endpoint")
	stateDir := fs.String("state-dir", "./apns-sim-data", "where keys, certificates, devices and inboxes persist")
	caOut := fs.String("ca-out", "", "write the CA certificate (PEM) here, for ringd serve --apns-ca-file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sim, err := apnssim.New(apnssim.Config{StateDir: *stateDir, SandboxAddr: *sandbox, ProductionAddr: *production, Logger: logger})
	if err != nil {
		return err
	}
	defer sim.Close()
	if err := sim.Start(ctx); err != nil {
		return err
	}
	if *caOut != "" {
		if err := os.WriteFile(*caOut, sim.CACertPEM(), 0o644); err != nil {
			return fmt.Errorf("--ca-out: %w", err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "APNs simulator: sandbox %s, production %s, control API http://%s/sim/v1/\n", sim.SandboxURL(), sim.ProductionURL(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
