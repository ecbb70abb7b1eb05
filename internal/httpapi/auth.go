package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ringd/ringd/internal/auth"
	"github.com/ringd/ringd/internal/store"
)

// principal is who sent a request.
type principal struct {
	admin    bool   // the operator's admin token: every app
	sdkAppID int64  // from a UserSig
	userID   string // from a UserSig
}

func (p principal) appAdminOf(sdkAppID int64) bool {
	return p.admin || (p.sdkAppID == sdkAppID && p.userID == AppAdminIdentifier)
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// authenticate reads the Authorization header. Each UserSig failure has its
// own code so an app developer can tell an expired sig from a wrong key.
// Failures are counted per client IP (and bad signatures per app); past
// the limits every attempt gets auth_rate_limited, right or wrong.
func (a *API) authenticate(r *http.Request) (principal, error) {
	ip := clientIP(r)
	if err := a.limits.checkIP(ip); err != nil {
		return principal{}, err
	}
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || cred == "" {
		return principal{}, errUnauthorized
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		if a.cfg.AdminToken != "" && auth.TokenEqual(cred, a.cfg.AdminToken) {
			return principal{admin: true}, nil
		}
		a.limits.failedIP(ip)
		return principal{}, apiErr(http.StatusUnauthorized, "bad_admin_token", "the admin token is wrong")
	case "usersig":
		return a.verifyUserSigFrom(r.Context(), ip, strings.TrimSpace(cred))
	}
	return principal{}, errUnauthorized
}

// verifyUserSigFrom is verifyUserSig under the failure limits: an IP or
// app over its budget is refused before the check, and a failure that
// could be a guess counts against both. An expired UserSig is authentic
// (its signature matched), so it counts against neither: a fleet of
// phones with stale sigs must not lock its app out.
func (a *API) verifyUserSigFrom(ctx context.Context, ip, sig string) (principal, error) {
	if err := a.limits.checkIP(ip); err != nil {
		return principal{}, err
	}
	if us, err := a.sigs.Parse(sig); err == nil {
		if err := a.limits.checkApp(us.SDKAppID); err != nil {
			return principal{}, err
		}
	}
	p, err := a.verifyUserSig(ctx, sig)
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case "usersig_bad_signature":
			a.limits.failedIP(ip)
			a.limits.failedApp(p.sdkAppID)
		case "usersig_malformed", "usersig_unknown_app":
			a.limits.failedIP(ip)
		}
	}
	return p, err
}

// verifyUserSig checks sig against the app's secret key, or against its
// previous key while the grace period after a rotation lasts. On a
// refusal the principal still carries the SDKAppID the sig claims.
func (a *API) verifyUserSig(ctx context.Context, sig string) (principal, error) {
	us, err := a.sigs.Parse(sig)
	if err != nil {
		return principal{}, apiErr(http.StatusUnauthorized, "usersig_malformed", "the UserSig cannot be decoded: %v", err)
	}
	claimed := principal{sdkAppID: us.SDKAppID}
	keys, err := a.appKeys(ctx, us.SDKAppID, false)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, apiErr(http.StatusUnauthorized, "usersig_unknown_app", "the UserSig is for SDKAppID %d, which this server does not know", us.SDKAppID)
	}
	if err != nil {
		return principal{}, err
	}
	now := a.cfg.Now()
	err = us.Verify(keys.current, now)
	if errors.Is(err, auth.ErrBadSignature) && now.Sub(keys.loadedAt) >= keyReloadAfter {
		// Another node may have rotated the key: read it again, at most
		// once per keyReloadAfter per app.
		if keys, err = a.appKeys(ctx, us.SDKAppID, true); err != nil {
			return principal{}, err
		}
		err = us.Verify(keys.current, now)
	}
	if errors.Is(err, auth.ErrBadSignature) && keys.previous != "" && now.Before(keys.previousUntil) {
		err = us.Verify(keys.previous, now)
	}
	switch {
	case errors.Is(err, auth.ErrExpired):
		return claimed, apiErr(http.StatusUnauthorized, "usersig_expired", "the UserSig expired at %s; generate a new one", us.ExpiresAt().UTC().Format("2006-01-02T15:04:05Z"))
	case errors.Is(err, auth.ErrBadSignature):
		return claimed, apiErr(http.StatusUnauthorized, "usersig_bad_signature", "the UserSig signature does not match SDKAppID %d's secret key (was it made with another app's key, or before the key was rotated?)", us.SDKAppID)
	case errors.Is(err, auth.ErrEmptyKey):
		return principal{}, fmt.Errorf("app %d has an empty secret key: %w", us.SDKAppID, err)
	case err != nil:
		return claimed, apiErr(http.StatusUnauthorized, "usersig_malformed", "the UserSig is invalid: %v", err)
	}
	return principal{sdkAppID: us.SDKAppID, userID: us.Identifier}, nil
}

// admin allows only the admin token.
func (a *API) admin(h handlerFunc) handlerFunc {
	return a.withPrincipal(func(p principal, r *http.Request) error {
		if !p.admin {
			return errAdminOnly
		}
		return nil
	}, h)
}

// appAdmin allows the admin token or the app's administrator UserSig for
// the app in the path.
func (a *API) appAdmin(h handlerFunc) handlerFunc {
	return a.withPrincipal(func(p principal, r *http.Request) error {
		id, err := pathAppID(r)
		if err != nil {
			return err
		}
		if !p.appAdminOf(id) {
			if p.sdkAppID != 0 && p.sdkAppID != id {
				return errAppNotFound // another app's existence is not disclosed
			}
			return errAdminOnly
		}
		return nil
	}, h)
}

// user allows any valid UserSig.
func (a *API) user(h handlerFunc) handlerFunc {
	return a.withPrincipal(func(p principal, r *http.Request) error {
		if p.userID == "" {
			return apiErr(http.StatusUnauthorized, "usersig_required", "this endpoint acts for a user: send Authorization: UserSig <usersig>")
		}
		return nil
	}, h)
}

func (a *API) withPrincipal(allow func(principal, *http.Request) error, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r)
		if err != nil {
			setLimitHeader(w, err)
			return err
		}
		if err := allow(p, r); err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func pathAppID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("sdkappid"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErr(http.StatusBadRequest, "bad_sdkappid", "the SDKAppID in the path must be a positive number")
	}
	return id, nil
}

// AuthenticateUserSig verifies a UserSig for the WebSocket gateway; a
// refusal is an *Error with its status and code. It applies the per-app
// failure limit only; AuthenticateRequest adds the per-IP one.
func (a *API) AuthenticateUserSig(ctx context.Context, sig string) (int64, string, error) {
	return a.authenticateSig(ctx, "", sig)
}

// AuthenticateRequest is AuthenticateUserSig for an upgrade request,
// counting failures against its client IP as the REST API does. A
// refusal for too many failures has a RetryAfter method.
func (a *API) AuthenticateRequest(r *http.Request, sig string) (int64, string, error) {
	return a.authenticateSig(r.Context(), clientIP(r), sig)
}

func (a *API) authenticateSig(ctx context.Context, ip, sig string) (int64, string, error) {
	p, err := a.verifyUserSigFrom(ctx, ip, sig)
	if err != nil {
		if _, ok := asAPIError(err); !ok {
			a.log.Error("usersig check failed", "err", err)
			return 0, "", errInternal
		}
		return 0, "", err
	}
	return p.sdkAppID, p.userID, nil
}
