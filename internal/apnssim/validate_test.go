package apnssim

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
)

const (
	testBundle  = "com.example.ringer"
	otherBundle = "com.example.other"
	alertBody   = `{"aps":{"alert":"Incoming call"}}`
)

// fixture is one simulator with the keys, certificates and devices the
// push cases need.
type fixture struct {
	sim   *Simulator
	clock *fakeClock

	teamKey, devKey, prodKey, otherTeamKey, team2Key KeyIssue

	alertDev, voipDev, alertProd, otherApp, gone string

	certBoth, certDev, certProd, certVoIP, certExpired, certOther tls.Certificate
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sim, clock := newTestSim(t, t.TempDir())
	f := &fixture{sim: sim, clock: clock}
	f.teamKey = mustV(sim.IssueKey(EnvBoth))
	f.devKey = mustV(sim.IssueKeyWith(KeyOptions{Environment: EnvDevelopment, TeamID: f.teamKey.TeamID}))
	f.prodKey = mustV(sim.IssueKeyWith(KeyOptions{Environment: EnvProduction, TeamID: f.teamKey.TeamID}))
	f.team2Key = mustV(sim.IssueKeyWith(KeyOptions{TeamID: f.teamKey.TeamID}))
	f.otherTeamKey = mustV(sim.IssueKey(""))

	mint := func(bundle, env, kind string) string {
		return mustV(sim.MintDeviceWith(DeviceOptions{BundleID: bundle, Environment: env, Kind: kind,
			TeamID: f.teamKey.TeamID}))
	}
	f.alertDev = mint(testBundle, EnvDevelopment, KindAlert)
	f.voipDev = mint(testBundle, EnvDevelopment, KindVoIP)
	f.alertProd = mint(testBundle, EnvProduction, KindAlert)
	f.gone = mint(testBundle, EnvDevelopment, KindAlert)
	f.otherApp = mustV(sim.MintDevice(otherBundle, EnvDevelopment, KindAlert))
	if err := sim.Uninstall(f.gone); err != nil {
		t.Fatal(err)
	}

	cert := func(o CertOptions) tls.Certificate {
		if o.KeyType == "" {
			o.KeyType = KeyTypeECDSA
		}
		return tlsCert(t, mustV(sim.IssueCertificateWith(o)))
	}
	f.certBoth = cert(CertOptions{BundleID: testBundle, Environment: EnvBoth, KeyType: KeyTypeRSA})
	f.certDev = cert(CertOptions{BundleID: testBundle, Environment: EnvDevelopment})
	f.certProd = cert(CertOptions{BundleID: testBundle, Environment: EnvProduction})
	f.certVoIP = cert(CertOptions{BundleID: testBundle, VoIP: true})
	f.certExpired = cert(CertOptions{BundleID: testBundle, Expired: true})
	f.certOther = cert(CertOptions{BundleID: otherBundle})
	return f
}

