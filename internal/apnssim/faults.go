package apnssim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Fault limits, so a typo cannot wedge the simulator for hours.
const (
	maxFaultLatency  = time.Minute
	maxFaultDuration = 24 * time.Hour
)

// Faults makes the simulator misbehave the ways APNs does. Zero values
// turn each fault off.
type Faults struct {
	// ErrorRate is the share of otherwise accepted pushes answered with
	// one of ErrorStatuses instead (default [500, 503]).
	ErrorRate     float64 `json:"error_rate,omitempty"`
	ErrorStatuses []int   `json:"error_statuses,omitempty"` // 429, 500 or 503
	// LatencyMS delays every answer.
	LatencyMS int `json:"latency_ms,omitempty"`
	// ResetRate is the share of otherwise accepted pushes whose TCP
	// connection is reset instead of answered.
	ResetRate float64 `json:"reset_rate,omitempty"`
	// GoAwayAfter sends GOAWAY on a connection with its Nth answer.
	GoAwayAfter int `json:"goaway_after,omitempty"`
	// MaxConcurrentStreams is advertised in SETTINGS to new connections.
	MaxConcurrentStreams uint32 `json:"max_concurrent_streams,omitempty"`
	// DurationMS clears the faults this long after they are set.
	DurationMS int `json:"duration_ms,omitempty"`
}

// faultReasons are the statuses a fault may inject, with Apple's reasons.
var faultReasons = map[int]string{
	http.StatusTooManyRequests:     ReasonTooManyRequests,
	http.StatusInternalServerError: ReasonInternalServerError,
	http.StatusServiceUnavailable:  ReasonServiceUnavailable,
}

// Validate reports the first field out of range.
func (f Faults) Validate() error {
	switch {
	case !validRate(f.ErrorRate):
		return fmt.Errorf("%w: error_rate must be between 0 and 1", ErrInvalid)
	case !validRate(f.ResetRate):
		return fmt.Errorf("%w: reset_rate must be between 0 and 1", ErrInvalid)
	case f.LatencyMS < 0 || time.Duration(f.LatencyMS)*time.Millisecond > maxFaultLatency:
		return fmt.Errorf("%w: latency_ms must be between 0 and %d", ErrInvalid, maxFaultLatency.Milliseconds())
	case f.GoAwayAfter < 0:
		return fmt.Errorf("%w: goaway_after must not be negative", ErrInvalid)
	case f.MaxConcurrentStreams > math.MaxInt32:
		return fmt.Errorf("%w: max_concurrent_streams is too large", ErrInvalid)
	case f.DurationMS < 0 || time.Duration(f.DurationMS)*time.Millisecond > maxFaultDuration:
		return fmt.Errorf("%w: duration_ms must be between 0 and %d", ErrInvalid, maxFaultDuration.Milliseconds())
	case len(f.ErrorStatuses) > len(faultReasons)*4:
		return fmt.Errorf("%w: too many error_statuses", ErrInvalid)
	}
	for _, st := range f.ErrorStatuses {
		if _, ok := faultReasons[st]; !ok {
			return fmt.Errorf("%w: error_statuses may hold 429, 500 and 503, not %d", ErrInvalid, st)
		}
	}
	return nil
}

func validRate(r float64) bool { return r >= 0 && r <= 1 } // false for NaN

// activeFaults are Faults with their expiry resolved.
type activeFaults struct {
	Faults
	until time.Time // zero: until cleared
}

// faultBox publishes faults to the hot path with one atomic load.
type faultBox struct {
	p atomic.Pointer[activeFaults]
}

func (b *faultBox) current(now time.Time) *activeFaults {
	f := b.p.Load()
	if f != nil && !f.until.IsZero() && !now.Before(f.until) {
		b.p.CompareAndSwap(f, nil)
		return nil
	}
	return f
}

func (b *faultBox) maxStreams(now time.Time) uint32 {
	if f := b.current(now); f != nil && f.MaxConcurrentStreams > 0 {
		return f.MaxConcurrentStreams
	}
	return DefaultMaxConcurrentStreams
}

// SetFaults replaces the faults in force. Invalid values are logged and
// the faults left unchanged; the control API reports them as 400.
func (s *Simulator) SetFaults(f Faults) {
	if err := s.setFaults(f); err != nil {
		s.log.Warn("apnssim: faults refused", "err", err)
	}
}

func (s *Simulator) setFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if isZeroFaults(f) {
		s.faults.p.Store(nil)
		return nil
	}
	if f.ErrorRate > 0 && len(f.ErrorStatuses) == 0 {
		f.ErrorStatuses = []int{http.StatusInternalServerError, http.StatusServiceUnavailable}
	}
	a := &activeFaults{Faults: f}
	if f.DurationMS > 0 {
		a.until = s.now().Add(time.Duration(f.DurationMS) * time.Millisecond)
	}
	s.faults.p.Store(a)
	s.log.Info("apnssim: faults set", "error_rate", f.ErrorRate, "latency_ms", f.LatencyMS,
		"reset_rate", f.ResetRate, "goaway_after", f.GoAwayAfter, "max_concurrent_streams", f.MaxConcurrentStreams)
	return nil
}

func isZeroFaults(f Faults) bool {
	return f.ErrorRate == 0 && f.LatencyMS == 0 && f.ResetRate == 0 && f.GoAwayAfter == 0 &&
		f.MaxConcurrentStreams == 0
}

// ClearFaults turns every fault off.
func (s *Simulator) ClearFaults() { s.faults.p.Store(nil) }

// CurrentFaults returns the faults in force and when they clear (zero:
// never).
func (s *Simulator) CurrentFaults() (Faults, time.Time) {
	f := s.faults.current(s.now())
	if f == nil {
		return Faults{}, time.Time{}
	}
	return f.Faults, f.until
}

// maybeGoAway marks the Nth answer on a connection with "Connection:
// close", which the HTTP/2 server turns into a graceful GOAWAY: streams in
// flight finish, new ones must use another connection.
func (s *Simulator) maybeGoAway(h http.Header, cs *connState) {
	n := cs.requests.Add(1)
	f := s.faults.current(s.now())
	if f == nil || f.GoAwayAfter == 0 || n < int64(f.GoAwayAfter) {
		return
	}
	if cs.goaway.CompareAndSwap(false, true) {
		h["Connection"] = []string{"close"}
		s.stats.goaways.Add(1)
	}
}

// waitLatency delays the answer; false means the client gave up.
func (s *Simulator) waitLatency(ctx context.Context) bool {
	f := s.faults.current(s.now())
	if f == nil || f.LatencyMS == 0 {
		return true
	}
	t := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// injectFault turns an accepted push into an error answer or a reset.
func (s *Simulator) injectFault(cs *connState) (*rejection, bool) {
	f := s.faults.current(s.now())
	if f == nil {
		return nil, false
	}
	if f.ResetRate > 0 && rand.Float64() < f.ResetRate {
		s.resetConn(cs)
		return nil, true
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		st := f.ErrorStatuses[rand.IntN(len(f.ErrorStatuses))]
		return reject(faultReasons[st]), false
	}
	return nil, false
}

// resetConn drops the TCP connection without TLS close_notify or GOAWAY;
// SO_LINGER 0 makes the kernel send RST, like a crashed front end.
func (s *Simulator) resetConn(cs *connState) {
	if cs.raw == nil {
		return
	}
	s.stats.resets.Add(1) // before the close, which the client may see at once
	if tc, ok := cs.raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // best effort: a plain close still drops the connection
	}
	_ = cs.raw.Close()
}

func randIntn(n int) int { return rand.IntN(n) }
