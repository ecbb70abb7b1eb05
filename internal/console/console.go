// Package console is ringd's web console at /console: apps, certificates
// and their IDs, devices, a push test, push troubleshooting, calls, a live
// dashboard and, with --dev, the APNs simulator's phones.
//
// Pages are rendered on the server with html/template; a few hundred lines
// of plain JavaScript add copy buttons, live traces and charts. Every asset
// is embedded, so no page loads anything from outside the process. The
// console reads and writes only through Services, the same service methods
// the REST API uses, never the store.
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringd/ringd/internal/apnssim"
	"github.com/ringd/ringd/internal/calls"
	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console"

// Services are the REST API's service methods the console calls
// (*httpapi.API implements them).
type Services interface {
	CreateApp(ctx context.Context, name string) (httpapi.App, error)
	Apps(ctx context.Context) ([]httpapi.App, error)
	GetApp(ctx context.Context, sdkAppID int64) (httpapi.App, error)
	RevealSecret(ctx context.Context, sdkAppID int64) (httpapi.App, error)
	RotateSecret(ctx context.Context, sdkAppID int64) (httpapi.App, error)

	UploadCertificate(ctx context.Context, sdkAppID int64, up httpapi.Upload) ([]httpapi.Certificate, error)
	Certificates(ctx context.Context, sdkAppID int64) ([]httpapi.Certificate, error)
	DeleteCertificate(ctx context.Context, sdkAppID, id int64, force bool) error

	Devices(ctx context.Context, sdkAppID int64, userID string) ([]httpapi.Registration, error)
	Unregister(ctx context.Context, sdkAppID int64, userID, rawToken string) error

	SendPush(ctx context.Context, sdkAppID int64, req httpapi.PushRequest) (httpapi.PushResult, error)
	PushTrace(ctx context.Context, sdkAppID int64, pushID string) (*push.Trace, error)
	RecentPushes(ctx context.Context, sdkAppID int64, userID string, limit int) ([]push.Summary, error)

	Settings(ctx context.Context, sdkAppID int64) (settings.Settings, error)
	PutSettings(ctx context.Context, sdkAppID int64, s settings.Settings) error

	ListCalls(ctx context.Context, sdkAppID int64, f store.CallFilter) ([]calls.Call, error)
}

var _ Services = (*httpapi.API)(nil)

// Simulator is the part of the in-process APNs simulator the Simulator
// page uses (*apnssim.Simulator implements it). Nil outside --dev.
type Simulator interface {
	Devices() []apnssim.DeviceInfo
	Inbox(token string) ([]apnssim.Notification, error)
	Uninstall(token string) error
	MintDeviceWith(opts apnssim.DeviceOptions) (string, error)
	SetFaults(f apnssim.Faults)
	ClearFaults()
	CurrentFaults() (apnssim.Faults, time.Time)
}

var _ Simulator = (*apnssim.Simulator)(nil)

// Config holds the console's dependencies.
type Config struct {
	Services   Services
	AdminToken string
	// Simulator is nil without --dev: the Simulator page and its routes
	// do not exist then.
	Simulator Simulator
	// Metrics is what the dashboard samples (the server's registry).
	Metrics prometheus.Gatherer
	// SampleEvery is the dashboard's sampling interval (default 10 s); it
	// keeps an hour of samples.
	SampleEvery time.Duration
	// SessionTTL is how long a sign-in lasts (default 12 h); IdleTTL ends
	// a session unused this long (default 2 h).
	SessionTTL, IdleTTL time.Duration
	Now                 func() time.Time
	Logger              *slog.Logger
}

// Console serves the web console.
type Console struct {
	cfg      Config
	log      *slog.Logger
	pages    *pages
	sessions *sessionStore
	sampler  *sampler
	logins   *loginLimiter
	handler  http.Handler
}

