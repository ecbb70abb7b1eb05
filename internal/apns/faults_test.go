package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/apnssim"
)

// These tests run the client against the simulator's fault injection:
// Apple's bad days, seen from the provider side.

const simBundle = "com.example.faults"

type simSetup struct {
	sim   *apnssim.Simulator
	clock *fakeClock
	cred  *Credential
	token string
}

func newSimSetup(t *testing.T) *simSetup {
	t.Helper()
	clock := newTestClock()
	sim, err := apnssim.New(apnssim.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	k, err := sim.IssueKey(apnssim.EnvBoth)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(k.P8))
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sim.MintDevice(simBundle, apnssim.EnvDevelopment, apnssim.KindAlert)
	if err != nil {
		t.Fatal(err)
	}
	cred := &Credential{ID: 1, Environment: Development, SigningKey: priv.(*ecdsa.PrivateKey), KeyID: k.KeyID, TeamID: k.TeamID}
	return &simSetup{sim: sim, clock: clock, cred: cred, token: tok}
}

func (s *simSetup) client(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{ProductionURL: s.sim.ProductionURL(), SandboxURL: s.sim.SandboxURL(), RootCAs: s.sim.RootCAs(),
		Now: s.clock.Now, Logger: discardLogger(), RequestTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *simSetup) note() *Notification {
	return &Notification{DeviceToken: s.token, Topic: simBundle, PushType: PushTypeAlert, Priority: 10, Payload: []byte(`{"aps":{"alert":"hi"}}`)}
}

// TestJWTRefreshCountedOverHours runs three simulated hours of pushes on a
// fake clock shared by the client and the simulator, through GOAWAYs and a
// stream limit of 1, and counts provider tokens per connection: none is
// replaced within 20 minutes, and APNs never refuses one as too frequent
// or too old.
func TestJWTRefreshCountedOverHours(t *testing.T) {
	s := newSimSetup(t)
	obs := &countingObserver{}
	c := s.client(t, func(cfg *Config) { cfg.Observer = obs; cfg.MaxConnsPerPool = 2 })
	const step, total = time.Minute, 3 * time.Hour
	maxChanges := map[uint64]int64{}
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		switch elapsed {
		case time.Hour: // an hour of GOAWAY every 7 answers on a stream limit of 1
			s.sim.SetFaults(apnssim.Faults{GoAwayAfter: 7, MaxConcurrentStreams: 1})
		case 2 * time.Hour:
			s.sim.ClearFaults()
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				resp, err := c.Send(context.Background(), s.cred, s.note())
				if err != nil || resp.Status != 200 {
					t.Errorf("at %s: %+v %v", elapsed, resp, err)
				}
			})
		}
		wg.Wait()
		for _, cs := range s.sim.Stats().Connections {
			life := s.clock.Now().Sub(cs.OpenedAt)
			if allowed := int64(life / MinTokenRefresh); cs.JWTChanges > allowed {
				t.Fatalf("connection %d changed its JWT %d times in %s", cs.ID, cs.JWTChanges, life)
			}
			maxChanges[cs.ID] = max(maxChanges[cs.ID], cs.JWTChanges)
		}
		s.clock.Advance(step)
	}
	st := s.sim.Stats()
	if st.ByReason["TooManyProviderTokenUpdates"] != 0 || st.ByReason["ExpiredProviderToken"] != 0 {
		t.Fatalf("APNs refused tokens: %v", st.ByReason)
	}
	var changes int64
	for _, n := range maxChanges {
		changes += n
	}
	// Every JWT is either a connection's first or one of its refreshes.
	if got, want := int64(obs.jwts.Load()), st.TotalConnections+changes; got != want {
		t.Errorf("JWTs issued %d, want connections %d + refreshes %d", got, st.TotalConnections, changes)
	}
	t.Logf("3 simulated hours: %d requests, %d connections (%d GOAWAYs), %d JWTs issued, %d refreshes on long-lived connections",
		st.Requests, st.TotalConnections, st.GoAways, obs.jwts.Load(), changes)
}

