package apnssim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRevokedKeyRefusedOnBoundConnection(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newClient(t, s.sim)
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("before revocation: %d %q", got.status, got.reason)
	}
	if err := s.sim.RevokeKey(s.key.KeyID); err != nil {
		t.Fatal(err)
	}
	// The token bound to the open connection is refused, and so is a new
	// token of the key on a new connection.
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusForbidden || got.reason != ReasonInvalidProviderToken {
		t.Fatalf("bound token after revocation: %d %q", got.status, got.reason)
	}
	fresh := s.header(t)
	fresh.Set("authorization", bearer(signJWT(t, s.key.P8, s.key.KeyID, s.key.TeamID, s.clock.Now().Unix()+1)))
	if got := s.push(t, newClient(t, s.sim), fresh, alertBody); got.status != http.StatusForbidden || got.reason != ReasonInvalidProviderToken {
		t.Fatalf("new token after revocation: %d %q", got.status, got.reason)
	}
	if err := s.sim.RevokeKey("NOSUCHKEY0"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestRevokedCertificateRefusedAndPersisted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sim, _ := newTestSim(t, dir)
	ci := mustV(sim.IssueCertificateWith(CertOptions{BundleID: testBundle, Environment: EnvDevelopment, KeyType: KeyTypeECDSA}))
	other := mustV(sim.IssueCertificateWith(CertOptions{BundleID: testBundle, Environment: EnvDevelopment, KeyType: KeyTypeECDSA}))
	tok := mustV(sim.MintDevice(testBundle, EnvDevelopment, KindAlert))
	h := http.Header{"Apns-Topic": {testBundle}, "Apns-Push-Type": {"alert"}}
	push := func(c *http.Client) result {
		return do(t, c, http.MethodPost, sim.SandboxURL()+devicePath+tok, h, []byte(alertBody))
	}
	revoked, kept := newClient(t, sim, tlsCert(t, ci)), newClient(t, sim, tlsCert(t, other))
	if got := push(revoked); got.status != http.StatusOK {
		t.Fatalf("before revocation: %d %q", got.status, got.reason)
	}
	if err := sim.RevokeCertificate(ci.CertificateID); err != nil {
		t.Fatal(err)
	}
	if got := push(revoked); got.status != http.StatusForbidden || got.reason != ReasonBadCertificate {
		t.Fatalf("after revocation: %d %q", got.status, got.reason)
	}
	if got := push(kept); got.status != http.StatusOK {
		t.Fatalf("another certificate of the bundle: %d %q", got.status, got.reason)
	}
	if err := sim.RevokeCertificate("00"); !errors.Is(err, ErrUnknownCertificate) {
		t.Fatalf("unknown certificate: %v", err)
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	// A simulator started on the same state still refuses it.
	again, _ := newTestSim(t, dir)
	if !again.revoked.has(ci.CertificateID) || again.revoked.has(other.CertificateID) {
		t.Fatal("revocation not persisted")
	}
}

func TestRestartKeepsAddressesAndState(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newClient(t, s.sim)
	sandbox := s.sim.SandboxURL()
	if got := s.push(t, c, s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("before restart: %d", got.status)
	}
	s.sim.SetFaults(Faults{LatencyMS: 1})
	restarted := make(chan error, 1)
	go func() { restarted <- s.sim.Restart(context.Background(), 300*time.Millisecond) }()
	// While down, the endpoint refuses connections.
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if s.sim.Stats().OpenConnections != 0 {
			return errNotYet
		}
		return nil
	})
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if s.sim.SandboxURL() != sandbox {
		t.Fatalf("sandbox URL %s after restart, was %s", s.sim.SandboxURL(), sandbox)
	}
	if got := s.push(t, newClient(t, s.sim), s.header(t), alertBody); got.status != http.StatusOK {
		t.Fatalf("after restart: %d %q", got.status, got.reason)
	}
	st := s.sim.Stats()
	if st.Restarts != 1 || st.TotalConnections != 2 {
		t.Errorf("stats %+v", st)
	}
	if f, _ := s.sim.CurrentFaults(); f.LatencyMS != 1 {
		t.Errorf("faults lost in the restart: %+v", f)
	}
	if n := len(mustV(s.sim.Inbox(s.token))); n != 2 {
		t.Errorf("inbox has %d notifications, want 2", n)
	}
	if err := s.sim.Restart(context.Background(), 2*time.Minute); !errors.Is(err, ErrInvalid) {
		t.Errorf("restart for 2 minutes: %v", err)
	}
}

func TestControlRevokeAndRestart(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	c := newControl(t, s.sim)
	ci := mustV(s.sim.IssueCertificateWith(CertOptions{BundleID: testBundle, KeyType: KeyTypeECDSA}))
	var e apiErrBody
	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/sim/v1/keys/" + s.key.KeyID + "/revoke", "", 200, ""},
		{"/sim/v1/keys/NOSUCHKEY0/revoke", "", 404, CodeKeyNotFound},
		{"/sim/v1/certificates/" + ci.CertificateID + "/revoke", "", 200, ""},
		{"/sim/v1/certificates/ABC/revoke", "", 404, CodeCertNotFound},
		{"/sim/v1/restart", `{"down_ms":-5}`, 400, CodeBadRequest},
		{"/sim/v1/restart", `{"down_ms":10}`, 200, ""},
	} {
		e = apiErrBody{}
		if st := c.call("POST", tc.path, tc.body, &e); st != tc.status || e.Code != tc.code {
			t.Errorf("POST %s %s: %d %q, want %d %q", tc.path, tc.body, st, e.Code, tc.status, tc.code)
		}
	}
	if s.sim.Stats().Restarts != 1 {
		t.Error("restart not counted")
	}
}