// New builds the console. Run samples the metrics for the dashboard.
func New(cfg Config) (*Console, error) {
	if cfg.Services == nil {
		return nil, errors.New("console: Services is required")
	}
	if cfg.AdminToken == "" {
		return nil, errors.New("console: AdminToken is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 10 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = 2 * time.Hour
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, log: cfg.Logger, pages: p,
		sessions: newSessionStore(cfg.Now, cfg.SessionTTL, cfg.IdleTTL),
		sampler:  newSampler(cfg.Metrics, cfg.SampleEvery, time.Hour, time.Now), // wall-clock rates, whatever clock the rest uses
		logins:   newLoginLimiter(cfg.Now),
	}
	c.handler = c.routes()
	return c, nil
}

// Handler serves everything under Prefix.
func (c *Console) Handler() http.Handler { return c.handler }

// Run samples the metrics for the dashboard until ctx is done.
func (c *Console) Run(ctx context.Context) error {
	c.sampler.run(ctx)
	return nil
}

// route is one page or action: its pattern, who may use it and the handler.
type route struct {
	pattern string
	scope   scope
	h       handlerFunc
}

// handlerFunc is a handler that returns its error; serve renders it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *session) error

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", staticHandler(static)))
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"/login", c.login)

	routes := []route{
		{"GET /{$}", scopeSignedIn, c.home},
		{"POST /logout", scopeSignedIn, c.logout},
		{"GET /apps", scopeSignedIn, c.appsPage},
		{"POST /apps", scopeAdmin, c.createApp},
		{"GET /apps/{app}", scopeApp, c.appPage},
		{"POST /apps/{app}/settings", scopeApp, c.saveSettings},
		{"GET /apps/{app}/secret/{action}", scopeAppSecret, c.secretConfirm},
		{"POST /apps/{app}/secret/{action}", scopeAppSecret, c.secretAction},
		{"GET /apps/{app}/certificates", scopeApp, c.certificatesPage},
		{"POST /apps/{app}/certificates", scopeAppCredentials, c.uploadCertificate},
		{"POST /apps/{app}/certificates/{id}/delete", scopeAppCredentials, c.deleteCertificate},
		{"GET /apps/{app}/devices", scopeApp, c.devicesPage},
		{"POST /apps/{app}/devices/unbind", scopeApp, c.unbindDevice},
		{"GET /apps/{app}/push", scopeApp, c.pushTestPage},
		{"POST /apps/{app}/push", scopeApp, c.sendPush},
		{"GET /apps/{app}/pushes", scopeApp, c.pushesPage},
		{"GET /apps/{app}/pushes/{id}", scopeApp, c.tracePage},
		{"GET /apps/{app}/pushes/{id}/json", scopeApp, c.traceJSON},
		{"GET /apps/{app}/calls", scopeApp, c.callsPage},
		{"GET /dashboard", scopeSignedIn, c.dashboardPage},
		{"GET /dashboard/data", scopeSignedIn, c.dashboardData},
	}
	if c.cfg.Simulator != nil {
		routes = append(routes,
			route{"GET /simulator", scopeAdmin, c.simulatorPage},
			route{"GET /simulator/phones", scopeAdmin, c.simulatorPhones},
			route{"POST /simulator/devices", scopeAdmin, c.mintDevice},
			route{"POST /simulator/uninstall", scopeAdmin, c.uninstall},
			route{"POST /simulator/faults", scopeAdmin, c.setFaults},
		)
	}
	for _, rt := range routes {
		method, path, _ := cutPattern(rt.pattern)
		mux.Handle(method+" "+Prefix+path, c.protect(rt.scope, rt.h))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, &pageError{status: http.StatusNotFound, msg: "There is no such page in the console."})
	})
	// Cross-origin protection (Sec-Fetch-Site / Origin) in front of the
	// per-session CSRF token: a state-changing request must pass both.
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

func cutPattern(p string) (method, path string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == ' ' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

// contentSecurityPolicy allows only this origin's scripts, styles and
// connections, no inline code, no framing and forms only to this origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every console response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.ServeHTTP(w, r)
	})
}

// staticHandler serves the embedded assets; they change only with the
// binary, so a short cache is enough.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}
