package apnssim

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxRestartDown bounds how long Restart keeps the endpoints down.
const maxRestartDown = time.Minute

// restartGrace is how long a restart lets requests in flight finish after
// GOAWAY before it cuts their connections.
const restartGrace = time.Second

// Restart takes both endpoints down the way a restarting APNs front end
// goes: the listeners close (dials are refused), every open connection
// gets GOAWAY, requests in flight may finish for a short grace, then the
// connections are cut. After down the endpoints listen again on the same
// addresses. Keys, certificates, devices, inboxes, faults and counters are
// kept. It returns once the endpoints accept again, or with ctx's error
// (the endpoints then stay down until the next Restart).
func (s *Simulator) Restart(ctx context.Context, down time.Duration) error {
	if down < 0 || down > maxRestartDown {
		return fmt.Errorf("%w: down must be between 0 and %s", ErrInvalid, maxRestartDown)
	}
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return errors.New("apnssim: closed")
	}
	if !s.started.Load() {
		return errors.New("apnssim: not started")
	}
	s.log.Info("apns simulator restarting", "down", down)
	s.closeListeners()
	s.loops.Wait() // no connection is accepted after this
	s.conns.drain(restartGrace)
	s.stats.restarts.Add(1)
	t := time.NewTimer(down)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	for _, e := range s.endpoints {
		if err := e.listen(ctx); err != nil {
			s.closeListeners()
			return fmt.Errorf("apnssim: restart: %w", err)
		}
	}
	for _, e := range s.endpoints {
		s.loops.Add(1)
		go e.acceptLoop()
	}
	s.log.Info("apns simulator restarted", "sandbox", s.SandboxURL(), "production", s.ProductionURL())
	return nil
}
