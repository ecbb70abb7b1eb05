package server

import (
	"context"
	"fmt"

	"github.com/ringd/ringd/internal/console"
)

// openConsole builds the web console on the API's service methods and
// starts its dashboard sampler, stopped when the server closes.
func (s *Server) openConsole(context.Context) error {
	var sim console.Simulator // a nil interface, not a typed nil, without --dev
	if s.sim != nil {
		sim = s.sim
	}
	c, err := console.New(console.Config{
		Services: s.api, AdminToken: s.adminToken, Simulator: sim, Metrics: s.registry,
		Now: s.opts.Clock.Now, Logger: s.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	s.console = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	s.closers = append(s.closers, func() error { cancel(); <-done; return nil })
	return nil
}
