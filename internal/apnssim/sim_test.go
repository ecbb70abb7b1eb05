package apnssim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringd/ringd/internal/credentials"
)

// tokenSetup is a sandbox simulator with one legacy key and an alert device.
type tokenSetup struct {
	sim   *Simulator
	clock *fakeClock
	key   KeyIssue
	jwt   string // one token, as a client reuses it for up to an hour
	token string
}

func newTokenSetup(t *testing.T, mod ...func(*Config)) *tokenSetup {
	t.Helper()
	sim, clock := newTestSim(t, t.TempDir(), mod...)
	key := mustV(sim.IssueKey(""))
	return &tokenSetup{sim: sim, clock: clock, key: key,
		jwt:   bearer(signJWT(t, key.P8, key.KeyID, key.TeamID, clock.Now().Unix())),
		token: mustV(sim.MintDevice(testBundle, EnvDevelopment, KindAlert))}
}

func (s *tokenSetup) header(t testing.TB) http.Header {
	return http.Header{
		"Authorization":  {s.jwt},
		"Apns-Topic":     {testBundle},
		"Apns-Push-Type": {"alert"},
	}
}

func (s *tokenSetup) push(t testing.TB, c *http.Client, h http.Header, body string) result {
	t.Helper()
	return do(t, c, http.MethodPost, s.sim.SandboxURL()+devicePath+s.token, h, []byte(body))
}

func TestUnregisteredTimestampInMilliseconds(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	uninstalled := s.clock.Now()
	if err := s.sim.Uninstall(s.token); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(90 * time.Second)
	got := s.push(t, newClient(t, s.sim), s.header(t), alertBody)
	if got.status != http.StatusGone || got.reason != ReasonUnregistered {
		t.Fatalf("got %d %q", got.status, got.reason)
	}
	if got.timestamp != uninstalled.UnixMilli() {
		t.Fatalf("timestamp %d, want uninstall time %d (ms)", got.timestamp, uninstalled.UnixMilli())
	}
	// A second uninstall keeps the first time.
	if err := s.sim.Uninstall(s.token); err != nil {
		t.Fatal(err)
	}
	if got := s.push(t, newClient(t, s.sim), s.header(t), alertBody); got.timestamp != uninstalled.UnixMilli() {
		t.Fatalf("timestamp moved to %d", got.timestamp)
	}
}

func TestResponseIDs(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	prodKey := mustV(s.sim.IssueKeyWith(KeyOptions{TeamID: s.key.TeamID}))
	prodTok := mustV(s.sim.MintDevice(testBundle, EnvProduction, KindAlert))
	c := newClient(t, s.sim)

	h := s.header(t)
	h.Set("apns-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	got := s.push(t, c, h, alertBody)
	if got.header.Get("apns-id") != "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
		t.Errorf("apns-id %q not echoed", got.header.Get("apns-id"))
	}
	if !isCanonicalUUID(got.header.Get("apns-unique-id")) {
		t.Errorf("sandbox apns-unique-id %q", got.header.Get("apns-unique-id"))
	}
	// An error answer on the sandbox has one too.
	if got := s.push(t, c, s.header(t), ""); got.header.Get("apns-unique-id") == "" {
		t.Error("no apns-unique-id on a sandbox error")
	}

	h = http.Header{
		"Authorization": {bearer(signJWT(t, prodKey.P8, prodKey.KeyID, prodKey.TeamID, s.clock.Now().Unix()))},
		"Apns-Topic":    {testBundle},
	}
	got = do(t, newClient(t, s.sim), http.MethodPost, s.sim.ProductionURL()+devicePath+prodTok, h, []byte(alertBody))
	if got.status != http.StatusOK {
		t.Fatalf("production: %d %q", got.status, got.reason)
	}
	if v, ok := got.header["Apns-Unique-Id"]; ok {
		t.Errorf("production answered apns-unique-id %q", v)
	}
	if !isCanonicalUUID(got.header.Get("apns-id")) {
		t.Errorf("generated apns-id %q", got.header.Get("apns-id"))
	}
}

