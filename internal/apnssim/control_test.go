package apnssim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ringd/ringd/internal/credentials"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

type controlClient struct {
	t   *testing.T
	srv *httptest.Server
}

func newControl(t *testing.T, sim *Simulator) *controlClient {
	srv := httptest.NewServer(sim.ControlHandler())
	t.Cleanup(srv.Close)
	return &controlClient{t: t, srv: srv}
}

// call sends a control request and decodes the JSON answer into out.
func (c *controlClient) call(method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type apiErrBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	sim, clock := newTestSim(t, t.TempDir())
	c := newControl(t, sim)

	var key KeyIssue
	if st := c.call("POST", "/sim/v1/keys", `{"environment":"development","team_id":"TEAM123456"}`, &key); st != 200 {
		t.Fatalf("keys: %d", st)
	}
	if !isAppleID(key.KeyID) || key.TeamID != "TEAM123456" || key.Environment != EnvDevelopment ||
		!strings.HasPrefix(key.P8, "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("key %+v", key)
	}
	var legacy KeyIssue
	if c.call("POST", "/sim/v1/keys", "", &legacy); legacy.Environment != EnvBoth || !isAppleID(legacy.TeamID) {
		t.Fatalf("default key %+v", legacy)
	}

	var ci struct {
		P12           []byte `json:"p12"`
		Password      string `json:"password"`
		CertificateID string `json:"certificate_id"`
		ExpiresAt     string `json:"expires_at"`
	}
	if st := c.call("POST", "/sim/v1/certificates",
		`{"bundle_id":"com.example.ringer","environment":"production","voip":false,"key_type":"ecdsa"}`, &ci); st != 200 {
		t.Fatalf("certificates: %d", st)
	}
	_, cert, err := pkcs12.Decode(ci.P12, ci.Password)
	if err != nil {
		t.Fatalf("p12: %v", err)
	}
	info, err := credentials.ReadCertInfo(cert)
	if err != nil || info.Development || !info.Production || ci.CertificateID == "" || ci.ExpiresAt == "" {
		t.Fatalf("certificate %+v %+v %v", ci, info, err)
	}

	var dev struct{ Token string }
	if st := c.call("POST", "/sim/v1/devices",
		`{"bundle_id":"com.example.ringer","environment":"development","kind":"alert","length":48}`, &dev); st != 200 {
		t.Fatalf("devices: %d", st)
	}
	if len(dev.Token) != 96 || strings.ToLower(dev.Token) != dev.Token {
		t.Fatalf("token %q", dev.Token)
	}
	h := http.Header{"Authorization": {bearer(signJWT(t, key.P8, key.KeyID, key.TeamID, clock.Now().Unix()))},
		"Apns-Topic": {testBundle}, "Apns-Push-Type": {"alert"}, "Apns-Priority": {"10"}}
	if got := do(t, newClient(t, sim), "POST", sim.SandboxURL()+devicePath+dev.Token, h, []byte(alertBody)); got.status != 200 {
		t.Fatalf("push: %d %q", got.status, got.reason)
	}

	var inbox struct {
		Notifications []struct {
			Headers     map[string]string `json:"headers"`
			Payload     json.RawMessage   `json:"payload"`
			ReceivedAt  string            `json:"received_at"`
			Environment string            `json:"environment"`
		} `json:"notifications"`
	}
	c.call("GET", "/sim/v1/devices/"+dev.Token+"/inbox", "", &inbox)
	if len(inbox.Notifications) != 1 {
		t.Fatalf("inbox %+v", inbox)
	}
	n := inbox.Notifications[0]
	if n.Headers["apns-push-type"] != "alert" || n.Headers["apns-topic"] != testBundle || n.Headers["apns-priority"] != "10" ||
		!isCanonicalUUID(n.Headers["apns-id"]) || string(n.Payload) != alertBody || n.Environment != EnvDevelopment || n.ReceivedAt == "" {
		t.Fatalf("notification %+v", n)
	}

	var list struct{ Devices []DeviceInfo }
	if c.call("GET", "/sim/v1/devices", "", &list); len(list.Devices) != 1 || list.Devices[0].InboxCount != 1 {
		t.Fatalf("devices %+v", list)
	}
	var gone DeviceInfo
	if st := c.call("DELETE", "/sim/v1/devices/"+dev.Token, "", &gone); st != 200 || gone.UninstalledAt == nil {
		t.Fatalf("uninstall: %d %+v", st, gone)
	}

	var f Faults
	if st := c.call("POST", "/sim/v1/faults", `{"error_rate":0.5,"error_statuses":[429],"latency_ms":1}`, &f); st != 200 || f.ErrorRate != 0.5 {
		t.Fatalf("faults: %d %+v", st, f)
	}
	if c.call("GET", "/sim/v1/faults", "", &f); f.LatencyMS != 1 {
		t.Fatalf("get faults %+v", f)
	}
	var cleared Faults
	if c.call("DELETE", "/sim/v1/faults", "", &cleared); cleared.ErrorRate != 0 || cleared.LatencyMS != 0 {
		t.Fatalf("cleared faults %+v", cleared)
	}

	var st Stats
	if c.call("GET", "/sim/v1/stats", "", &st); st.Accepted != 1 || st.ByStatus[200] != 1 {
		t.Fatalf("stats %+v", st)
	}
	var ep map[string]string
	if c.call("GET", "/sim/v1/endpoints", "", &ep); ep["sandbox_url"] != sim.SandboxURL() || ep["ca_pem"] == "" {
		t.Fatalf("endpoints %+v", ep)
	}
}

