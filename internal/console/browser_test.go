package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/client"
	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/console"
	"github.com/ringd/ringd/internal/server"
)

const bundle = "com.example.consoletest"

// startDev runs `ringd serve --dev` in-process on a random port.
func startDev(t *testing.T) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Dev, cfg.Addr, cfg.DataDir = true, "127.0.0.1:0", t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

// chromiumPath finds Debian's Chromium.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("RINGD_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// browser is a headless Chromium tab that fails the test on any request
// that leaves 127.0.0.1, on any CSP violation or script error, and on a
// console page served without its Content-Security-Policy.
type browser struct {
	t        *testing.T
	ctx      context.Context
	base     string
	shotDir  string
	mu       sync.Mutex
	problems []string
	csp      map[string]string // document URL -> its Content-Security-Policy
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("Chromium not found: install it with `apt-get install chromium` (CI does) to run the console's browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
	}
	b := &browser{t: t, base: base, csp: map[string]string{}, shotDir: os.Getenv("RINGD_SCREENSHOTS")}
	if b.shotDir == "" {
		b.shotDir = t.TempDir()
	} else if err := os.MkdirAll(b.shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// The listener sees every event of the tab from its first command.
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(b.onEvent))
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this first call
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	b.ctx = ctx
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Error(p)
		}
	})
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

func (b *browser) onEvent(ev any) {
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(e.Request.URL)
		if err != nil {
			b.problem("unparsable request URL %q", e.Request.URL)
			return
		}
		switch u.Scheme {
		case "data", "about", "blob":
			return
		}
		if u.Hostname() != "127.0.0.1" {
			b.problem("a request left the process: %s", e.Request.URL)
		}
	case *network.EventResponseReceived:
		if e.Type == network.ResourceTypeDocument {
			b.mu.Lock()
			for k, v := range e.Response.Headers {
				if strings.EqualFold(k, "Content-Security-Policy") {
					b.csp[e.Response.URL], _ = v.(string)
				}
			}
			b.mu.Unlock()
		}
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError && !strings.Contains(e.Entry.Text, "status of 4") {
			b.problem("browser error on %s: %s", e.Entry.URL, e.Entry.Text)
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		if d.Exception != nil {
			b.problem("script error: %s: %s (%s:%d)", d.Text, d.Exception.Description, d.URL, d.LineNumber+1)
		} else {
			b.problem("script error: %s (%s:%d)", d.Text, d.URL, d.LineNumber+1)
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			b.problem("console.error on the page")
		}
	}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// texts returns the text of every element sel matches.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	js := fmt.Sprintf("Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())", sel)
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		b.t.Fatalf("texts of %s: %v", sel, err)
	}
	return out
}

func (b *browser) bodyText() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel)))
		if err == nil && strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %q; it shows %q (err %v)", sel, want, s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shot saves a full-page PNG as <dir>/<name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.save(name, chromedp.FullScreenshot(100))
}

// shotViewport saves what the viewport shows (a phone's screen).
func (b *browser) shotViewport(name string) {
	b.t.Helper()
	b.save(name, chromedp.CaptureScreenshot())
}

func (b *browser) save(name string, a chromedp.Action[[]byte]) {
	b.t.Helper()
	b.fitsWidth(name)
	png, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// fitsWidth fails when the page is wider than the window: wide tables
// must scroll inside their card, on a laptop and on a phone.
func (b *browser) fitsWidth(name string) {
	b.t.Helper()
	const js = `(() => {
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth <= w) return "";
		return Array.from(document.querySelectorAll("body *"))
			.filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest(".scroll"))
			.slice(0, 5).map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join(", ") || "?";
	})()`
	wide, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatal(err)
	}
	if wide != "" {
		b.t.Errorf("%s: the page is wider than the window: %s", name, wide)
	}
}