// mustV unwraps (value, error) pairs in fixtures; a failure there is a
// broken test setup, so a panic (which fails the test) is enough.
func mustV[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (f *fixture) jwt(t testing.TB, k KeyIssue) string {
	return bearer(signJWT(t, k.P8, k.KeyID, k.TeamID, f.clock.Now().Unix()))
}

// pushReq is one request to an endpoint.
type pushReq struct {
	env    string
	method string
	path   string
	header http.Header
	cert   *tls.Certificate
	body   string
}

// base is a valid alert push with the team key to the sandbox.
func (f *fixture) base(t testing.TB) *pushReq {
	return &pushReq{
		env: EnvDevelopment, method: http.MethodPost, path: devicePath + f.alertDev,
		header: http.Header{
			"Authorization":  {f.jwt(t, f.teamKey)},
			"Apns-Topic":     {testBundle},
			"Apns-Push-Type": {"alert"},
		},
		body: alertBody,
	}
}

func (r *pushReq) set(k, v string) *pushReq {
	r.header[http.CanonicalHeaderKey(k)] = []string{v}
	return r
}
func (r *pushReq) del(k string) *pushReq  { delete(r.header, http.CanonicalHeaderKey(k)); return r }
func (r *pushReq) to(tok string) *pushReq { r.path = devicePath + tok; return r }

func (r *pushReq) withCert(c tls.Certificate) *pushReq {
	r.cert = &c
	return r.del("authorization")
}

func (r *pushReq) voip(tok string) *pushReq {
	return r.to(tok).set("apns-push-type", "voip").set("apns-topic", testBundle+".voip")
}

// send uses a fresh client, so every case starts on a new connection.
func (f *fixture) send(t testing.TB, r *pushReq) result {
	t.Helper()
	var c *http.Client
	if r.cert != nil {
		c = newClient(t, f.sim, *r.cert)
	} else {
		c = newClient(t, f.sim)
	}
	url := f.sim.SandboxURL()
	if r.env == EnvProduction {
		url = f.sim.ProductionURL()
	}
	return do(t, c, r.method, url+r.path, r.header, []byte(r.body))
}

func TestPushAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := func() int64 { return f.clock.Now().Unix() }
	cases := []struct {
		name   string
		req    func(t *testing.T, r *pushReq)
		status int
		reason string
	}{
		{"ok alert token", func(*testing.T, *pushReq) {}, 200, ""},
		{"ok voip token", func(_ *testing.T, r *pushReq) { r.voip(f.voipDev) }, 200, ""},
		{"ok background", func(_ *testing.T, r *pushReq) {
			r.set("apns-push-type", "background").set("apns-priority", "5")
		}, 200, ""},
		{"ok push type inferred from voip topic", func(_ *testing.T, r *pushReq) {
			r.voip(f.voipDev).del("apns-push-type")
		}, 200, ""},
		{"ok uppercase token", func(_ *testing.T, r *pushReq) { r.to(strings.ToUpper(f.alertDev)) }, 200, ""},
		{"ok all headers", func(_ *testing.T, r *pushReq) {
			r.set("apns-id", "123e4567-e89b-12d3-a456-426655440000").set("apns-expiration", "0").
				set("apns-priority", "10").set("apns-collapse-id", strings.Repeat("c", 64))
		}, 200, ""},
		{"ok production token", func(t *testing.T, r *pushReq) {
			r.env = EnvProduction
			r.to(f.alertProd).set("authorization", f.jwt(t, f.prodKey))
		}, 200, ""},
		{"ok development key on sandbox", func(t *testing.T, r *pushReq) {
			r.set("authorization", f.jwt(t, f.devKey))
		}, 200, ""},
		{"ok universal certificate implies topic", func(_ *testing.T, r *pushReq) {
			r.withCert(f.certBoth).del("apns-topic")
		}, 200, ""},
		{"ok universal certificate on production", func(_ *testing.T, r *pushReq) {
			r.env = EnvProduction
			r.withCert(f.certBoth).to(f.alertProd)
		}, 200, ""},
		{"ok voip certificate", func(_ *testing.T, r *pushReq) { r.withCert(f.certVoIP).voip(f.voipDev) }, 200, ""},
		{"ok voip payload at 5120", func(_ *testing.T, r *pushReq) {
			r.voip(f.voipDev).body = jsonOfSize(5120)
		}, 200, ""},

		{"GET", func(_ *testing.T, r *pushReq) { r.method = http.MethodGet; r.body = "" }, 405, ReasonMethodNotAllowed},
		{"bad path", func(_ *testing.T, r *pushReq) { r.path = "/3/devices/" + f.alertDev }, 404, ReasonBadPath},
		{"nested path", func(_ *testing.T, r *pushReq) { r.path = devicePath + f.alertDev + "/x" }, 404, ReasonBadPath},
		{"missing device token", func(_ *testing.T, r *pushReq) { r.path = devicePath }, 400, ReasonMissingDeviceToken},
		{"duplicate topic", func(_ *testing.T, r *pushReq) {
			r.header["Apns-Topic"] = []string{testBundle, testBundle}
		}, 400, ReasonDuplicateHeaders},
		{"apns-id not a uuid", func(_ *testing.T, r *pushReq) { r.set("apns-id", "call-42") }, 400, ReasonBadMessageID},
		{"apns-id uppercase", func(_ *testing.T, r *pushReq) {
			r.set("apns-id", "123E4567-E89B-12D3-A456-426655440000")
		}, 400, ReasonBadMessageID},
		{"unknown push type", func(_ *testing.T, r *pushReq) { r.set("apns-push-type", "telepathy") }, 400, ReasonInvalidPushType},
		{"expiration not digits", func(_ *testing.T, r *pushReq) { r.set("apns-expiration", "tomorrow") }, 400, ReasonBadExpirationDate},
		{"expiration negative", func(_ *testing.T, r *pushReq) { r.set("apns-expiration", "-1") }, 400, ReasonBadExpirationDate},
		{"priority 7", func(_ *testing.T, r *pushReq) { r.set("apns-priority", "7") }, 400, ReasonBadPriority},
		{"background at priority 10", func(_ *testing.T, r *pushReq) {
			r.set("apns-push-type", "background").set("apns-priority", "10")
		}, 400, ReasonBadPriority},
		{"collapse id 65 bytes", func(_ *testing.T, r *pushReq) {
			r.set("apns-collapse-id", strings.Repeat("c", 65))
		}, 400, ReasonBadCollapseID},

		{"no credentials", func(_ *testing.T, r *pushReq) { r.del("authorization") }, 403, ReasonMissingProviderToken},
		{"jwt garbage", func(_ *testing.T, r *pushReq) { r.set("authorization", "bearer garbage") }, 403, ReasonInvalidProviderToken},
		{"basic scheme", func(_ *testing.T, r *pushReq) { r.set("authorization", "Basic Zm9vOmJhcg==") }, 403, ReasonInvalidProviderToken},
		{"jwt alg ES384", func(t *testing.T, r *pushReq) {
			r.set("authorization", bearer(signJWTAlg(t, f.teamKey.P8, f.teamKey.KeyID, f.teamKey.TeamID, "ES384", now())))
		}, 403, ReasonInvalidProviderToken},
		{"jwt unknown kid", func(t *testing.T, r *pushReq) {
			r.set("authorization", bearer(signJWT(t, f.teamKey.P8, "ABCDEFGHIJ", f.teamKey.TeamID, now())))
		}, 403, ReasonInvalidProviderToken},
		{"jwt iss of another team", func(t *testing.T, r *pushReq) {
			r.set("authorization", bearer(signJWT(t, f.teamKey.P8, f.teamKey.KeyID, f.otherTeamKey.TeamID, now())))
		}, 403, ReasonInvalidProviderToken},
		{"jwt signed by another key", func(t *testing.T, r *pushReq) {
			r.set("authorization", bearer(signJWT(t, f.otherTeamKey.P8, f.teamKey.KeyID, f.teamKey.TeamID, now())))
		}, 403, ReasonInvalidProviderToken},
		{"jwt iat 61 minutes old", func(t *testing.T, r *pushReq) {
			r.set("authorization", bearer(signJWT(t, f.teamKey.P8, f.teamKey.KeyID, f.teamKey.TeamID, now()-61*60)))
		}, 403, ReasonExpiredProviderToken},
		{"development key on production", func(t *testing.T, r *pushReq) {
			r.env = EnvProduction
			r.to(f.alertProd).set("authorization", f.jwt(t, f.devKey))
		}, 403, ReasonBadEnvironmentKeyIDInToken},
		{"production key on sandbox", func(t *testing.T, r *pushReq) {
			r.set("authorization", f.jwt(t, f.prodKey))
		}, 403, ReasonBadEnvironmentKeyIDInToken},
		{"token auth without topic", func(_ *testing.T, r *pushReq) { r.del("apns-topic") }, 400, ReasonMissingTopic},
		{"voip certificate without topic", func(_ *testing.T, r *pushReq) {
			r.withCert(f.certVoIP).del("apns-topic")
		}, 400, ReasonMissingTopic},
		{"development certificate on production", func(_ *testing.T, r *pushReq) {
			r.env = EnvProduction
			r.withCert(f.certDev).to(f.alertProd)
		}, 403, ReasonBadCertificateEnvironment},
		{"production certificate on sandbox", func(_ *testing.T, r *pushReq) {
			r.withCert(f.certProd)
		}, 403, ReasonBadCertificateEnvironment},
		{"expired certificate", func(_ *testing.T, r *pushReq) { r.withCert(f.certExpired) }, 403, ReasonBadCertificate},
		{"certificate of another app", func(_ *testing.T, r *pushReq) { r.withCert(f.certOther) }, 400, ReasonTopicDisallowed},
		{"voip topic with an alert certificate", func(_ *testing.T, r *pushReq) {
			r.withCert(f.certBoth).voip(f.voipDev)
		}, 400, ReasonTopicDisallowed},
		{"key of a team that does not own the bundle", func(t *testing.T, r *pushReq) {
			r.set("authorization", f.jwt(t, f.otherTeamKey))
		}, 400, ReasonTopicDisallowed},
		{"malformed topic", func(_ *testing.T, r *pushReq) { r.set("apns-topic", "com.example..x") }, 400, ReasonBadTopic},
		{"voip push to the bundle topic", func(_ *testing.T, r *pushReq) {
			r.to(f.voipDev).set("apns-push-type", "voip")
		}, 400, ReasonInvalidPushType},
		{"alert push to the voip topic", func(_ *testing.T, r *pushReq) {
			r.to(f.voipDev).set("apns-topic", testBundle+".voip")
		}, 400, ReasonInvalidPushType},

		{"token not hex", func(_ *testing.T, r *pushReq) { r.to("zz" + f.alertDev[2:]) }, 400, ReasonBadDeviceToken},
		{"token odd length", func(_ *testing.T, r *pushReq) { r.to(f.alertDev[1:]) }, 400, ReasonBadDeviceToken},
		{"token unknown", func(_ *testing.T, r *pushReq) { r.to(strings.Repeat("ab", 32)) }, 400, ReasonBadDeviceToken},
		{"production token on sandbox", func(_ *testing.T, r *pushReq) { r.to(f.alertProd) }, 400, ReasonBadDeviceToken},
		{"sandbox token on production", func(t *testing.T, r *pushReq) {
			r.env = EnvProduction
			r.set("authorization", f.jwt(t, f.prodKey))
		}, 400, ReasonBadDeviceToken},
		{"alert token with voip topic", func(_ *testing.T, r *pushReq) { r.voip(f.alertDev) }, 400, ReasonDeviceTokenNotForTopic},
		{"voip token with bundle topic", func(_ *testing.T, r *pushReq) { r.to(f.voipDev) }, 400, ReasonDeviceTokenNotForTopic},
		{"token of another app", func(_ *testing.T, r *pushReq) { r.to(f.otherApp) }, 400, ReasonDeviceTokenNotForTopic},
		{"uninstalled app", func(_ *testing.T, r *pushReq) { r.to(f.gone) }, 410, ReasonUnregistered},
		{"empty payload", func(_ *testing.T, r *pushReq) { r.body = "" }, 400, ReasonPayloadEmpty},
		{"alert payload 4097", func(_ *testing.T, r *pushReq) { r.body = jsonOfSize(4097) }, 413, ReasonPayloadTooLarge},
		{"voip payload 5121", func(_ *testing.T, r *pushReq) {
			r.voip(f.voipDev).body = jsonOfSize(5121)
		}, 413, ReasonPayloadTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.base(t)
			tc.req(t, r)
			got := f.send(t, r)
			if got.status != tc.status || got.reason != tc.reason {
				t.Fatalf("got %d %q, want %d %q", got.status, got.reason, tc.status, tc.reason)
			}
			if tc.status == http.StatusOK && len(got.body) != 0 {
				t.Errorf("200 with body %q", got.body)
			}
			if !isCanonicalUUID(got.header.Get("apns-id")) {
				t.Errorf("apns-id %q is not a canonical UUID", got.header.Get("apns-id"))
			}
			if (tc.status == http.StatusGone) != (got.timestamp != 0) {
				t.Errorf("timestamp %d with status %d", got.timestamp, tc.status)
			}
		})
	}
}

// jsonOfSize is a valid JSON payload of exactly n bytes.
func jsonOfSize(n int) string {
	const head, tail = `{"aps":{"alert":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}