// TestBackoffDuringSimulatorRestart: while APNs refuses connections, Send
// answers a BackoffError with the wait at once instead of dialing per
// request, and dials stay few.
func TestBackoffDuringSimulatorRestart(t *testing.T) {
	s := newSimSetup(t)
	obs := &countingObserver{}
	c := s.client(t, func(cfg *Config) { cfg.Observer = obs; cfg.Now = time.Now })
	mustSend(t, c, s.cred, s.note())
	down := 1500 * time.Millisecond
	restarted := make(chan error, 1)
	go func() { restarted <- s.sim.Restart(context.Background(), down) }()
	checkFor(t, 5*time.Second, func() error {
		if c.OpenConnections() != 0 {
			return errNotYet
		}
		return nil
	})
	var backoffs, sends atomic.Int32
	deadline := time.Now().Add(down / 2)
	pace := time.NewTicker(time.Millisecond) // a client sending all the time
	defer pace.Stop()
	for ; time.Now().Before(deadline); <-pace.C {
		sends.Add(1)
		_, err := c.Send(context.Background(), s.cred, s.note())
		var be *BackoffError
		if errors.As(err, &be) {
			backoffs.Add(1)
			if be.Wait <= 0 || be.Wait > backoffMax {
				t.Fatalf("BackoffError.Wait = %s", be.Wait)
			}
		}
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if backoffs.Load() == 0 || obs.dialFailed.Load() > 3 {
		t.Fatalf("%d sends during the outage: %d BackoffErrors, %d failed dials", sends.Load(), backoffs.Load(), obs.dialFailed.Load())
	}
	checkFor(t, 10*time.Second, func() error {
		resp, err := c.Send(context.Background(), s.cred, s.note())
		if err != nil || resp.Status != 200 {
			return errNotYet
		}
		return nil
	})
	t.Logf("outage of %s: %d sends, %d BackoffErrors, %d failed dials", down, sends.Load(), backoffs.Load(), obs.dialFailed.Load())
}

// TestConnectionsBoundedUnderGoAway: with a stream limit of 1 and a GOAWAY
// every few answers, connections are replaced all the time, yet open ones
// (draining included) never exceed MaxConnsPerPool, on either side.
func TestConnectionsBoundedUnderGoAway(t *testing.T) {
	s := newSimSetup(t)
	const maxConns = 4
	c := s.client(t, func(cfg *Config) { cfg.MaxConnsPerPool = maxConns; cfg.Now = time.Now })
	s.sim.SetFaults(apnssim.Faults{GoAwayAfter: 3, MaxConcurrentStreams: 1, LatencyMS: 2})
	stop := make(chan struct{})
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), int64(c.OpenConnections())))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var failed, unsent atomic.Int32
	for range 16 {
		wg.Go(func() {
			for range 15 {
				resp, err := c.Send(context.Background(), s.cred, s.note())
				switch {
				case err != nil && notSent(errors.Unwrap(err)):
					unsent.Add(1)
				case err != nil || resp.Status != 200:
					failed.Add(1)
					t.Errorf("send: %v %v", resp, err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	st := s.sim.Stats()
	if peak.Load() > maxConns || c.Pools() != 1 {
		t.Fatalf("peak %d open connections in %d pools, want at most %d", peak.Load(), c.Pools(), maxConns)
	}
	// A request that met a GOAWAY is retried once by Send; one that meets
	// two comes back as not sent, for the push pipeline to retry. How many
	// do depends on the scheduling (a loaded CI machine saw 8%), so only
	// their kind is checked, and that most sends got through.
	if u := unsent.Load(); u > 240/2 {
		t.Errorf("%d of 240 sends were not sent", u)
	}
	t.Logf("240 sends: %d not sent (retryable), %d failed, %d connections opened, %d GOAWAYs, peak %d open",
		unsent.Load(), failed.Load(), st.TotalConnections, st.GoAways, peak.Load())
}
