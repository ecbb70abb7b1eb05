package httpapi

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ringd/ringd/internal/ratelimit"
)

// Limits slow down guessing of credentials. A client IP with more than
// AuthFailuresPerIP failed authentications in a minute, or an app whose
// UserSigs failed their signature check more than AuthFailuresPerApp
// times in a minute, gets 429 auth_rate_limited with Retry-After for every
// request until the budget refills, whether its credential is right or
// not, so a guess cannot be confirmed while blocked. Zero means no limit.
type Limits struct {
	AuthFailuresPerIP  int
	AuthFailuresPerApp int
}

// authLimits counts failed authentications per client IP and per app.
type authLimits struct {
	ip, app *ratelimit.Limiter
}

func newAuthLimits(l Limits, now func() time.Time) *authLimits {
	return &authLimits{
		ip:  ratelimit.New(ratelimit.Config{Burst: l.AuthFailuresPerIP, Per: time.Minute, Now: now}),
		app: ratelimit.New(ratelimit.Config{Burst: l.AuthFailuresPerApp, Per: time.Minute, Now: now}),
	}
}

// checkIP refuses a client IP that failed too often.
func (l *authLimits) checkIP(ip string) error {
	if ip == "" {
		return nil
	}
	if blocked, after := l.ip.Blocked(ip); blocked {
		return authLimited("too many failed authentications from your address", after)
	}
	return nil
}

// checkApp refuses UserSigs of an app whose signatures failed too often.
func (l *authLimits) checkApp(sdkAppID int64) error {
	if blocked, after := l.app.Blocked(strconv.FormatInt(sdkAppID, 10)); blocked {
		return authLimited("too many UserSigs with a wrong signature for SDKAppID "+strconv.FormatInt(sdkAppID, 10), after)
	}
	return nil
}

func (l *authLimits) failedIP(ip string) {
	if ip != "" {
		l.ip.Take(ip)
	}
}
func (l *authLimits) failedApp(sdkAppID int64) { l.app.Take(strconv.FormatInt(sdkAppID, 10)) }

func authLimited(msg string, after time.Duration) error {
	e := apiErr(http.StatusTooManyRequests, "auth_rate_limited", "%s; retry in %d s", msg, int64(after/time.Second))
	return &limitedError{api: e, after: after}
}

// limitedError is an API error answered with Retry-After; it unwraps to
// the *Error that is sent.
type limitedError struct {
	api   *Error
	after time.Duration
}

func (e *limitedError) Error() string { return e.api.Error() }
func (e *limitedError) Unwrap() error { return e.api }

// RetryAfter is the wait the Retry-After header says; the WebSocket
// gateway reads it too.
func (e *limitedError) RetryAfter() time.Duration { return e.after }

// HTTPStatus and ErrorCode are the gateway's codedError.
func (e *limitedError) HTTPStatus() int   { return e.api.Status }
func (e *limitedError) ErrorCode() string { return e.api.Code }

// setLimitHeader adds Retry-After (whole seconds, at least 1) when err is a
// limit refusal.
func setLimitHeader(w http.ResponseWriter, err error) {
	var le *limitedError
	if errors.As(err, &le) {
		secs := max(1, int64((le.after+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
}

// clientIP is the request's client address. Behind a trusted reverse
// proxy the server has already replaced RemoteAddr with the address the
// proxy reported (see server.realIP), so this never reads X-Forwarded-For
// itself.
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