func (b *browser) checkCSP(pathPrefix string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for u, csp := range b.csp {
		if !strings.HasPrefix(u, b.base+pathPrefix) {
			continue
		}
		n++
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				b.t.Errorf("%s: Content-Security-Policy %q lacks %q", u, csp, want)
			}
		}
	}
	if n == 0 {
		b.t.Errorf("no console document seen under %s", pathPrefix)
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestConsoleInBrowser walks the console as a newcomer would, in headless
// Chromium against an in-process `ringd serve --dev`: sign in, create an
// app, upload a .p8 and .p12s, push, diagnose bad devicetoken, watch a call
// ring a simulated phone. With RINGD_SCREENSHOTS=<dir> it leaves the
// screenshots of docs/console.md there.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	srv := startDev(t)
	b := newBrowser(t, srv.URL())
	ctx := ctxT(t)
	sim := client.NewSimulator(srv.URL(), nil)
	admin := client.NewAdmin(srv.URL(), srv.AdminToken(), nil)

	// Sign in: a wrong token is refused, the right one opens the console.
	b.open("/console/apps")
	b.do(chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SetValue(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.waitText(".flash-error", "not the admin token")
	b.shot("01-sign-in")
	b.do(chromedp.SetValue(chromedp.CSS("#token"), srv.AdminToken()), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.waitText("h1", "Apps") // back where the sign-in started

	// Create an app: its SDKAppID and secret key are shown.
	b.do(chromedp.SetValue(chromedp.CSS("#app-name"), "Console test"), chromedp.Click(chromedp.CSS(`form[action="/console/apps"] button`)))
	appID := must[int64](t)(strconv.ParseInt(b.text("#sdkappid"), 10, 64))
	secret := b.text("#secret-key")
	if len(secret) != 64 {
		t.Fatalf("secret key %q", secret)
	}
	b.shot("02-app")
	appPath := fmt.Sprintf("/console/apps/%d", appID)

	// Upload a .p8 (both environments: two IDs) and two .p12s.
	key := must[*client.SimKey](t)(sim.IssueKey(ctx, "both"))
	b.open(appPath + "/certificates")
	b.do(chromedp.WaitVisible(chromedp.CSS("#upload-p8")),
		chromedp.SetUploadFiles(chromedp.CSS("#p8-file"), []string{writeTemp(t, "AuthKey_"+key.KeyID+".p8", []byte(key.P8))}),
		chromedp.SetValue(chromedp.CSS("#p8-key"), key.KeyID), chromedp.SetValue(chromedp.CSS("#p8-team"), key.TeamID),
		chromedp.SetValue(chromedp.CSS("#p8-bundle"), bundle), chromedp.SetValue(chromedp.CSS("#p8-env"), "both"),
		chromedp.Click(chromedp.CSS("#upload-p8 button[type=submit]")))
	p8IDs := b.texts(".newcert code.certid")
	if len(p8IDs) != 2 {
		t.Fatalf("a .p8 for both environments shows %d new IDs: %v", len(p8IDs), p8IDs)
	}
	if !strings.Contains(b.bodyText(), "config.businessID = "+p8IDs[0]) {
		t.Fatalf("the iOS line with certificate ID %s is missing", p8IDs[0])
	}
	p8Dev := must[int64](t)(strconv.ParseInt(p8IDs[0], 10, 64))

	uploadP12 := func(env string) int64 {
		t.Helper()
		c := must[*client.SimCertificate](t)(sim.IssueCertificate(ctx, bundle, env, false))
		b.open(appPath + "/certificates")
		b.do(chromedp.WaitVisible(chromedp.CSS("#upload-p12")),
			chromedp.SetUploadFiles(chromedp.CSS("#p12-file"), []string{writeTemp(t, env+".p12", c.P12)}),
			chromedp.SetValue(chromedp.CSS("#p12-password"), c.Password), chromedp.SetValue(chromedp.CSS("#p12-env"), env),
			chromedp.Click(chromedp.CSS("#upload-p12 button[type=submit]")))
		ids := b.texts(".newcert code.certid")
		if len(ids) != 1 {
			t.Fatalf("a %s .p12 shows %d new IDs: %v", env, len(ids), ids)
		}
		return must[int64](t)(strconv.ParseInt(ids[0], 10, 64))
	}
	devID := uploadP12("development")
	b.shot("03-certificate-id")
	prodID := uploadP12("production")

	// Register devices through the API, as the app would after login.
	userFor := func(user string) *client.User {
		sig := must[string](t)(auth.GenUserSig(appID, secret, user, time.Hour, time.Now()))
		return client.NewUser(srv.URL(), sig, nil)
	}
	aliceTok := must[string](t)(sim.MintDevice(ctx, bundle, "development", "alert"))
	must[*client.Registration](t)(userFor("alice").SetAPNS(ctx, client.SetAPNS{BusinessID: devID, Token: aliceTok, DeviceID: "alice-iphone"}))

	// Push test: the trace fills in and shows delivered.
	b.open(appPath + "/push?user=alice")
	b.do(chromedp.WaitVisible(chromedp.CSS("#push-form #title")), chromedp.SetValue(chromedp.CSS("#title"), "Hello from the console"),
		chromedp.Click(chromedp.CSS("#send")))
	b.do(chromedp.WaitVisible(chromedp.CSS(`#live-status[data-status="delivered"]`)))
	if got := b.text("#live-trace"); !strings.Contains(got, "Attempt 1") || !strings.Contains(got, "200") {
		t.Fatalf("live trace: %q", got)
	}
	b.shot("04-push-test")

	// bad devicetoken: a development token registered with the production
	// certificate ID. The troubleshooting page names both IDs.
	carolTok := must[string](t)(sim.MintDevice(ctx, bundle, "development", "alert"))
	must[*client.Registration](t)(userFor("carol").SetAPNS(ctx, client.SetAPNS{BusinessID: prodID, Token: carolTok, DeviceID: "carol-iphone"}))
	res := must[*client.PushResult](t)(admin.Send(ctx, appID, client.Push{User: "carol", Title: "Where is it?", Body: "FAQ 1"}))
	must[*client.Trace](t)(admin.WaitTrace(ctx, appID, res.PushID, nil))
	b.open(appPath + "/pushes")
	b.do(chromedp.SetValue(chromedp.CSS("#pushes-user"), "carol"), chromedp.Submit(chromedp.CSS("#pushes-user")))
	b.waitText("h2", "Recent pushes to carol")
	b.do(chromedp.Click(chromedp.CSS(`a[href$="/pushes/` + res.PushID + `"]`)))
	// The list just left may show "bad devicetoken" too: wait for the
	// trace page's own heading.
	page := b.waitText("main", "What “bad devicetoken” means")
	for _, want := range []string{"BadDeviceToken", strconv.FormatInt(devID, 10), strconv.FormatInt(prodID, 10), "What “bad devicetoken” means", "apns-unique-id"} {
		if !strings.Contains(page, want) {
			t.Errorf("troubleshooting page lacks %q", want)
		}
	}
	b.shot("05-troubleshooting-bad-devicetoken")

	// Devices: the user's registrations, masked.
	b.open(appPath + "/devices?user=carol")
	devs := b.waitText("main", "carol-iphone")
	if strings.Contains(devs, carolTok) || !strings.Contains(devs, carolTok[:4]+"…"+carolTok[len(carolTok)-4:]) {
		t.Errorf("the devices page must show the token masked")
	}
	b.shot("06-devices")

	// A call rings a simulated phone: bob's PushKit token, registered with
	// the .p8's development ID; the call starts through the API.
	bobTok := must[string](t)(sim.MintDevice(ctx, bundle, "development", "voip"))
	voip := true
	must[*client.Registration](t)(userFor("bob").SetAPNS(ctx, client.SetAPNS{BusinessID: p8Dev, Token: bobTok, VoIP: &voip, DeviceID: "bob-iphone"}))
	b.open("/console/simulator")
	b.do(chromedp.WaitVisible(chromedp.CSS("#phones")))
	must[string](t)(admin.StartCall(ctx, appID, client.StartCall{Caller: "alice", Invitees: []string{"bob"}, Media: "video", Timeout: 120}))
	b.waitText(".phone.ringing .incoming", "alice") // the page polls: no reload needed
	if got := b.text(".phone.ringing .incoming"); !strings.Contains(got, "Incoming video call") {
		t.Errorf("incoming call shows %q", got)
	}
	b.shot("07-simulator-incoming-call")

	b.open(appPath + "/calls")
	calls := b.waitText("main", "alice")
	if !strings.Contains(calls, "bob") || !strings.Contains(calls, "ring → bob") {
		t.Errorf("calls page: %q", calls)
	}
	b.shot("08-calls")

	b.open("/console/dashboard")
	b.waitText("#dash-updated", "Updated")
	if n := b.text("#now-ringing"); n != "1" {
		t.Errorf("calls ringing now = %q, want 1", n)
	}

	b.open(appPath + "/certificates")
	b.waitText("table.certs", strconv.FormatInt(prodID, 10))
	b.shot("10-certificates")

	// The same pages on a phone.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	b.open(appPath + "/pushes/" + res.PushID)
	b.waitText("main", "bad devicetoken")
	b.shotViewport("11-phone-troubleshooting")

	b.checkCSP("/console/")
}

// TestDashboardInBrowser draws an hour of made-up traffic, so the charts
// (and docs/screenshots/09-dashboard.png) show what a busy server looks like.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	reg := prometheus.NewRegistry()
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ringd_pushes_total"}, []string{"result", "reason"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ringd_apns_request_duration_seconds",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"environment"})
	outbox := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringd_push_outbox_depth"})
	conns := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringd_gateway_connections"})
	ringing := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringd_calls_ringing"})
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringd_certificate_expiry_seconds"}, []string{"sdkappid", "certificate_id", "environment", "bundle_id"})
	reg.MustRegister(pushes, latency, outbox, conns, ringing, expiry)
	expiry.WithLabelValues("1400000001", "10002", "production", "com.example.ringdemo").Set((12 * 24 * time.Hour).Seconds())
	expiry.WithLabelValues("1400000001", "10001", "development", "com.example.ringdemo").Set((300 * 24 * time.Hour).Seconds())

	const token = "dashboard-test-token"
	c, err := console.New(console.Config{Services: fakeServices{}, AdminToken: token, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A deterministic hour: a daytime wave of pushes, a burst of 503s
	// (transient) at -20 min, a few bad devicetokens, one uninstall.
	console.RecordHistory(c, 360, 10*time.Second, func(i int) {
		wave := 40 + 25*math.Sin(float64(i)/40)
		pushes.WithLabelValues("delivered", "").Add(math.Round(wave / 6))
		if i%9 == 0 {
			pushes.WithLabelValues("configuration", "BadDeviceToken").Inc()
		}
		if i == 200 {
			pushes.WithLabelValues("token_dead", "Unregistered").Inc()
		}
		if i > 230 && i < 250 {
			pushes.WithLabelValues("transient", "ServiceUnavailable").Add(2)
			pushes.WithLabelValues("expired", "Expired").Add(float64(i % 2))
		}
		for j := range 8 {
			d := .012 + .004*float64(j) + .003*math.Sin(float64(i)/7)
			if i > 230 && i < 250 {
				d *= 6
			}
			latency.WithLabelValues("production").Observe(d)
		}
		outbox.Set(math.Max(0, math.Round(3*math.Sin(float64(i)/15)+map[bool]float64{true: 40}[i > 230 && i < 250])))
		conns.Set(120 + math.Round(30*math.Sin(float64(i)/50)))
		ringing.Set(float64((i / 7) % 4))
	})

	ts := httptest.NewServer(c.Handler())
	defer ts.Close()
	b := newBrowser(t, ts.URL)
	b.open("/console/login")
	b.do(chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.waitText("h1", "ringd console")
	b.open("/console/dashboard")
	b.waitText("#dash-updated", "Updated")
	if got := b.text("#reasons tbody"); !strings.Contains(got, "BadDeviceToken") || !strings.Contains(got, "ServiceUnavailable") {
		t.Errorf("top failure reasons: %q", got)
	}
	if got := b.text("#expiring tbody"); !strings.Contains(got, "10002") || strings.Contains(got, "10001") {
		t.Errorf("expiring certificates: %q", got)
	}
	if n := len(b.texts("#chart-pushes rect")); n < 300 {
		t.Errorf("the pushes chart has %d bars, want one per sample", n)
	}
	b.shot("09-dashboard")
	b.checkCSP("/console/")
}
