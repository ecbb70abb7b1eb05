package console

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/apnssim"
)

func TestQuantile(t *testing.T) {
	bounds := []float64{.01, .1, 1}
	for _, tc := range []struct {
		name string
		cum  []float64
		q    float64
		want float64
		ok   bool
	}{
		{"empty", []float64{0, 0, 0, 0}, .5, 0, false},
		{"all in the first bucket", []float64{10, 10, 10, 10}, .5, .005, true},
		{"interpolated in the second", []float64{0, 10, 10, 10}, .5, .055, true},
		{"p99 in +Inf is the top bound", []float64{0, 0, 50, 100}, .99, 1, true},
		{"exact bucket edge", []float64{5, 10, 10, 10}, .5, .01, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantile(tc.q, bounds, tc.cum)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("quantile(%v) = %v, %v; want %v, %v", tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// testMetrics registers the series the dashboard reads.
type testMetrics struct {
	reg     *prometheus.Registry
	pushes  *prometheus.CounterVec
	latency *prometheus.HistogramVec
	outbox  prometheus.Gauge
	ringing prometheus.Gauge
	expiry  *prometheus.GaugeVec
}

func newTestMetrics() *testMetrics {
	m := &testMetrics{
		reg:     prometheus.NewRegistry(),
		pushes:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPushes}, []string{"result", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricAPNSLatency, Buckets: []float64{.01, .1, 1}}, []string{"environment"}),
		outbox:  prometheus.NewGauge(prometheus.GaugeOpts{Name: metricOutbox}),
		ringing: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricRinging}),
		expiry:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricCertExpiry}, []string{"sdkappid", "certificate_id", "environment", "bundle_id"}),
	}
	m.reg.MustRegister(m.pushes, m.latency, m.outbox, m.ringing, m.expiry)
	return m
}

func TestSamplerData(t *testing.T) {
	m := newTestMetrics()
	now := time.Unix(1_800_000_000, 0)
	s := newSampler(m.reg, 10*time.Second, time.Minute, func() time.Time { return now })
	s.add(s.take())
	// 10 s later: 6 delivered, 2 BadDeviceToken, latencies in two buckets.
	now = now.Add(10 * time.Second)
	m.pushes.WithLabelValues("delivered", "").Add(6)
	m.pushes.WithLabelValues("configuration", "BadDeviceToken").Add(2)
	for range 9 {
		m.latency.WithLabelValues("development").Observe(.005)
	}
	m.latency.WithLabelValues("production").Observe(.5)
	m.outbox.Set(3)
	m.ringing.Set(1)
	m.expiry.WithLabelValues("1400000001", "10001", "production", "com.example.a").Set((10 * 24 * time.Hour).Seconds())
	m.expiry.WithLabelValues("1400000001", "10002", "development", "com.example.a").Set((200 * 24 * time.Hour).Seconds())
	s.add(s.take())
	now = now.Add(5 * time.Second) // the live sample: nothing new

	d := s.data()
	if len(d.Points) != 2 {
		t.Fatalf("points = %d, want 2 (one stored interval, one live)", len(d.Points))
	}
	p := d.Points[0]
	if p.PerMinute["delivered"] != 36 || p.PerMinute["configuration"] != 12 {
		t.Errorf("per minute = %v, want delivered 36, configuration 12", p.PerMinute)
	}
	if p.P50 == nil || *p.P50 < 5 || *p.P50 > 6 || p.P99 == nil || *p.P99 < 100 {
		t.Errorf("p50 %v, p99 %v", deref(p.P50), deref(p.P99))
	}
	if d.Points[1].P50 != nil {
		t.Errorf("an interval without requests has no percentile, got %v", *d.Points[1].P50)
	}
	if d.Now.Outbox != 3 || d.Now.Ringing != 1 {
		t.Errorf("now = %+v", d.Now)
	}
	if d.Window.Pushes["delivered"] != 6 || d.Window.Requests != 10 {
		t.Errorf("window = %+v", d.Window)
	}
	if len(d.TopReasons) != 1 || d.TopReasons[0].Reason != "BadDeviceToken" || d.TopReasons[0].Count != 2 {
		t.Errorf("top reasons = %+v", d.TopReasons)
	}
	if len(d.Expiring) != 1 || d.Expiring[0].CertificateID != 10001 || d.Expiring[0].DaysLeft != 10 {
		t.Errorf("expiring = %+v", d.Expiring)
	}
	if d.Results[0] != "delivered" {
		t.Errorf("results = %v, delivered first", d.Results)
	}
	if _, err := json.Marshal(d); err != nil {
		t.Fatal(err)
	}
}