func TestInbox(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t, func(c *Config) { c.InboxLimit = 3 })
	c := newClient(t, s.sim)
	h := s.header(t)
	h.Set("apns-id", "11111111-2222-4333-8444-555555555555")
	h.Set("apns-expiration", "0")
	h.Set("apns-priority", "10")
	h.Set("apns-collapse-id", "call-1")
	payload := `{"aps":{"alert":{"title":"Ann"},"sound":"ring.caf"},"call_id":"c1"}`
	got := s.push(t, c, h, payload)
	if got.status != http.StatusOK {
		t.Fatalf("push: %d %q", got.status, got.reason)
	}
	list := mustV(s.sim.Inbox(s.token))
	if len(list) != 1 {
		t.Fatalf("inbox has %d notifications", len(list))
	}
	n := list[0]
	want := NotificationHeaders{PushType: "alert", Topic: testBundle, Expiration: "0", Priority: "10",
		ID: "11111111-2222-4333-8444-555555555555", CollapseID: "call-1"}
	if n.Headers != want {
		t.Errorf("headers %+v, want %+v", n.Headers, want)
	}
	if string(n.Payload) != payload || n.PayloadInvalid {
		t.Errorf("payload %s", n.Payload)
	}
	if n.Environment != EnvDevelopment || !n.ReceivedAt.Equal(s.clock.Now()) {
		t.Errorf("environment %q received %v", n.Environment, n.ReceivedAt)
	}
	if n.UniqueID != got.header.Get("apns-unique-id") {
		t.Errorf("unique id %q, answered %q", n.UniqueID, got.header.Get("apns-unique-id"))
	}

	// Not JSON: accepted, kept as a string.
	s.push(t, c, s.header(t), "not json")
	for i := range 3 {
		s.push(t, c, s.header(t), `{"n":`+string(rune('0'+i))+`}`)
	}
	list = mustV(s.sim.Inbox(s.token))
	if len(list) != 3 || string(list[0].Payload) != `{"n":0}` || string(list[2].Payload) != `{"n":2}` {
		t.Fatalf("inbox not bounded to the last 3, oldest first: %+v", list)
	}
	if _, err := s.sim.Inbox(strings.Repeat("00", 32)); err == nil {
		t.Error("inbox of an unknown token")
	}
}

func TestInvalidPayloadKeptAsString(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	s.push(t, newClient(t, s.sim), s.header(t), "not json")
	n := mustV(s.sim.Inbox(s.token))[0]
	if !n.PayloadInvalid || string(n.Payload) != `"not json"` {
		t.Fatalf("payload %s invalid=%v", n.Payload, n.PayloadInvalid)
	}
	if _, err := json.Marshal(n); err != nil {
		t.Fatalf("inbox entry does not marshal: %v", err)
	}
}

