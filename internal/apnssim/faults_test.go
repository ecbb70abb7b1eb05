package apnssim

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestFaultErrorStatuses(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newClient(t, s.sim)
	for st, reason := range faultReasons {
		s.sim.SetFaults(Faults{ErrorRate: 1, ErrorStatuses: []int{st}})
		if got := s.push(t, c, s.header(t), alertBody); got.status != st || got.reason != reason {
			t.Fatalf("injected %d: got %d %q", st, got.status, got.reason)
		}
	}
	// Faults strike accepted pushes only: Apple's own checks still answer.
	if got := s.push(t, c, s.header(t), ""); got.reason != ReasonPayloadEmpty {
		t.Fatalf("invalid push under faults: %d %q", got.status, got.reason)
	}
	s.sim.ClearFaults()
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("after clear: %d %q", got.status, got.reason)
	}
	if n := len(mustV(s.sim.Inbox(s.token))); n != 1 {
		t.Fatalf("inbox has %d notifications; failed pushes must not be delivered", n)
	}
}

func TestFaultDurationAutoClears(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newClient(t, s.sim)
	s.sim.SetFaults(Faults{ErrorRate: 1, DurationMS: 1000})
	if got := s.push(t, c, s.header(t), alertBody); got.status < 500 {
		t.Fatalf("fault not in force: %d", got.status)
	}
	s.clock.Advance(1001 * time.Millisecond)
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("fault not cleared: %d %q", got.status, got.reason)
	}
	if f, _ := s.sim.CurrentFaults(); f.ErrorRate != 0 {
		t.Fatalf("faults still listed: %+v", f)
	}
}

func TestFaultInvalidIgnored(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	s.sim.SetFaults(Faults{LatencyMS: 5})
	s.sim.SetFaults(Faults{ErrorRate: 2})
	if f, _ := s.sim.CurrentFaults(); f.LatencyMS != 5 {
		t.Fatalf("invalid faults replaced valid ones: %+v", f)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newClient(t, s.sim)
	s.push(t, c, s.header(t), alertBody) // connect first
	s.sim.SetFaults(Faults{LatencyMS: 150})
	start := time.Now()
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("%d %q", got.status, got.reason)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	s.sim.SetFaults(Faults{ResetRate: 1})
	c := newClient(t, s.sim)
	req, _ := http.NewRequest(http.MethodPost, s.sim.SandboxURL()+devicePath+s.token, strings.NewReader(alertBody))
	req.Header = s.header(t)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("reset fault answered %s", resp.Status)
	}
	if st := s.sim.Stats(); st.Resets == 0 || st.Accepted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultGoAway(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	s.sim.SetFaults(Faults{GoAwayAfter: 2})
	c := newClient(t, s.sim)
	for i := range 3 {
		if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
			t.Fatalf("push %d: %d %q", i, got.status, got.reason)
		}
	}
	st := s.sim.Stats()
	if st.GoAways != 1 || st.TotalConnections != 2 {
		t.Fatalf("goaways %d, connections %d; want 1 and 2", st.GoAways, st.TotalConnections)
	}
	// The first connection closes once the client sees the GOAWAY.
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := s.sim.Stats().OpenConnections; n != 1 {
			return fmt.Errorf("%w: %d open connections", errNotYet, n)
		}
		return nil
	})
}

func TestFaultMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	s.sim.SetFaults(Faults{MaxConcurrentStreams: 1})
	if got := s.streamsAdvertised(t); got != 1 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 1", got)
	}
	s.sim.ClearFaults()
	if got := s.streamsAdvertised(t); got != DefaultMaxConcurrentStreams {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, DefaultMaxConcurrentStreams)
	}
}

// streamsAdvertised opens a connection, pushes once (so the server's
// SETTINGS have arrived) and reads the stream limit the client saw.
func (s *tokenSetup) streamsAdvertised(t *testing.T) uint32 {
	t.Helper()
	u, _ := url.Parse(s.sim.SandboxURL())
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: s.sim.RootCAs(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, _ := http.NewRequest(http.MethodPost, s.sim.SandboxURL()+devicePath+s.token, strings.NewReader(alertBody))
	req.Header = s.header(t)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return cc.State().MaxConcurrentStreams
}