func TestControlErrors(t *testing.T) {
	t.Parallel()
	sim, _ := newTestSim(t, "")
	c := newControl(t, sim)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown field", "POST", "/sim/v1/keys", `{"environment":"both","colour":"red"}`, 400, CodeBadRequest},
		{"trailing data", "POST", "/sim/v1/keys", `{} {}`, 400, CodeBadRequest},
		{"not json", "POST", "/sim/v1/devices", `bundle=x`, 400, CodeBadRequest},
		{"bad environment", "POST", "/sim/v1/keys", `{"environment":"staging"}`, 400, CodeBadRequest},
		{"bad team id", "POST", "/sim/v1/keys", `{"team_id":"team"}`, 400, CodeBadRequest},
		{"device without bundle", "POST", "/sim/v1/devices", `{"environment":"development","kind":"alert"}`, 400, CodeBadRequest},
		{"device environment both", "POST", "/sim/v1/devices", `{"bundle_id":"a.b","environment":"both","kind":"alert"}`, 400, CodeBadRequest},
		{"device kind", "POST", "/sim/v1/devices", `{"bundle_id":"a.b","environment":"production","kind":"sms"}`, 400, CodeBadRequest},
		{"device length", "POST", "/sim/v1/devices", `{"bundle_id":"a.b","environment":"production","kind":"voip","length":4}`, 400, CodeBadRequest},
		{"certificate bundle", "POST", "/sim/v1/certificates", `{"bundle_id":"a b","environment":"both"}`, 400, CodeBadRequest},
		{"fault status", "POST", "/sim/v1/faults", `{"error_rate":1,"error_statuses":[418]}`, 400, CodeBadRequest},
		{"fault rate", "POST", "/sim/v1/faults", `{"reset_rate":1.5}`, 400, CodeBadRequest},
		{"body too large", "POST", "/sim/v1/keys", `{"team_id":"` + strings.Repeat("A", maxControlBody) + `"}`, 413, CodeBodyTooLarge},
		{"unknown device inbox", "GET", "/sim/v1/devices/" + strings.Repeat("ab", 32) + "/inbox", "", 404, CodeDeviceNotFound},
		{"unknown device uninstall", "DELETE", "/sim/v1/devices/abcd", "", 404, CodeDeviceNotFound},
		{"unknown endpoint", "GET", "/sim/v1/nope", "", 404, CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e apiErrBody
			c := &controlClient{t: t, srv: c.srv}
			if st := c.call(tc.method, tc.path, tc.body, &e); st != tc.status || e.Code != tc.code || e.Error == "" {
				t.Fatalf("got %d %+v, want %d %s", st, e, tc.status, tc.code)
			}
		})
	}
}

// TestBundleOwnership: a bundle belongs to the first team recorded for it.
func TestBundleOwnership(t *testing.T) {
	t.Parallel()
	sim, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if _, err := sim.MintDeviceWith(DeviceOptions{BundleID: testBundle, Environment: EnvDevelopment, Kind: KindAlert, TeamID: "AAAAAAAAAA"}); err != nil {
		t.Fatal(err)
	}
	_, err = sim.MintDeviceWith(DeviceOptions{BundleID: testBundle, Environment: EnvDevelopment, Kind: KindAlert, TeamID: "BBBBBBBBBB"})
	if err == nil {
		t.Fatal("a second team claimed the bundle")
	}
}