// TestProviderTokenPerConnection follows one connection through token
// refreshes: Apple binds the first key, limits changes to one per 20
// minutes and expires tokens after an hour.
func TestProviderTokenPerConnection(t *testing.T) {
	t.Parallel()
	s := newTokenSetup(t)
	other := mustV(s.sim.IssueKeyWith(KeyOptions{TeamID: s.key.TeamID}))
	c := newClient(t, s.sim)
	with := func(k KeyIssue, iat time.Time) http.Header {
		h := s.header(t)
		h.Set("authorization", bearer(signJWT(t, k.P8, k.KeyID, k.TeamID, iat.Unix())))
		return h
	}
	expect := func(step string, h http.Header, status int, reason string) {
		t.Helper()
		if got := s.push(t, c, h, alertBody); got.status != status || got.reason != reason {
			t.Fatalf("%s: got %d %q, want %d %q", step, got.status, got.reason, status, reason)
		}
	}
	first := with(s.key, s.clock.Now())
	expect("first token", first, 200, "")
	expect("same token again", first, 200, "")

	s.clock.Advance(5 * time.Minute)
	expect("new token after 5 minutes", with(s.key, s.clock.Now()), 429, ReasonTooManyProviderTokenUpdates)
	expect("old token still bound", first, 200, "")
	expect("another key of the team", with(other, s.clock.Now()), 403, ReasonUnrelatedKeyIDInToken)

	s.clock.Advance(16 * time.Minute)
	second := with(s.key, s.clock.Now())
	expect("new token after 21 minutes", second, 200, "")

	s.clock.Advance(61 * time.Minute)
	expect("bound token now 61 minutes old", second, 403, ReasonExpiredProviderToken)
	expect("refreshed token", with(s.key, s.clock.Now()), 200, "")

	st := s.sim.Stats()
	if len(st.Connections) != 1 {
		t.Fatalf("%d connections, want 1: %+v", len(st.Connections), st.Connections)
	}
	cs := st.Connections[0]
	if cs.JWTChanges != 2 || cs.Auth != "token" || cs.KeyID != s.key.KeyID || cs.Requests != 8 {
		t.Errorf("connection stats %+v", cs)
	}
	if st.ByReason[ReasonTooManyProviderTokenUpdates] != 1 || st.JWTChanges != 2 {
		t.Errorf("stats %+v", st)
	}

	// A new connection may use the other key.
	if got := s.push(t, newClient(t, s.sim), with(other, s.clock.Now()), alertBody); got.status != 200 {
		t.Fatalf("other key on a new connection: %d %q", got.status, got.reason)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newFakeClock()
	open := func() *Simulator {
		sim, err := New(Config{StateDir: dir, Now: clock.Now, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return sim
	}
	sim := open()
	key := mustV(sim.IssueKey(EnvDevelopment))
	tok := mustV(sim.MintDeviceWith(DeviceOptions{BundleID: testBundle, Environment: EnvDevelopment,
		Kind: KindVoIP, TeamID: key.TeamID}))
	gone := mustV(sim.MintDevice(testBundle, EnvDevelopment, KindAlert))
	if err := sim.Uninstall(gone); err != nil {
		t.Fatal(err)
	}
	ci := mustV(sim.IssueCertificateWith(CertOptions{BundleID: testBundle, VoIP: true, KeyType: KeyTypeECDSA}))
	caPEM := sim.CACertPEM()
	jwt := bearer(signJWT(t, key.P8, key.KeyID, key.TeamID, clock.Now().Unix()))
	h := http.Header{"Authorization": {jwt}, "Apns-Topic": {testBundle + ".voip"}, "Apns-Push-Type": {"voip"}}
	if got := do(t, newClient(t, sim), "POST", sim.SandboxURL()+devicePath+tok, h, []byte(`{"n":1}`)); got.status != 200 {
		t.Fatalf("before restart: %d %q", got.status, got.reason)
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}

	sim = open()
	t.Cleanup(func() { _ = sim.Close() })
	if !bytes.Equal(sim.CACertPEM(), caPEM) {
		t.Fatal("CA changed across restart")
	}
	if got := do(t, newClient(t, sim), "POST", sim.SandboxURL()+devicePath+tok, h, []byte(`{"n":2}`)); got.status != 200 {
		t.Fatalf("token and key after restart: %d %q", got.status, got.reason)
	}
	// The certificate issued before the restart is still trusted.
	hc := http.Header{"Apns-Topic": {testBundle + ".voip"}, "Apns-Push-Type": {"voip"}}
	if got := do(t, newClient(t, sim, tlsCert(t, ci)), "POST", sim.SandboxURL()+devicePath+tok, hc, []byte(`{"n":3}`)); got.status != 200 {
		t.Fatalf("certificate after restart: %d %q", got.status, got.reason)
	}
	inbox := mustV(sim.Inbox(tok))
	if len(inbox) != 3 || string(inbox[0].Payload) != `{"n":1}` {
		t.Fatalf("inbox after restart: %+v", inbox)
	}
	hg := http.Header{"Authorization": {jwt}, "Apns-Topic": {testBundle}}
	if got := do(t, newClient(t, sim), "POST", sim.SandboxURL()+devicePath+gone, hg, []byte(alertBody)); got.status != http.StatusGone {
		t.Fatalf("uninstall lost across restart: %d %q", got.status, got.reason)
	}
	other := mustV(sim.IssueKey(""))
	ho := http.Header{"Authorization": {bearer(signJWT(t, other.P8, other.KeyID, other.TeamID, clock.Now().Unix()))},
		"Apns-Topic": {testBundle + ".voip"}}
	if got := do(t, newClient(t, sim), "POST", sim.SandboxURL()+devicePath+tok, ho, []byte(alertBody)); got.reason != ReasonTopicDisallowed {
		t.Fatalf("bundle ownership lost across restart: %d %q", got.status, got.reason)
	}
}

func TestInMemoryState(t *testing.T) {
	t.Parallel()
	sim, _ := newTestSim(t, "")
	if _, err := sim.MintDevice(testBundle, EnvDevelopment, KindAlert); err != nil {
		t.Fatal(err)
	}
}

func TestHTTP1Refused(t *testing.T) {
	t.Parallel()
	sim, _ := newTestSim(t, "")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs(), NextProtos: []string{"http/1.1"}}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Post(sim.SandboxURL()+devicePath+"00", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/1.1 answered %s", resp.Status)
	}
}

func TestUntrustedClientCertificate(t *testing.T) {
	t.Parallel()
	sim, _ := newTestSim(t, "")
	tok := mustV(sim.MintDevice(testBundle, EnvDevelopment, KindAlert))
	c := newClient(t, sim, selfSignedClientCert(t))
	req, _ := http.NewRequest(http.MethodPost, sim.SandboxURL()+devicePath+tok, strings.NewReader(alertBody))
	req.Header.Set("apns-topic", testBundle)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("certificate from another CA answered %s", resp.Status)
	}
}

func selfSignedClientCert(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: credentials.CNPrefixUniversal + testBundle},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: credentials.OIDDevelopment, Value: asn1Null}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCertificateShape(t *testing.T) {
	t.Parallel()
	sim, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cases := []struct {
		env               string
		voip              bool
		cnPrefix          string
		dev, prod, isVoIP bool
		topics            []string
	}{
		{EnvDevelopment, false, credentials.CNPrefixDevelopment, true, false, false, []string{testBundle}},
		{EnvProduction, false, credentials.CNPrefixProduction, false, true, false, []string{testBundle}},
		{EnvBoth, false, credentials.CNPrefixUniversal, true, true, false, []string{testBundle}},
		{EnvBoth, true, credentials.CNPrefixVoIP, true, true, true, []string{testBundle, testBundle + ".voip"}},
		{EnvProduction, true, credentials.CNPrefixVoIP, false, true, true, []string{testBundle, testBundle + ".voip"}},
	}
	for _, tc := range cases {
		ci := mustV(sim.IssueCertificateWith(CertOptions{BundleID: testBundle, Environment: tc.env, VoIP: tc.voip,
			KeyType: KeyTypeECDSA}))
		cert := tlsCert(t, ci).Leaf
		if cert.Issuer.CommonName != caCommonName {
			t.Errorf("issuer %q", cert.Issuer.CommonName)
		}
		if cert.Subject.CommonName != tc.cnPrefix+testBundle {
			t.Errorf("%s voip=%v: CN %q", tc.env, tc.voip, cert.Subject.CommonName)
		}
		info, err := credentials.ReadCertInfo(cert)
		if err != nil {
			t.Fatal(err)
		}
		if info.BundleID != testBundle || info.Development != tc.dev || info.Production != tc.prod ||
			info.VoIP != tc.isVoIP || strings.Join(info.Topics, ",") != strings.Join(tc.topics, ",") {
			t.Errorf("%s voip=%v: %+v", tc.env, tc.voip, info)
		}
		if d := time.Until(ci.ExpiresAt); d < 364*24*time.Hour || d > 366*24*time.Hour {
			t.Errorf("expires in %v", d)
		}
	}
	legacy := mustV(sim.IssueCertificateWith(CertOptions{BundleID: testBundle, Legacy: true, KeyType: KeyTypeECDSA}))
	if tlsCert(t, legacy).Leaf == nil {
		t.Fatal("legacy p12 did not decode")
	}
}

// TestFlusherPersistsInboxes: accepted pushes reach the disk without Close.
func TestFlusherPersistsInboxes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newTokenSetup(t, func(c *Config) { c.StateDir = dir })
	if got := s.push(t, newClient(t, s.sim), s.header(t), `{"flushed":true}`); got.status != 200 {
		t.Fatalf("push: %d %q", got.status, got.reason)
	}
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		var f devicesFile
		if _, err := newStateFiles(dir).read(devicesFileName, &f); err != nil {
			return err
		}
		for _, d := range f.Devices {
			if d.Token == s.token && len(d.Inbox) == 1 && string(d.Inbox[0].Payload) == `{"flushed":true}` {
				return nil
			}
		}
		return errNotYet
	})
}