func TestSamplerKeepsTheWindow(t *testing.T) {
	m := newTestMetrics()
	now := time.Unix(1_800_000_000, 0)
	s := newSampler(m.reg, 10*time.Second, time.Minute, func() time.Time { return now })
	for range 20 {
		m.pushes.WithLabelValues("delivered", "").Inc()
		s.add(s.take())
		now = now.Add(10 * time.Second)
	}
	if len(s.samples) != 7 || !s.wrapped {
		t.Fatalf("kept %d samples (wrapped %v), want 7", len(s.samples), s.wrapped)
	}
	// The window counts from the oldest kept sample, not from the start.
	if got := s.data().Window.Pushes["delivered"]; got != 6 {
		t.Fatalf("window pushes = %v, want 6", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "/console/",
		"/console/apps/1/pushes?x=1": "/console/apps/1/pushes?x=1",
		"//evil.example/console/":    "/console/",
		"/console//evil.example":     "/console/",
		"https://evil.example/":      "/console/",
		"/consoleevil":               "/console/",
		"/console/\\evil":            "/console/",
		"/console/..//evil.example":  "/console/",
		"/console/%2E%2E/x":          "/console/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	req := func(app string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetPathValue("app", app)
		return r
	}
	admin := Principal{Admin: true}
	appUser := Principal{Apps: []int64{7}}
	for _, tc := range []struct {
		name string
		p    Principal
		sc   scope
		app  string
		ok   bool
	}{
		{"admin, any app", admin, scopeApp, "9", true},
		{"admin, secret", admin, scopeAppSecret, "9", true},
		{"admin, bad app ID", admin, scopeApp, "x", false},
		{"app user, own app", appUser, scopeApp, "7", true},
		{"app user, other app", appUser, scopeApp, "8", false},
		{"app user, own secret", appUser, scopeAppSecret, "7", false},
		{"app user, simulator", appUser, scopeAdmin, "", false},
		{"app user, signed in", appUser, scopeSignedIn, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := authorize(tc.p, tc.sc, req(tc.app))
			if (err == nil) != tc.ok {
				t.Fatalf("authorize = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newSessionStore(func() time.Time { return now }, 12*time.Hour, time.Hour)
	s := st.create(Principal{Admin: true})
	if len(s.id) < 40 || s.id == s.csrf {
		t.Fatalf("session ID %q, CSRF %q", s.id, s.csrf)
	}
	now = now.Add(50 * time.Minute)
	if st.get(s.id) == nil {
		t.Fatal("a session used within the idle time must live")
	}
	now = now.Add(61 * time.Minute)
	if st.get(s.id) != nil {
		t.Fatal("an idle session must expire")
	}
	s = st.create(Principal{Admin: true})
	for range 13 {
		now = now.Add(59 * time.Minute)
		st.get(s.id)
	}
	if st.get(s.id) != nil {
		t.Fatal("a session must end after its TTL however busy")
	}
}

func TestReadNote(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ring := apnssim.Notification{
		Headers: apnssim.NotificationHeaders{PushType: "voip", Topic: "com.example.a.voip"},
		Payload: json.RawMessage(`{"aps":{"alert":{"title":"alice","body":"You have a new call"}},"call_id":"c1","caller":"alice","media":"video","expires_at":1800000030}`),
	}
	n := readNote(ring, now)
	if !n.IsCall || !n.Ringing || n.Caller != "alice" || n.Media != "video" {
		t.Fatalf("ring push read as %+v", n)
	}
	if n := readNote(ring, now.Add(time.Minute)); !n.IsCall || n.Ringing {
		t.Fatalf("a ring push past its deadline still rings: %+v", n)
	}
	alert := apnssim.Notification{
		Headers: apnssim.NotificationHeaders{PushType: "alert"},
		Payload: json.RawMessage(`{"aps":{"alert":"plain text"}}`),
	}
	if n := readNote(alert, now); n.IsCall || n.Body != "plain text" {
		t.Fatalf("alert read as %+v", n)
	}
	missed := apnssim.Notification{
		Headers: apnssim.NotificationHeaders{PushType: "alert"},
		Payload: json.RawMessage(`{"aps":{"alert":{"title":"Missed call","body":"Missed call from alice"}},"call_id":"c1"}`),
	}
	if n := readNote(missed, now); n.IsCall {
		t.Fatalf("a missed-call alert is not a ringing call: %+v", n)
	}
}

func TestTokenRef(t *testing.T) {
	a, b := tokenRef("aa00"), tokenRef("aa01")
	if len(a) != 16 || a == b || a != tokenRef("aa00") {
		t.Fatalf("tokenRef: %q %q", a, b)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// FuzzSafeNext: whatever a sign-in link carries, the redirect stays in
// the console.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/apps", "//evil", "/console//evil", "https://x/", "/console/\\x", "/console/a\r\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/console/") || strings.HasPrefix(got, "/console//") || strings.ContainsAny(got, "\\\r\n") || strings.Contains(got, "/..") {
			t.Fatalf("safeNext(%q) = %q leaves the console", next, got)
		}
	})
}

// FuzzSettingsForm: any form body gives settings or a refusal, never a panic.
func FuzzSettingsForm(f *testing.F) {
	f.Add("login_policy=multi&ring_timeout=30&max_invitees=16&invites_per_minute=30&missed_call_push=on")
	f.Add("ring_timeout=x&error_rate=NaN&latency_ms=1e300&duration_s=-1")
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if s, err := settingsFromForm(r); err == nil {
			_ = s.Validate()
		}
		if f, err := faultsFromForm(r); err == nil {
			_ = f.Validate()
		}
	})
}
