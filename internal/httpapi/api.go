// Package httpapi is ringd's REST API: apps, APNs certificates, device
// registration (setAPNS) and pushes. Its service methods are also what the
// web console calls, so both see the same rules.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/settings"
	"github.com/ringd/ringd/internal/store"
)

// AppAdminIdentifier is the UserSig identifier that acts as an app's
// administrator, as in Tencent's service.
const AppAdminIdentifier = "administrator"

// Pusher is the part of the push pipeline the API uses.
type Pusher interface {
	Submit(ctx context.Context, sdkAppID int64, userID string, req push.Request) (string, error)
	SubmitBatch(ctx context.Context, sdkAppID int64, userIDs []string, req push.Request) ([]string, error)
	Trace(ctx context.Context, sdkAppID int64, pushID string) (*push.Trace, error)
	Recent(ctx context.Context, sdkAppID int64, userID string, limit int) ([]push.Summary, error)
}

// Config holds the API's dependencies.
type Config struct {
	Store      store.Store
	Sealer     *credentials.Sealer
	Push       Pusher
	Calls      CallService
	AdminToken string
	MaxDevices int
	// Limits on failed authentication (limits.go); SecretGrace is how
	// long UserSigs of a rotated secret key stay valid.
	Limits      Limits
	SecretGrace time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
	// CredentialChanged is told when a certificate is deleted, so cached
	// key material and its APNs connections are dropped.
	CredentialChanged func(certificateID int64)
	// Settings serves the apps' settings from memory and is told of every
	// change made through the API; give the call service the same one.
	// Nil: a cache of the API's own.
	Settings *settings.Cache
}

// API serves the REST endpoints.
type API struct {
	cfg     Config
	log     *slog.Logger
	secrets sync.Map       // sdkAppID -> *appKeys in clear, for UserSig checks
	sigs    *auth.SigCache // verified UserSigs: a reconnecting device skips the inflate and HMAC
	limits  *authLimits
}

// New returns the API; Handler gives its routes.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CredentialChanged == nil {
		cfg.CredentialChanged = func(int64) {}
	}
	if cfg.Settings == nil {
		cfg.Settings = settings.NewCache(cfg.Store, 0, cfg.Now)
	}
	return &API{cfg: cfg, log: cfg.Logger, sigs: auth.NewSigCache(0), limits: newAuthLimits(cfg.Limits, cfg.Now)}
}

// handlerFunc is a handler that returns its error; serve writes it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the routes of the REST API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]handlerFunc{
		"POST /v1/apps":                                   a.admin(a.createApp),
		"GET /v1/apps":                                    a.admin(a.listApps),
		"GET /v1/apps/{sdkappid}":                         a.appAdmin(a.getApp),
		"DELETE /v1/apps/{sdkappid}":                      a.admin(a.deleteApp),
		"GET /v1/apps/{sdkappid}/secret":                  a.admin(a.getSecret),
		"POST /v1/apps/{sdkappid}/secret/rotate":          a.admin(a.rotateSecret),
		"POST /v1/apps/{sdkappid}/certificates":           a.admin(a.uploadCertificate),
		"GET /v1/apps/{sdkappid}/certificates":            a.appAdmin(a.listCertificates),
		"GET /v1/apps/{sdkappid}/certificates/{id}":       a.appAdmin(a.getCertificate),
		"DELETE /v1/apps/{sdkappid}/certificates/{id}":    a.admin(a.deleteCertificate),
		"GET /v1/apps/{sdkappid}/users/{user}/devices":    a.appAdmin(a.userDevices),
		"DELETE /v1/apps/{sdkappid}/devices/{token}":      a.appAdmin(a.unbindDevice),
		"POST /v1/apps/{sdkappid}/pushes":                 a.appAdmin(a.createPush),
		"GET /v1/apps/{sdkappid}/pushes":                  a.appAdmin(a.listPushes),
		"GET /v1/apps/{sdkappid}/pushes/{id}":             a.appAdmin(a.getPush),
		"GET /v1/apps/{sdkappid}/settings":                a.appAdmin(a.getSettings),
		"PUT /v1/apps/{sdkappid}/settings":                a.appAdmin(a.putSettings),
		"POST /v1/apps/{sdkappid}/calls":                  a.appAdmin(a.startCall),
		"GET /v1/apps/{sdkappid}/calls":                   a.appAdmin(a.listCalls),
		"GET /v1/apps/{sdkappid}/calls/{call_id}":         a.appAdmin(a.getCall),
		"POST /v1/apps/{sdkappid}/calls/{call_id}/cancel": a.appAdmin(a.cancelCall),
		"POST /v1/apps/{sdkappid}/calls/{call_id}/end":    a.appAdmin(a.endCall),
		"GET /v1/me/calls/{call_id}":                      a.user(a.myCall),
		"PUT /v1/me/apns":                                 a.user(a.putAPNS),
		"DELETE /v1/me/apns":                              a.user(a.deleteAPNS),
		"GET /v1/me/apns":                                 a.user(a.listAPNS),
	}
	for pattern, h := range routes {
		mux.Handle(pattern, a.serve(h))
	}
	mux.Handle("/v1/", a.serve(func(http.ResponseWriter, *http.Request) error { return errMethodNotFound }))
	return mux
}

// serve runs h and writes its error, if any, as the API's error JSON.
func (a *API) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		e, ok := asAPIError(err)
		if !ok {
			e = a.unexpected(r, err)
		}
		if e.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1") // a short, cheap hint: every 503 here is transient
		}
		writeJSON(w, e.Status, e)
	})
}

func (a *API) unexpected(r *http.Request, err error) *Error {
	if isUnavailable(err) {
		a.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		return errStoreBusy
	}
	// A deadline inside the server while the client still waits means the
	// database could not keep up: overload, which a retry later may pass.
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		a.log.Warn("overloaded", "method", r.Method, "path", r.URL.Path, "err", err)
		return errOverloaded
	}
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return errInternal
}
